"""What a run leaves behind in Trinity's own database: one ``execution_logs`` row per flow run.

The executor is write-only here and imports nothing from ``api/``: the row goes in with plain
SQLAlchemy Core as an upsert keyed by ``flow_run_id`` (a retried hook or a crashed-then-finished
run overwrites instead of duplicating). The database is ``TRINITY_DATABASE_URL`` (default: the
SQLite file ``.trinity/trinity.db`` under the working directory). A failed write is logged and
swallowed: bookkeeping never fails a run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import resource
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

DATABASE_URL_ENV = "TRINITY_DATABASE_URL"
DEFAULT_SQLITE_PATH = Path(".trinity") / "trinity.db"

_METADATA = sa.MetaData()
EXECUTION_LOGS = sa.Table(
    "execution_logs",
    _METADATA,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("workflow_id", sa.Uuid, nullable=True),
    sa.Column("workflow_name", sa.String(255)),
    sa.Column("workflow_version", sa.String(64)),
    sa.Column("flow_run_id", sa.Uuid, unique=True, nullable=True),
    sa.Column("status", sa.String(50)),
    sa.Column("execution_time", sa.Interval, nullable=False),
    sa.Column("expected_start_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("metrics", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC (naive values are taken as UTC): SQLite keeps only the wall time."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def stable_hash(value: Any) -> str | None:
    """SHA-256 of a value's canonical JSON (non-JSON values by their ``str``); None when absent."""
    if value is None:
        return None
    try:
        text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return hashlib.sha256(text.encode()).hexdigest()


def process_peak_rss_bytes() -> int:
    """This process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@dataclass
class TaskRecord:
    """Metrics of one task run (one spec task, or one fan-out item)."""

    task_id: str
    state: str = "PENDING"
    state_name: str | None = None
    duration_seconds: float | None = None
    attempts: int = 0
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    error: str | None = None
    inputs_hash: str | None = None
    output_hash: str | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("start_time", "end_time"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@dataclass
class RunRecord:
    """Everything one run writes to ``execution_logs``."""

    workflow_name: str
    workflow_version: str
    flow_run_id: uuid.UUID | None
    parameters: dict[str, Any]
    expected_start_time: dt.datetime | None = None
    started_at: dt.datetime = field(default_factory=utcnow)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)

    def task(self, label: str, task_id: str) -> TaskRecord:
        """The record of a task run, created on first use."""
        record = self.tasks.get(label)
        if record is None:
            record = self.tasks[label] = TaskRecord(task_id=task_id)
        return record

    def metrics(self) -> dict[str, Any]:
        return {
            "tasks": {label: record.to_json() for label, record in self.tasks.items()},
            "parameters": json.loads(json.dumps(self.parameters, default=str)),
        }

    def row(self, *, status: str, ended_at: dt.datetime) -> dict[str, Any]:
        """The ``execution_logs`` row for this run ending in ``status``."""
        return {
            "id": uuid.uuid4(),
            "workflow_id": None,
            "workflow_name": self.workflow_name,
            "workflow_version": self.workflow_version,
            "flow_run_id": self.flow_run_id,
            "status": status,
            "execution_time": max(as_utc(ended_at) - as_utc(self.started_at), dt.timedelta(0)),  # type: ignore[operator]
            "expected_start_time": as_utc(self.expected_start_time),
            "started_at": as_utc(self.started_at),
            "ended_at": as_utc(ended_at),
            "metrics": self.metrics(),
        }


def database_url() -> str:
    """Trinity's database URL for SQLAlchemy (``postgresql://`` gets the psycopg 3 driver)."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if not url:
        return f"sqlite:///{(Path.cwd() / DEFAULT_SQLITE_PATH).as_posix()}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _upsert(engine: sa.Engine, row: dict[str, Any]) -> None:
    updates = {key: value for key, value in row.items() if key not in ("id", "workflow_id")}
    with engine.begin() as connection:
        dialect = engine.dialect.name
        if dialect in ("postgresql", "sqlite"):
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = (
                insert(EXECUTION_LOGS)
                .values(**row)
                .on_conflict_do_update(index_elements=["flow_run_id"], set_=updates)
            )
            connection.execute(statement)
            return
        table = EXECUTION_LOGS
        changed = connection.execute(
            table.update().where(table.c.flow_run_id == row["flow_run_id"]).values(**updates)
        ).rowcount
        if not changed:
            connection.execute(table.insert().values(**row))


def write_execution_log(
    row: dict[str, Any], *, url: str | None = None, logger: logging.Logger | None = None
) -> bool:
    """Upsert one row; True when written. Never raises: a failure is logged as a warning."""
    log = logger or logging.getLogger("trinity.executor")
    target = url or database_url()
    try:
        # SQLite: wait for the API's writer instead of failing at once on a locked database.
        connect_args = {"timeout": 10} if target.startswith("sqlite") else {}
        engine = sa.create_engine(target, poolclass=sa.pool.NullPool, connect_args=connect_args)
    except Exception as exc:
        log.warning("execution log not written: bad database URL: %s", exc)
        return False
    try:
        _upsert(engine, row)
        return True
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        log.warning(
            "execution log for flow run %s not written: %s",
            row.get("flow_run_id"),
            reason[0] if reason else type(exc).__name__,
        )
        return False
    finally:
        engine.dispose()
