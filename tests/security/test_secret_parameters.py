"""Secret parameters (``format: password`` / ``writeOnly``), credentials in URLs and
``${{ secrets.NAME }}``: as found, a password given to a run showed in the API's answers, Prefect's
flow-run parameters, state messages, logs, results and ``execution_logs``. Each is checked here on
the real stack, with the value masked everywhere and the run's Secret block gone when it ends."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Cancelled, Scheduled

from deployments.watch import run_here
from flows.compiler import compile_workflow
from flows.engine import WorkflowEngine
from flows.workflow_flow import build_flow
from tests.api.conftest import prefect_api_module, prefect_api_server
from tests.api.support import ApiServer, spec_document, store_active_workflow, workflow_document
from tests.flows.conftest import anyio_backend, fresh_events_worker, sqlite_logs
from tests.flows.factories import read_flow_run, specification, workflow
from tests.flows.worker import support as workers
from tests.security.secret_records import (
    MASKED_SOURCE,
    PARAMETERS,
    PASSWORD,
    SOURCE,
    assert_no_secret,
    block_exists,
    execution_log_rows,
    make_token_block,
    prefect_records,
    read_deployment,
    secret_reference_of,
    secret_tasks,
)
from tests.support.servers import PrefectServer

__all__ = ["anyio_backend", "fresh_events_worker", "prefect_api_module", "prefect_api_server", "sqlite_logs"]
pytestmark = pytest.mark.anyio


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
    assert_no_secret(records, "Prefect's records")
    [row] = execution_log_rows(sqlite_logs, outcome.flow_run_id)
    metrics = json.dumps(row["metrics"])
    assert row["metrics"]["parameters"]["password"] == "***"
    assert "denied: *** ***" in metrics  # the task's error is there, masked
    assert row["metrics"]["parameters"]["source"] == MASKED_SOURCE
    assert_no_secret(metrics, "execution_logs.metrics")
    assert not await block_exists(run_block)
    assert await block_exists(token_block)


async def _finished(flow_run_ids: list[uuid.UUID]) -> None:
    await workers.wait_for(flow_run_ids, workers.is_final, timeout=240, what="final")


async def test_runs_through_the_api_and_from_prefect_keep_secrets_out_of_every_record(
    prefect_api: PrefectServer, prefect_api_server: ApiServer, tmp_path: Path
) -> None:
    token_block = await make_token_block()
    name = f"secret-api-{uuid.uuid4().hex[:6]}"
    client = prefect_api_server.client()
    spec = spec_document(f"{name}-spec", parameters=PARAMETERS)
    document = {**workflow_document(name, spec_name=f"{name}-spec"), "tasks": secret_tasks(token_block)}
    stored = store_active_workflow(prefect_api_server, spec, document)
    deployment_id = uuid.UUID(stored["deployment_id"])
    form = (await read_deployment(deployment_id)).parameter_openapi_schema or {}
    assert form["properties"]["password"]["format"] == "password"
    database = prefect_api_server.settings.database_url
    env = {**workers.worker_env(prefect_api, database), "PREFECT_LOGGING_LEVEL": "INFO"}  # the shell's line

    with workers.running_worker(
        workers.trinity_worker_command("trinity", processes=1), env, tmp_path / "worker.log"
    ) as worker:
        started = client.post(
            f"/workflows/{stored['id']}/execute",
            json={"parameters": {"password": PASSWORD, "source": SOURCE}},
        )
        assert started.status_code == 202, started.text
        assert started.json()["parameters"] == {"password": "***", "source": MASKED_SOURCE}
        api_run = uuid.UUID(started.json()["flow_run_id"])
        # As from Prefect's UI or `prefect deployment run`: the password reaches Prefect in clear.
        [clear_run] = await workers.create_runs(deployment_id, 1, password=PASSWORD, source=SOURCE)
        await _finished([api_run, clear_run])
    worker_log = worker.log()

    detail = client.get(f"/runs/{started.json()['id']}")
    listing = client.get(f"/workflows/{stored['id']}/runs")
    assert detail.status_code == listing.status_code == 200
    assert detail.json()["parameters"] == {"password": "***", "source": MASKED_SOURCE}
    assert detail.json()["state"]["type"] == "FAILED"
    assert_no_secret(detail.text + listing.text, "the API's answers")
    assert_no_secret(worker_log, "the worker's log")
    for flow_run_id in (api_run, clear_run):
        flow_run = await read_flow_run(flow_run_id)
        run_block = secret_reference_of(flow_run.parameters)
        records = await prefect_records(flow_run_id, tasks=3)
        assert "denied: *** ***" in records
        assert_no_secret(records, f"Prefect's records of {flow_run_id}")
        [row] = execution_log_rows(database, flow_run_id)
        assert row["metrics"]["parameters"]["password"] == "***"
        assert_no_secret(json.dumps(row["metrics"]), f"execution_logs of {flow_run_id}")
        assert not await block_exists(run_block)
    assert await block_exists(token_block)


async def test_a_run_cancelled_before_it_starts_records_its_clear_secret_masked(
    prefect_api: object, sqlite_logs: str
) -> None:
    compiled = compile_workflow(
        workflow([{"id": "step", "uses": "noop"}], name="secret-unstarted"), specification(PARAMETERS)
    )
    engine = WorkflowEngine(compiled)
    flow = build_flow(compiled, engine=engine)
    async with get_client() as client:
        # As from Prefect's UI: the password reaches Prefect in clear, and the run never starts.
        created = await client.create_flow_run(
            flow, parameters={"password": PASSWORD, "source": SOURCE}, state=Scheduled()
        )
        await client.set_flow_run_state(created.id, Cancelled(), force=True)
        flow_run = await client.read_flow_run(created.id)
    assert flow_run.state is not None

    await engine.on_final_state(flow, flow_run, flow_run.state)

    [row] = execution_log_rows(sqlite_logs, flow_run.id)
    assert row["metrics"]["parameters"] == {"password": "***", "source": MASKED_SOURCE}
