"""Workflows with ``task_runner: {type: dask}``: task runs on a real Dask cluster on loopback,
recorded by a real Prefect server and in the execution_logs table."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import dask
import pytest
import sqlalchemy as sa
from distributed import LocalCluster
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from deployments.service import deploy_workflow
from flows.dask_runner import DASK_WORKER_TAG
from tests.flows.factories import flow_run_id, log_lines, run_workflow, specification, task_runs, workflow
from tests.flows.worker.support import (
    create_runs,
    is_final,
    running_worker,
    trinity_worker_command,
    wait_for,
    worker_env,
)
from tests.support.servers import PrefectServer
from trinity.core.tables import execution_logs
from trinity.core.urls import normalise_url

pytestmark = pytest.mark.anyio


# A scheduler and two worker processes on 127.0.0.1, a few threads each: a task run spends most
# of its time waiting on the Prefect API.
CLUSTER = {"n_workers": 2, "threads_per_worker": 4, "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A running Dask cluster, shared by the tests that connect to one by address."""
    with LocalCluster(processes=True, **CLUSTER) as running:
        yield running


def _task_metrics(url: str, run_id: UUID) -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            query = sa.select(execution_logs.c.metrics).where(execution_logs.c.flow_run_id == run_id)
            metrics: dict[str, Any] = connection.execute(query).scalar_one()
    finally:
        engine.dispose()
    tasks: dict[str, dict[str, Any]] = metrics["tasks"]
    return tasks


def _on_dask(address: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"task_runner": {"type": "dask", "address": address}, "tasks": tasks}


async def _log_messages(run_id: UUID, needle: str, *, expected: int, timeout: float = 60.0) -> list[str]:
    """The flow run's log lines holding ``needle``, once ``expected`` of them reached Prefect (the
    Dask workers send their task runs' logs on their own)."""
    deadline = time.monotonic() + timeout
    found: list[str] = []
    async with get_client() as client:
        while time.monotonic() < deadline:
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200
            )
            found = [log.message for log in logs if needle in log.message]
            if len(found) >= expected:
                return found
            await asyncio.sleep(0.5)
    raise AssertionError(f"expected {expected} log lines with {needle!r}, got {found}")


# Every one of the 100 task runs starts a Prefect task engine of its own on a worker: slow on a
# busy two-core machine.
@pytest.mark.timeout(900)
async def test_fan_out_of_100_items_runs_on_the_dask_workers(
    prefect_api: object, cluster: LocalCluster, sqlite_logs: str
) -> None:
    square = {
        "id": "square",
        "uses": "python",
        "for_each": list(range(100)),
        "with": {"callable": "tests.flows.helpers:add", "args": ["${{ item }}", "${{ item }}"]},
    }
    total = {
        "id": "total",
        "uses": "noop",
        "needs": ["square"],
        "with": {"output": "${{ tasks.square.output }}"},
    }
    wf = workflow(**_on_dask(cluster.scheduler_address, [square, total]))

    state = await run_workflow(wf)

    assert state.is_completed(), state.message
    assert (await state.aresult())["total"] == [2 * i for i in range(100)]
    run_id = flow_run_id(state)
    runs = await task_runs(run_id, expected=101)
    assert sorted(runs) == sorted([f"square[{i}]" for i in range(100)] + ["total"])
    assert all(run.state is not None and run.state.is_completed() for run in runs.values())
    records = _task_metrics(sqlite_logs, run_id)
    workers = set(cluster.scheduler_info["workers"])
    ran_on = {label: records[label]["worker"] for label in records if label.startswith("square[")}
    assert len(ran_on) == 100
    assert set(ran_on.values()) <= workers
    assert len(set(ran_on.values())) >= 2, "the fan-out should spread over both workers"
    assert all(records[label]["attempts"] == 1 and records[label]["start_time"] for label in ran_on)
    assert all(f"{DASK_WORKER_TAG}{ran_on[label]}" in runs[label].tags for label in ran_on)
    lines = await _log_messages(run_id, "running on dask worker", expected=100)
    assert {line.removeprefix("running on dask worker ") for line in lines} == set(ran_on.values())


async def test_a_retrying_task_retries_on_dask(
    prefect_api: object, cluster: LocalCluster, sqlite_logs: str, tmp_path: Path
) -> None:
    flaky = {
        "id": "flaky",
        "uses": "python",
        "retries": 1,
        "with": {"callable": "tests.flows.helpers:flaky", "args": [str(tmp_path / "attempts"), 1]},
    }

    state = await run_workflow(workflow(**_on_dask(cluster.scheduler_address, [flaky])))

    assert state.is_completed(), state.message
    record = _task_metrics(sqlite_logs, flow_run_id(state))["flaky"]
    assert (record["attempts"], record["state"]) == (2, "COMPLETED")
    assert record["worker"] in cluster.scheduler_info["workers"]
    [task_run] = (await task_runs(flow_run_id(state), expected=1)).values()
    assert (task_run.name, task_run.run_count) == ("flaky", 2)


async def test_a_task_over_its_timeout_fails_on_dask(
    prefect_api: object, cluster: LocalCluster, sqlite_logs: str
) -> None:
    wf = workflow(
        **_on_dask(
            cluster.scheduler_address,
            [{"id": "slow", "uses": "sleep", "timeout_seconds": 1, "with": {"seconds": 60}}],
        )
    )

    state = await run_workflow(wf)

    assert state.is_failed()
    assert "task 'slow' failed" in (state.message or "")
    runs = await task_runs(flow_run_id(state), expected=1)
    assert runs["slow"].state is not None
    assert runs["slow"].state.name == "TimedOut"
    record = _task_metrics(sqlite_logs, flow_run_id(state))["slow"]
    assert record["state"] == "FAILED"
    assert record["worker"] in cluster.scheduler_info["workers"]


def _port_open(address: str) -> bool:
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


async def test_workers_starts_a_local_cluster_for_the_run_and_stops_it(
    prefect_api: object, sqlite_logs: str
) -> None:
    wf = workflow(
        [{"id": "item", "uses": "sleep", "for_each": list(range(8)), "with": {"seconds": 0.5}}],
        task_runner={"type": "dask", "workers": 2},
    )

    state = await run_workflow(wf)

    assert state.is_completed(), state.message
    records = _task_metrics(sqlite_logs, flow_run_id(state))
    workers = {records[f"item[{i}]"]["worker"] for i in range(8)}
    assert len(workers) == 2
    assert all(address.startswith("tcp://127.0.0.1:") for address in workers)
    deadline = time.monotonic() + 30
    while any(_port_open(address) for address in workers) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert not any(_port_open(address) for address in workers), "the run's Dask workers still listen"


async def test_an_unreachable_scheduler_fails_the_run_with_one_line(
    prefect_api: object, sqlite_logs: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    wf = workflow(**_on_dask(address, [{"id": "never", "uses": "noop"}]))

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        state = await run_workflow(wf)

    assert state.is_failed()
    message = state.message or ""
    assert message.startswith(f"Dask scheduler {address} not usable: ")
    assert "\n" not in message


async def test_the_trinity_worker_runs_a_dask_workflow_on_the_cluster(
    prefect_api: PrefectServer, cluster: LocalCluster, sqlite_logs: str, tmp_path: Path
) -> None:
    pool = "dask-pool"
    tasks = [{"id": "item", "uses": "noop", "for_each": list(range(6)), "with": {"output": "${{ item }}"}}]
    wf = workflow(name="dask-on-worker", spec_name="dask-spec", **_on_dask(cluster.scheduler_address, tasks))
    deployed = await deploy_workflow(
        workflow=wf, specification=specification(name="dask-spec"), work_pool=pool
    )
    command = trinity_worker_command(pool, processes=1, concurrency=1)
    with running_worker(command, worker_env(prefect_api, sqlite_logs), tmp_path / "worker.log") as worker:
        [run_id] = await create_runs(deployed.id, 1)
        [run] = await wait_for([run_id], is_final, timeout=240, what="finished")
        assert run.state_name == "Completed", worker.log()
    records = _task_metrics(sqlite_logs, run_id)
    assert sorted(records) == [f"item[{i}]" for i in range(6)]
    assert {record["worker"] for record in records.values()} <= set(cluster.scheduler_info["workers"])
    assert all(record["worker"] for record in records.values())


async def test_a_runs_secrets_are_masked_on_the_dask_workers(
    prefect_api: object, cluster: LocalCluster
) -> None:
    secret = "s3cret-on-dask-42"
    spec = specification({"type": "object", "properties": {"pw": {"type": "string", "format": "password"}}})
    echo = {"id": "echo", "uses": "shell", "with": {"argv": ["echo", "token ${{ params.pw }} end"]}}

    state = await run_workflow(workflow(**_on_dask(cluster.scheduler_address, [echo])), spec, pw=secret)

    assert state.is_completed(), state.message
    lines = await log_lines(flow_run_id(state), until="token *** end", timeout=60)
    assert any("token *** end" in line for line in lines), lines
    assert not [line for line in lines if secret in line]
