"""The Trinity worker against a real Prefect server: real ``trinity worker`` processes run real
Trinity deployments (and two plain Prefect flows for flow-level retries and a sync flow)."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Cancelling
from sqlalchemy import create_engine, select

from tests.flows.worker.support import (
    NOOP_DAG,
    VENV_BIN,
    WorkerProcess,
    create_runs,
    deploy_entrypoint,
    deploy_tasks,
    executor_pid,
    is_final,
    is_running,
    pid_alive,
    running_worker,
    sqlite_trinity_database,
    task_run_names,
    trinity_worker_command,
    wait_for,
    worker_env,
)
from tests.support.servers import PrefectServer
from trinity.core.tables import execution_logs

pytestmark = pytest.mark.anyio
NOOP_TASK_IDS = sorted(task["id"] for task in NOOP_DAG)


def _completed(run: object) -> bool:
    return getattr(run, "state_name", None) == "Completed"


@dataclass
class SharedWorker:
    worker: WorkerProcess
    database: str  # the Trinity database its executors write execution_logs to


@pytest.fixture(scope="module")
def shared_worker(
    prefect_postgres_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedWorker]:
    """One worker (2 executors x 3 runs) on PostgreSQL, serving pool "shared" for several tests."""
    folder = tmp_path_factory.mktemp("shared-worker")
    database = sqlite_trinity_database(folder)
    env = worker_env(prefect_postgres_server, database)
    command = trinity_worker_command("shared", processes=2, concurrency=3, name="shared-a")
    with running_worker(command, env, folder / "worker.log") as worker:
        yield SharedWorker(worker=worker, database=database)


def execution_log_statuses(database: str) -> dict[str, str]:
    engine = create_engine(database)
    with engine.connect() as connection:
        rows = connection.execute(select(execution_logs.c.flow_run_id, execution_logs.c.status)).all()
    engine.dispose()
    return {str(row.flow_run_id): row.status for row in rows}


@pytest.mark.parametrize("prefect_api", ["sqlite"], indirect=True)
async def test_worker_runs_trinity_deployments_on_sqlite(prefect_api: PrefectServer, tmp_path: Path) -> None:
    database = sqlite_trinity_database(tmp_path)
    pool = f"runs-{uuid.uuid4().hex[:6]}"
    command = trinity_worker_command(pool, processes=2, concurrency=2)
    with running_worker(command, worker_env(prefect_api, database), tmp_path / "worker.log") as worker:
        deployment = await deploy_tasks("noop-dag", pool, NOOP_DAG)
        ids = await create_runs(deployment, 4)
        runs = await wait_for(ids, is_final, timeout=240, what="finished")
        assert [run.state_name for run in runs] == ["Completed"] * 4, worker.log()
        # Each run went to one of the worker's executor processes, recorded as host:pid.
        assert {executor_pid(run) for run in runs} <= _children(worker)
    assert [run.run_count for run in runs] == [1] * 4
    names = await task_run_names(ids, expected=40)
    assert {run_id: sorted(found) for run_id, found in names.items()} == dict.fromkeys(ids, NOOP_TASK_IDS)
    # The executor ran Trinity's final-state hook: one execution_logs row per run.
    assert execution_log_statuses(database) == {str(i): "COMPLETED" for i in ids}


@pytest.mark.parametrize("prefect_api", ["postgres"], indirect=True)
async def test_two_workers_share_a_pool_and_never_run_a_flow_run_twice(
    prefect_api: PrefectServer, shared_worker: SharedWorker, tmp_path: Path
) -> None:
    env = worker_env(prefect_api, shared_worker.database)
    second = trinity_worker_command("shared", processes=1, concurrency=4, name="shared-b")
    with running_worker(second, env, tmp_path / "b.log"):
        deployment = await deploy_tasks("noop-dag-two", "shared", NOOP_DAG)
        ids = await create_runs(deployment, 16)
        runs = await wait_for(ids, is_final, timeout=180, what="finished")
    assert [run.state_name for run in runs] == ["Completed"] * 16
    assert [run.run_count for run in runs] == [1] * 16
    async with get_client() as client:
        running_states = [
            sum(state.is_running() for state in await client.read_flow_run_states(run_id)) for run_id in ids
        ]
    assert running_states == [1] * 16
    assert {run.labels.get("prefect.worker.name") for run in runs} == {"shared-a", "shared-b"}
    names = await task_run_names(ids, expected=160)
    assert {run_id: sorted(found) for run_id, found in names.items()} == dict.fromkeys(ids, NOOP_TASK_IDS)
    statuses = execution_log_statuses(shared_worker.database)
    assert {str(i): statuses.get(str(i)) for i in ids} == {str(i): "COMPLETED" for i in ids}


@pytest.mark.parametrize("prefect_api", ["postgres"], indirect=True)
async def test_a_killed_executor_crashes_only_its_runs_and_is_replaced(
    prefect_api: PrefectServer, shared_worker: SharedWorker
) -> None:
    deployment = await deploy_tasks(
        "sleepy", "shared", [{"id": "nap", "uses": "sleep", "with": {"seconds": 6}}]
    )
    ids = await create_runs(deployment, 4)
    runs = await wait_for(ids, is_running, timeout=90, what="running")
    by_executor: dict[int, list[uuid.UUID]] = {}
    for run in runs:
        by_executor.setdefault(executor_pid(run), []).append(run.id)
    assert len(by_executor) == 2, f"expected the runs spread over both executors: {by_executor}"
    victim, survivor = sorted(by_executor)
    os.kill(victim, signal.SIGKILL)

    finished = {run.id: run for run in await wait_for(ids, is_final, timeout=90, what="finished")}
    assert {finished[i].state_name for i in by_executor[victim]} == {"Crashed"}
    assert "killed by SIGKILL" in (finished[by_executor[victim][0]].state.message or "")
    assert {finished[i].state_name for i in by_executor[survivor]} == {"Completed"}
    assert pid_alive(survivor)

    # A new executor takes the dead one's place and runs new work.
    more = await create_runs(deployment, 4)
    done = await wait_for(more, is_final, timeout=90, what="finished")
    assert all(_completed(run) for run in done), shared_worker.worker.log()
    assert victim not in {executor_pid(run) for run in done}
    assert len(_children(shared_worker.worker)) == 2


@pytest.mark.parametrize("prefect_api", ["postgres"], indirect=True)
async def test_a_crashed_run_with_flow_retries_runs_again(
    prefect_api: PrefectServer, shared_worker: SharedWorker, tmp_path: Path
) -> None:
    deployment = await deploy_entrypoint("crash-once", "shared", "tests.flows.worker.sample_flows.crash_once")
    marker = tmp_path / "attempted"
    [run_id] = await create_runs(deployment, 1, marker=str(marker))
    [run] = await wait_for([run_id], lambda r: is_running(r) and marker.exists(), timeout=90, what="running")
    os.kill(executor_pid(run), signal.SIGKILL)

    [run] = await wait_for([run_id], lambda r: r.run_count == 2 and is_final(r), timeout=90, what="re-run")
    assert run.state_name == "Completed"
    async with get_client() as client:
        names = [state.name for state in await client.read_flow_run_states(run_id)]
    assert names.index("Crashed") < names.index("AwaitingRetry") < len(names) - 1


@pytest.mark.parametrize("prefect_api", ["postgres"], indirect=True)
async def test_cancelling_a_running_trinity_run_ends_it_cancelled(
    prefect_api: PrefectServer, shared_worker: SharedWorker
) -> None:
    deployment = await deploy_tasks(
        "long-nap", "shared", [{"id": "nap", "uses": "sleep", "with": {"seconds": 120}}]
    )
    [run_id] = await create_runs(deployment, 1)
    [run] = await wait_for([run_id], is_running, timeout=90, what="running")
    async with get_client() as client:
        await client.set_flow_run_state(run_id, Cancelling(), force=True)
    [run] = await wait_for([run_id], is_final, timeout=60, what="cancelled")
    assert run.state_name == "Cancelled", shared_worker.worker.log()
    assert pid_alive(executor_pid(run))


@pytest.mark.parametrize("prefect_api", ["postgres"], indirect=True)
async def test_cancelling_a_running_sync_flow_ends_it_cancelled(
    prefect_api: PrefectServer, shared_worker: SharedWorker
) -> None:
    deployment = await deploy_entrypoint(
        "sync-sleeper", "shared", "tests.flows.worker.sample_flows.sync_sleeper"
    )
    [run_id] = await create_runs(deployment, 1, seconds=120)
    [run] = await wait_for([run_id], is_running, timeout=90, what="running")
    async with get_client() as client:
        await client.set_flow_run_state(run_id, Cancelling(), force=True)
    [run] = await wait_for([run_id], is_final, timeout=60, what="cancelled")
    assert run.state_name == "Cancelled", shared_worker.worker.log()


@pytest.mark.parametrize("prefect_api", ["postgres"], indirect=True)
async def test_the_stock_process_worker_still_runs_a_trinity_deployment(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    pool = f"process-{uuid.uuid4().hex[:6]}"
    deployment = await deploy_tasks("noop-dag-process", pool, NOOP_DAG)
    [run_id] = await create_runs(deployment, 1)
    command = [
        str(VENV_BIN / "prefect"),
        "worker",
        "start",
        "--pool",
        pool,
        "--type",
        "process",
        "--run-once",
    ]
    env = worker_env(prefect_api, sqlite_trinity_database(tmp_path))
    with running_worker(command, env, tmp_path / "worker.log") as worker:
        [run] = await wait_for([run_id], is_final, timeout=120, what="finished")
    assert run.state_name == "Completed", worker.log()
    names = await task_run_names([run_id], expected=10)
    assert sorted(names[run_id]) == NOOP_TASK_IDS


def _children(worker: WorkerProcess) -> set[int]:
    """Executor processes of a worker (multiprocessing spawn children, not its resource tracker)."""
    import psutil

    found = set()
    for child in psutil.Process(worker.process.pid).children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found
