"""Plain helpers for the analytics flow tests: databases, workflow runs, and reading rows back."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from prefect.client.schemas.objects import State
from prefect.events.worker import EventsWorker

from api.db import migrate
from flows.analytics.database import Tables, migrated_tables, open_engine
from flows.recording import RunRecord, TaskRecord, write_execution_log
from tests.flows.factories import flow_run_id, run_workflow, task_runs

DATA_TABLES = (
    "task_runs",
    "harvested_runs",
    "analytics_watermarks",
    "analytics_performance",
    "analytics_insights",
    "analytics_failure_families",
    "analytics_models",
    "execution_logs",
    "workflows",
    "specifications",
)


def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """A migrated, empty Trinity database: a new SQLite file, or the session's PostgreSQL one."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'trinity.db'}"
        migrate(url)
        return url
    url: str = request.getfixturevalue("pg_url")
    migrate(url)
    engine = open_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"TRUNCATE {', '.join(DATA_TABLES)} CASCADE"))
    finally:
        engine.dispose()
    return url


class Store:
    """Trinity's database as the tests read it back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)
        self.tables: Tables = migrated_tables(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def rows(self, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(sa.select(table).where(*where)).mappings()]

    def run_row(self, run_id: UUID) -> dict[str, Any]:
        rows = self.rows(self.tables.execution_logs, self.tables.execution_logs.c.flow_run_id == run_id)
        assert len(rows) == 1, rows
        return rows[0]

    def task_rows(self, run_id: UUID) -> dict[str, dict[str, Any]]:
        rows = self.rows(self.tables.task_runs, self.tables.task_runs.c.flow_run_id == run_id)
        by_name = {row["task_run_name"]: row for row in rows}
        assert len(by_name) == len(rows), "duplicate task run names"
        return by_name

    def count(self, table: sa.Table) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def store(url: str) -> Iterator[Store]:
    opened = Store(url)
    try:
        yield opened
    finally:
        opened.close()


async def run_and_settle(wf: Any, spec: Any, *, expected_tasks: int, **params: Any) -> State:
    """Run a workflow in this process and wait until Prefect has all its task runs."""
    state = await run_workflow(wf, spec, **params)
    await task_runs(flow_run_id(state), expected=expected_tasks)
    return state


def reset_events_worker() -> None:
    """Deliver pending events, then let the next event start a worker on the current API URL.

    Prefect keeps one events worker per process, bound to the API URL it first saw; task runs
    reach the server as events, so after a test on one Prefect server a test on another would
    send its task runs to the first one.
    """
    EventsWorker.drain_all(timeout=30, at_exit=False)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def recorded_run(url: str, workflow_name: str, ended: dt.datetime) -> None:
    """Write one finished run with one 20-second task, as the executor records it."""
    record = RunRecord(
        workflow_name=workflow_name,
        workflow_version="1.0.0",
        flow_run_id=uuid.uuid4(),
        parameters={},
        expected_start_time=ended - dt.timedelta(seconds=30),
        started_at=ended - dt.timedelta(seconds=29),
    )
    record.tasks = {
        "only": TaskRecord(
            task_id="only",
            state="COMPLETED",
            state_name="Completed",
            attempts=1,
            duration_seconds=20.0,
            start_time=ended - dt.timedelta(seconds=25),
            end_time=ended - dt.timedelta(seconds=5),
        )
    }
    assert write_execution_log(record.row(status="COMPLETED", ended_at=ended), url=url)
