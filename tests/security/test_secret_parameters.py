"""Secret parameters (``format: password`` / ``writeOnly``), credentials in URLs and
``${{ secrets.NAME }}``: as found, a password given to a run showed in the API's answers, Prefect's
flow-run parameters, state messages, logs, results and ``execution_logs``. Each is checked here on
the real stack, with the value masked everywhere and the run's Secret block gone when it ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.db import migrate
from deployments.watch import run_here
from tests.flows.conftest import anyio_backend, fresh_events_worker
from tests.flows.factories import read_flow_run, specification, workflow
from tests.security.secret_records import (
    PARAMETERS,
    PASSWORD,
    SOURCE,
    assert_no_secret,
    block_exists,
    execution_log_rows,
    make_token_block,
    prefect_records,
    secret_reference_of,
    secret_tasks,
)

__all__ = ["anyio_backend", "fresh_events_worker"]
pytestmark = pytest.mark.anyio


@pytest.fixture
def sqlite_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'trinity.db'}"
    migrate(url)
    monkeypatch.setenv("TRINITY_DATABASE_URL", url)
    return url


async def test_a_run_from_a_file_keeps_its_secrets_out_of_every_record(
    prefect_api: object, sqlite_logs: str
) -> None:
    token_block = await make_token_block()
    wf = workflow(secret_tasks(token_block), name="secret-file-run")
    spec = specification(PARAMETERS)
    params = {"password": PASSWORD, "source": SOURCE}

    outcome = await run_here(wf, spec, params, on_created=lambda name: None)

    assert outcome.state_type == "FAILED"
    assert "task 'refuse' failed" in outcome.message
    assert "denied: *** ***" in outcome.message
    assert_no_secret(outcome.message, "the outcome")
    flow_run = await read_flow_run(outcome.flow_run_id)
    run_block = secret_reference_of(flow_run.parameters)
    assert flow_run.parameters["source"] == SOURCE  # not a secret: only its password is masked in text
    records = await prefect_records(outcome.flow_run_id, tasks=3)
    assert "result of remember: 'pw=*** src=postgresql://app:***@db.internal/orders token=***'" in records
    assert_no_secret(records.replace(SOURCE, ""), "Prefect's records")
    [row] = execution_log_rows(sqlite_logs, outcome.flow_run_id)
    metrics = json.dumps(row["metrics"])
    assert row["metrics"]["parameters"]["password"] == "***"
    assert "denied: *** ***" in metrics  # the task's error is there, masked
    assert_no_secret(metrics.replace(SOURCE, ""), "execution_logs.metrics")
    assert not await block_exists(run_block)
    assert await block_exists(token_block)
