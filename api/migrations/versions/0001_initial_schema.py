"""Initial schema: specifications, workflows, execution_logs, runs, keys, analytics.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

The tables as they were at this revision; :mod:`trinity.core.tables` is the schema at head, and a
change to it comes with a new revision (``tests/api/test_db.py`` compares the two).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trinity.core.types import JSONVariant, UTCDateTime

revision: str = "0001"
down_revision: str | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def _timestamp(name: str, *, nullable: bool = False, default: bool = False) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(), nullable=nullable, server_default=NOW if default else None)


def _window_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("workflow", sa.String(255), nullable=False),
        sa.Column("task_id", sa.String(255), nullable=True),
        _timestamp("window_start"),
        _timestamp("window_end"),
        _timestamp("created_at", default=True),
    ]


def upgrade() -> None:
    op.create_table(
        "specifications",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("schema", JSONVariant, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        _timestamp("created_at", default=True),
        _timestamp("updated_at", default=True),
        sa.UniqueConstraint("name", "version", name="uq_specifications_name_version"),
    )
    op.create_index("ix_specifications_name", "specifications", ["name"])

    op.create_table(
        "workflows",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "spec_id",
            sa.Uuid(),
            sa.ForeignKey("specifications.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("spec_name", sa.String(255), nullable=False),
        sa.Column("spec_range", sa.String(200), nullable=False),
        sa.Column("definition", JSONVariant, nullable=False),
        sa.Column("status", sa.String(50), nullable=False, server_default="draft"),
        sa.Column("deployment_id", sa.Uuid(), nullable=True),
        _timestamp("created_at", default=True),
        _timestamp("updated_at", default=True),
        sa.UniqueConstraint("name", "version", name="uq_workflows_name_version"),
    )
    op.create_index("ix_workflows_name", "workflows", ["name"])
    op.create_index("ix_workflows_status", "workflows", ["status"])
    op.create_index("ix_workflows_spec_id", "workflows", ["spec_id"])

    op.create_table(
        "execution_logs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "workflow_id",
            sa.Uuid(),
            sa.ForeignKey("workflows.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("workflow_name", sa.String(255), nullable=False),
        sa.Column("workflow_version", sa.String(64), nullable=False),
        sa.Column("flow_run_id", sa.Uuid(), nullable=True, unique=True),
        sa.Column("status", sa.String(50), nullable=False),
        sa.Column("execution_time", sa.Interval(), nullable=False),
        _timestamp("expected_start_time", nullable=True),
        _timestamp("started_at", nullable=True),
        _timestamp("ended_at", nullable=True),
        sa.Column("metrics", JSONVariant, nullable=True),
        _timestamp("created_at", default=True),
    )
    op.create_index("ix_execution_logs_workflow_id", "execution_logs", ["workflow_id"])
    op.create_index("ix_execution_logs_workflow_name", "execution_logs", ["workflow_name"])

    op.create_table(
        "runs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "workflow_id",
            sa.Uuid(),
            sa.ForeignKey("workflows.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("workflow_name", sa.String(255), nullable=False),
        sa.Column("workflow_version", sa.String(64), nullable=False),
        sa.Column("flow_run_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("parameters", JSONVariant, nullable=False),
        sa.Column("state_type", sa.String(50), nullable=False),
        sa.Column("state_name", sa.String(100), nullable=False),
        _timestamp("created_at", default=True),
    )
    op.create_index("ix_runs_workflow_created", "runs", ["workflow_id", "created_at"])

    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "workflow_id",
            sa.Uuid(),
            sa.ForeignKey("workflows.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("run_id", sa.Uuid(), sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
        _timestamp("created_at", default=True),
        sa.UniqueConstraint("workflow_id", "key", name="uq_idempotency_keys_workflow_key"),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        _timestamp("created_at", default=True),
    )

    op.create_table(
        "analytics_performance",
        *_window_columns(),
        sa.Column("metrics", JSONVariant, nullable=False),
    )
    op.create_index(
        "ix_analytics_performance_workflow_window", "analytics_performance", ["workflow", "window_start"]
    )

    op.create_table(
        "analytics_insights",
        *_window_columns(),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("evidence", JSONVariant, nullable=False),
        sa.Column("yaml_diff", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_analytics_insights_workflow_window", "analytics_insights", ["workflow", "window_start"]
    )


def downgrade() -> None:
    for table in (
        "analytics_insights",
        "analytics_performance",
        "api_keys",
        "idempotency_keys",
        "runs",
        "execution_logs",
        "workflows",
        "specifications",
    ):
        op.drop_table(table)
