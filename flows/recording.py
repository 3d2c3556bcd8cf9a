"""What a run leaves behind in Trinity's own database: one ``execution_logs`` row per flow run.

The executor is write-only here: the row goes into the core ``execution_logs`` table
(:mod:`trinity.core.tables`) as an upsert keyed by ``flow_run_id`` (a retried hook or a
crashed-then-finished run overwrites instead of duplicating). The database is the configured one,
resolved like every Trinity process resolves its settings (``TRINITY_DATABASE_URL``, else
``database.url`` of ``trinity.config.yml``, else ``trinity.db`` in the state folder). A failed
write is logged and swallowed: bookkeeping never fails a run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import resource
import sys
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from trinity.core.config import load_settings
from trinity.core.tables import execution_logs
from trinity.core.types import as_utc, utcnow
from trinity.core.urls import is_sqlite, normalise_url


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
    # When everything it needs had finished (its queue wait runs from here to start_time).
    ready_time: dt.datetime | None = None
    # The Dask worker that ran it (tcp://host:port), for workflows with a dask task_runner.
    worker: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("start_time", "end_time", "ready_time"):
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
        expected = self.expected_start_time
        return {
            "id": uuid.uuid4(),
            "workflow_id": None,
            "workflow_name": self.workflow_name,
            "workflow_version": self.workflow_version,
            "flow_run_id": self.flow_run_id,
            "status": status,
            "execution_time": max(as_utc(ended_at) - as_utc(self.started_at), dt.timedelta(0)),
            "expected_start_time": as_utc(expected) if expected else None,
            "started_at": as_utc(self.started_at),
            "ended_at": as_utc(ended_at),
            "metrics": self.metrics(),
        }


def database_url() -> str:
    """Trinity's database URL, as this process's settings resolve it."""
    return load_settings().database_url


def _upsert(engine: sa.Engine, row: dict[str, Any]) -> None:
    updates = {key: value for key, value in row.items() if key not in ("id", "workflow_id")}
    with engine.begin() as connection:
        dialect = engine.dialect.name
        if dialect in ("postgresql", "sqlite"):
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = (
                insert(execution_logs)
                .values(**row)
                .on_conflict_do_update(index_elements=["flow_run_id"], set_=updates)
            )
            connection.execute(statement)
            return
        table = execution_logs
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
    try:
        target = normalise_url(url or database_url())
        # SQLite: wait for the API's writer instead of failing at once on a locked database.
        connect_args = {"timeout": 10} if is_sqlite(target) else {}
        engine = sa.create_engine(target, poolclass=sa.pool.NullPool, connect_args=connect_args)
    except Exception as exc:
        log.warning(
            "execution log for flow run %s not written: no usable database: %s", row.get("flow_run_id"), exc
        )
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
