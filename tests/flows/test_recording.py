"""The execution_logs row each run leaves, in the database the settings resolve."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api.db import migrate
from flows.recording import database_url, write_execution_log
from tests.flows.factories import flow_run_id, run_workflow, workflow
from trinity.core.tables import execution_logs
from trinity.core.urls import normalise_url

pytestmark = pytest.mark.anyio


def _rows(url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            query = sa.select(execution_logs).order_by(execution_logs.c.created_at)
            return [dict(row) for row in connection.execute(query).mappings()]
    finally:
        engine.dispose()


def _metrics(row: dict[str, Any]) -> dict[str, Any]:
    metrics: dict[str, Any] = row["metrics"]
    return metrics


async def test_completed_run_writes_one_row_with_task_metrics(prefect_api: object, sqlite_logs: str) -> None:
    wf = workflow(
        [
            {
                "id": "crunch",
                "uses": "python",
                "with": {"callable": "tests.flows.helpers:burn_cpu", "args": [300000]},
            },
            {
                "id": "child",
                "uses": "shell",
                "needs": ["crunch"],
                "with": {"argv": [sys.executable, "-c", "sum(i*i for i in range(300000))"]},
            },
            {"id": "items", "uses": "noop", "for_each": [1, 2], "with": {"output": "${{ item }}"}},
        ]
    )

    state = await run_workflow(wf)

    assert state.is_completed(), state.message
    rows = _rows(sqlite_logs)
    assert len(rows) == 1
    row = rows[0]
    assert row["workflow_name"] == "test-workflow"
    assert row["workflow_version"] == "1.0.0"
    assert row["status"] == "COMPLETED"
    assert row["flow_run_id"] == flow_run_id(state)
    metrics = _metrics(row)
    assert set(metrics["tasks"]) == {"crunch", "child", "items[0]", "items[1]"}
    crunch = metrics["tasks"]["crunch"]
    assert crunch["task_id"] == "crunch"
    assert crunch["state"] == "COMPLETED"
    assert crunch["attempts"] == 1
    assert crunch["cpu_seconds"] > 0
    assert crunch["peak_memory_bytes"] > 0
    assert crunch["duration_seconds"] >= 0
    assert crunch["output_hash"] is not None
    assert crunch["inputs_hash"] is not None
    child = metrics["tasks"]["child"]
    assert child["cpu_seconds"] > 0
    assert 0 < child["peak_memory_bytes"] < crunch["peak_memory_bytes"] * 10
    assert metrics["tasks"]["items[1]"]["task_id"] == "items"
    assert metrics["parameters"] == {}
    assert row["execution_time"] > dt.timedelta(0)
    assert row["started_at"] <= row["ended_at"]


async def test_failed_run_writes_its_row_with_the_error(
    prefect_api: object, sqlite_logs: str, tmp_path: Path
) -> None:
    wf = workflow(
        [
            {
                "id": "flaky",
                "uses": "python",
                "retries": 1,
                "with": {"callable": "tests.flows.helpers:flaky", "args": [str(tmp_path / "n"), 5]},
            },
            {"id": "after", "uses": "noop", "needs": ["flaky"]},
        ]
    )

    state = await run_workflow(wf)

    assert state.is_failed()
    (row,) = _rows(sqlite_logs)
    assert row["status"] == "FAILED"
    tasks = _metrics(row)["tasks"]
    assert tasks["flaky"]["state"] == "FAILED"
    assert tasks["flaky"]["attempts"] == 2
    assert tasks["flaky"]["error"] == "RuntimeError: flaky failure 2"
    assert tasks["after"]["state"] == "PENDING"
    assert tasks["after"]["state_name"] == "NotReady"


async def test_row_on_postgres(prefect_api: object, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    migrate(pg_url)
    monkeypatch.setenv("TRINITY_DATABASE_URL", pg_url)
    wf = workflow([{"id": "a", "uses": "noop"}], name="pg-logged")

    state = await run_workflow(wf)

    assert state.is_completed()
    rows = [row for row in _rows(pg_url) if row["flow_run_id"] == flow_run_id(state)]
    assert len(rows) == 1
    assert rows[0]["metrics"]["tasks"]["a"]["state"] == "COMPLETED"
    assert rows[0]["started_at"].tzinfo is not None
    assert rows[0]["execution_time"] > dt.timedelta(0)


async def test_a_failed_write_does_not_fail_the_run(
    prefect_api: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRINITY_DATABASE_URL", f"sqlite:///{tmp_path / 'no-tables.db'}")
    wf = workflow([{"id": "a", "uses": "noop"}])

    state = await run_workflow(wf)

    assert state.is_completed(), state.message


def _row(run_id: uuid.UUID, status: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "id": uuid.uuid4(),
        "workflow_id": None,
        "workflow_name": "w",
        "workflow_version": "1.0.0",
        "flow_run_id": run_id,
        "status": status,
        "execution_time": dt.timedelta(seconds=1),
        "expected_start_time": None,
        "started_at": now,
        "ended_at": now,
        "metrics": {"tasks": {}, "parameters": {}},
    }


def test_upsert_by_flow_run_id_replaces_the_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    migrate(url)
    run_id = uuid.uuid4()

    assert write_execution_log(_row(run_id, "CRASHED"), url=url)
    assert write_execution_log(_row(run_id, "COMPLETED"), url=url)

    rows = _rows(url)
    assert [row["status"] for row in rows] == ["COMPLETED"]


@pytest.fixture
def bare_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder of its own, and none of Trinity's variables set."""
    for name in ("TRINITY_DATABASE_URL", "TRINITY_CONFIG", "TRINITY_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_database_is_resolved_like_every_process_resolves_it(
    bare_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert database_url() == "sqlite:///.trinity/trinity.db"
    (bare_environment / "trinity.config.yml").write_text("database:\n  url: postgresql://u@h/from-file\n")
    assert database_url() == "postgresql://u@h/from-file"
    monkeypatch.setenv("TRINITY_DATABASE_URL", "postgresql://u@h/from-env")
    assert database_url() == "postgresql://u@h/from-env"


def test_the_row_goes_to_the_database_of_the_config_file_in_the_working_folder(
    bare_environment: Path,
) -> None:
    url = f"sqlite:///{bare_environment / 'configured.db'}"
    migrate(url)
    (bare_environment / "trinity.config.yml").write_text(f"database:\n  url: {url}\n")
    run_id = uuid.uuid4()

    assert write_execution_log(_row(run_id, "COMPLETED"))

    assert [row["flow_run_id"] for row in _rows(url)] == [run_id]
    assert not (bare_environment / ".trinity").exists()


def test_a_broken_configuration_is_one_warning_and_no_row(
    bare_environment: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (bare_environment / "trinity.config.yml").write_text("database:\n  url: mysql://u@h/db\n")
    run_id = uuid.uuid4()

    assert not write_execution_log(_row(run_id, "COMPLETED"))

    (record,) = [r for r in caplog.records if r.name == "trinity.executor"]
    assert record.getMessage() == (
        f"execution log for flow run {run_id} not written: no usable database: "
        "unsupported database 'mysql': use sqlite:/// or postgresql://"
    )
