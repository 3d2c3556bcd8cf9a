"""Every table of Trinity's database, defined once, as SQLAlchemy Core.

The API maps its SQLModel classes onto these tables, the Alembic environment compares its
migrations with :data:`METADATA`, the executor writes ``execution_logs`` and the analytics flows
read and write the rest, all with these very objects.

* ``specifications``, ``workflows``: the stored documents (the API);
* ``runs``, ``idempotency_keys``, ``api_keys``: runs started through the API, the keys guarding
  ``execute``, API keys as SHA-256 digests;
* ``audit_events``: the audit trail of the API: who did (or was refused) what, when, from where;
* ``execution_logs``: one row per finished flow run, written by the executor;
* ``task_runs``: one row per Prefect task run of a Trinity run, keyed by Prefect's id, with the
  figures the executor recorded merged in (the harvest);
* ``harvested_runs``: what the harvest learnt about each flow run beyond ``execution_logs`` (how
  it was triggered, its deployment and parent) and when it last changed;
* ``analytics_watermarks``: named high-water marks of the incremental analytics jobs;
* ``analytics_performance``, ``analytics_insights``, ``analytics_failure_families``: report rows
  served by ``/analytics/*``, replaced per report window;
* ``analytics_models``: what the analytics learnt (failure families, per-task baselines and
  training samples, SLO states), one row per model, updated by every report (see
  :mod:`analytics.learning_model`).

A Core insert without ``created_at`` gets the database's clock (a server default), whichever host
writes it; the API's models fill ids and timestamps in Python for the rows they build.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trinity.core.types import JSONVariant, UTCDateTime, utcnow

METADATA = sa.MetaData()

_NOW = sa.text("CURRENT_TIMESTAMP")


def non_key_columns(table: sa.Table) -> tuple[str, ...]:
    """The names of a table's columns outside its primary key: what an upsert of a row rewrites."""
    return tuple(column.name for column in table.columns if not column.primary_key)


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Uuid(), primary_key=True)


def _created_at() -> sa.Column[Any]:
    return sa.Column("created_at", UTCDateTime(), nullable=False, server_default=_NOW)


def _updated_at() -> sa.Column[Any]:
    return sa.Column("updated_at", UTCDateTime(), nullable=False, onupdate=utcnow, server_default=_NOW)


def _time(name: str, *, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def _reference(
    name: str, target: str, *, ondelete: str, nullable: bool = True, index: bool = False
) -> sa.Column[Any]:
    """A UUID column referring to ``target`` (``table.column``)."""
    return sa.Column(
        name, sa.Uuid(), sa.ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index
    )


specifications = sa.Table(
    "specifications",
    METADATA,
    _id(),
    sa.Column("name", sa.String(255), nullable=False, index=True),
    sa.Column("version", sa.String(64), nullable=False),
    # The seed's name for the document column; the API's attribute is ``document``.
    sa.Column("schema", JSONVariant, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("name", "version", name="uq_specifications_name_version"),
)

workflows = sa.Table(
    "workflows",
    METADATA,
    _id(),
    _reference("spec_id", "specifications.id", ondelete="SET NULL", index=True),
    sa.Column("name", sa.String(255), nullable=False, index=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("spec_name", sa.String(255), nullable=False),
    sa.Column("spec_range", sa.String(200), nullable=False),
    sa.Column("definition", JSONVariant, nullable=False),
    sa.Column("status", sa.String(50), nullable=False, server_default="draft", index=True),
    sa.Column("deployment_id", sa.Uuid(), nullable=True),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("name", "version", name="uq_workflows_name_version"),
)

execution_logs = sa.Table(
    "execution_logs",
    METADATA,
    _id(),
    _reference("workflow_id", "workflows.id", ondelete="SET NULL", index=True),
    sa.Column("workflow_name", sa.String(255), nullable=False, index=True),
    sa.Column("workflow_version", sa.String(64), nullable=False),
    sa.Column("flow_run_id", sa.Uuid(), nullable=True, unique=True),
    sa.Column("status", sa.String(50), nullable=False),
    sa.Column("execution_time", sa.Interval(), nullable=False),
    _time("expected_start_time"),
    _time("started_at"),
    _time("ended_at"),
    sa.Column("metrics", JSONVariant, nullable=True),
    _created_at(),
)

runs = sa.Table(
    "runs",
    METADATA,
    _id(),
    _reference("workflow_id", "workflows.id", ondelete="SET NULL"),
    sa.Column("workflow_name", sa.String(255), nullable=False),
    sa.Column("workflow_version", sa.String(64), nullable=False),
    sa.Column("flow_run_id", sa.Uuid(), nullable=False, unique=True),
    sa.Column("parameters", JSONVariant, nullable=False),
    sa.Column("state_type", sa.String(50), nullable=False),
    sa.Column("state_name", sa.String(100), nullable=False),
    _created_at(),
    sa.Index("ix_runs_workflow_created", "workflow_id", "created_at"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    METADATA,
    _id(),
    _reference("workflow_id", "workflows.id", ondelete="CASCADE", nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("body_hash", sa.String(64), nullable=False),
    _reference("run_id", "runs.id", ondelete="SET NULL"),
    _created_at(),
    sa.UniqueConstraint("workflow_id", "key", name="uq_idempotency_keys_workflow_key"),
)

api_keys = sa.Table(
    "api_keys",
    METADATA,
    _id(),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    _created_at(),
)

audit_events = sa.Table(
    "audit_events",
    METADATA,
    _id(),
    sa.Column("occurred_at", UTCDateTime(), nullable=False, server_default=_NOW, index=True),
    # Who: the key (no foreign key: the trail outlives deleted keys), its name and role then, and
    # the bearer token's id (jti) when the key came through one. Empty when nobody authenticated.
    sa.Column("actor_key_id", sa.Uuid(), nullable=True, index=True),
    sa.Column("actor_name", sa.String(255), nullable=True),
    sa.Column("actor_role", sa.String(20), nullable=True),
    sa.Column("token_id", sa.String(64), nullable=True),
    # What: spec.create, workflow.execute, key.revoke, token.issue, ... ("GET /api/v1/..." for a
    # refused request to a route that changes nothing), and on which resource.
    sa.Column("action", sa.String(100), nullable=False, index=True),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("resource_type", sa.String(32), nullable=True),
    sa.Column("resource_id", sa.String(64), nullable=True),
    sa.Column("resource_version", sa.String(64), nullable=True),
    # From where: the client's address as the server saw it.
    sa.Column("client_address", sa.String(64), nullable=True),
    # allowed or denied, the answer's status, and why (the error's message for a denial).
    sa.Column("outcome", sa.String(16), nullable=False, index=True),
    sa.Column("status_code", sa.Integer(), nullable=False),
    sa.Column("reason", sa.String(500), nullable=True),
    # SHA-256 of the request body (never the body: it may hold secrets); none for credentials.
    sa.Column("body_sha256", sa.String(64), nullable=True),
    # Ids and statuses only (the run started, the status moved to): never parameter values.
    sa.Column("details", JSONVariant, nullable=True),
)


def _window_columns() -> list[sa.Column[Any]]:
    """What every analytics row has: the workflow (and task), and the window it covers."""
    return [
        _id(),
        sa.Column("workflow", sa.String(255), nullable=False),
        sa.Column("task_id", sa.String(255), nullable=True),
        _time("window_start", nullable=False),
        _time("window_end", nullable=False),
        _created_at(),
    ]


analytics_performance = sa.Table(
    "analytics_performance",
    METADATA,
    *_window_columns(),
    sa.Column("metrics", JSONVariant, nullable=False),
    sa.Index("ix_analytics_performance_workflow_window", "workflow", "window_start"),
)

analytics_insights = sa.Table(
    "analytics_insights",
    METADATA,
    *_window_columns(),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("evidence", JSONVariant, nullable=False),
    sa.Column("yaml_diff", sa.Text(), nullable=True),
    sa.Index("ix_analytics_insights_workflow_window", "workflow", "window_start"),
)

task_runs = sa.Table(
    "task_runs",
    METADATA,
    sa.Column("task_run_id", sa.Uuid(), primary_key=True),
    sa.Column("flow_run_id", sa.Uuid(), nullable=False),
    sa.Column("workflow_name", sa.String(255), nullable=False),
    # The spec task id ('load' for 'load[3]'); task_run_name is 'id' or 'id[3]'.
    sa.Column("task_id", sa.String(255), nullable=False),
    sa.Column("task_run_name", sa.String(255), nullable=False),
    sa.Column("map_index", sa.Integer(), nullable=True),
    sa.Column("state_type", sa.String(50), nullable=False),
    sa.Column("state_name", sa.String(100), nullable=True),
    _time("start_time"),
    _time("end_time"),
    sa.Column("duration_seconds", sa.Float(), nullable=True),
    # Prefect's run_count: how many times it ran.
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("cpu_seconds", sa.Float(), nullable=True),
    sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True),
    sa.Column("error_message", sa.Text(), nullable=True),
    sa.Column("inputs_hash", sa.String(64), nullable=True),
    sa.Column("output_hash", sa.String(64), nullable=True),
    sa.Index("ix_task_runs_flow_run_id", "flow_run_id"),
    sa.Index("ix_task_runs_workflow_task", "workflow_name", "task_id"),
)

harvested_runs = sa.Table(
    "harvested_runs",
    METADATA,
    sa.Column("flow_run_id", sa.Uuid(), primary_key=True),
    sa.Column("workflow_name", sa.String(255), nullable=False),
    # schedule, manual, automation, subflow or local.
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("state_name", sa.String(100), nullable=True),
    sa.Column("deployment_id", sa.Uuid(), nullable=True),
    sa.Column("parent_flow_run_id", sa.Uuid(), nullable=True),
    # Expected start, else start, else end: where the run falls in report windows.
    _time("reference_time"),
    sa.Column("task_runs", sa.Integer(), nullable=False),
    # Hash of what was harvested: tells unchanged re-reads from changes.
    sa.Column("fingerprint", sa.String(64), nullable=False),
    _time("harvested_at", nullable=False),
    sa.Index("ix_harvested_runs_harvested_at", "harvested_at"),
)

analytics_watermarks = sa.Table(
    "analytics_watermarks",
    METADATA,
    sa.Column("name", sa.String(100), primary_key=True),
    _time("value", nullable=False),
    _time("updated_at", nullable=False),
)

analytics_failure_families = sa.Table(
    "analytics_failure_families",
    METADATA,
    _id(),
    # The family's id in analytics_models (stable from report to report).
    sa.Column("family_id", sa.String(64), nullable=False),
    _time("window_start", nullable=False),
    _time("window_end", nullable=False),
    sa.Column("signature", sa.Text(), nullable=False),
    sa.Column("exception_type", sa.String(255), nullable=True),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.Column("flow_runs", sa.Integer(), nullable=False),
    sa.Column("example", sa.Text(), nullable=False),
    sa.Column("workflows", JSONVariant, nullable=False),
    sa.Column("tasks", JSONVariant, nullable=False),
    _time("first_seen"),
    _time("last_seen"),
    sa.Column("flow_run_ids", JSONVariant, nullable=False),
    sa.Column("trend", sa.String(16), nullable=False),
    sa.Column("is_new", sa.Boolean(), nullable=False),
    # The rest of the family as the report has it: centroid terms, variants, halves, model.
    sa.Column("details", JSONVariant, nullable=False),
    _created_at(),
    sa.Index("ix_analytics_failure_families_window", "window_start", "window_end"),
)

analytics_models = sa.Table(
    "analytics_models",
    METADATA,
    _id(),
    # failure_family, task_baseline or slo_forecast.
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("key", sa.String(600), nullable=False),
    sa.Column("workflow", sa.String(255), nullable=True),
    sa.Column("task_id", sa.String(255), nullable=True),
    # Counts the reports that changed the model; findings name the revision they were made with.
    sa.Column("revision", sa.Integer(), nullable=False),
    # The window of the report that last changed it.
    _time("window_start", nullable=False),
    _time("window_end", nullable=False),
    sa.Column("state", JSONVariant, nullable=False),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("kind", "key", name="uq_analytics_models_kind_key"),
)
