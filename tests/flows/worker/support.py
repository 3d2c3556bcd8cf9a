"""Plain helpers for the worker tests: real ``trinity worker`` processes, deployments, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import WorkerFlowRunResponse
from prefect.client.schemas.sorting import TaskRunSort
from prefect.states import Pending
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorkerResult

from api.db import migrate
from deployments.service import deploy_workflow
from flows.worker.prefect_compat import SlotAwareWorker
from tests.flows.factories import specification, workflow
from tests.support.servers import PrefectServer

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = REPO / ".venv" / "bin"
NOOP_DAG = [
    {"id": "start", "uses": "noop"},
    {"id": "a1", "uses": "noop", "needs": ["start"]},
    {"id": "a2", "uses": "noop", "needs": ["start"]},
    {"id": "a3", "uses": "noop", "needs": ["start"]},
    {"id": "b1", "uses": "noop", "needs": ["a1", "a2"]},
    {"id": "b2", "uses": "noop", "needs": ["a2", "a3"]},
    {"id": "b3", "uses": "noop", "needs": ["a3"]},
    {"id": "c1", "uses": "noop", "needs": ["b1", "b2"]},
    {"id": "c2", "uses": "noop", "needs": ["b2", "b3"]},
    {"id": "finish", "uses": "noop", "needs": ["c1", "c2"], "with": {"output": "done"}},
]


def sqlite_trinity_database(folder: Path) -> str:
    """A Trinity database (SQLite), migrated as the API migrates it."""
    url = f"sqlite:///{folder / 'trinity.db'}"
    migrate(url)
    return url


def worker_env(server: PrefectServer, trinity_database: str) -> dict[str, str]:
    """Environment of a worker process talking to ``server``."""
    env = dict(server.env)
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    env.update(PREFECT_API_URL=server.api_url, TRINITY_DATABASE_URL=trinity_database)
    return env


@dataclass
class WorkerProcess:
    """A ``trinity worker`` (or any worker command) running as a child process."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, as ``trinity up`` does; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


@contextlib.contextmanager
def running_worker(
    command: list[str], env: dict[str, str], log_path: Path, *, cwd: Path = REPO
) -> Iterator[WorkerProcess]:
    """Run a worker command (from the repository root, unless ``cwd``) for the duration of the block."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    worker = WorkerProcess(process=process, log_path=log_path)
    try:
        yield worker
    finally:
        worker.stop()


def trinity_worker_command(
    pool: str, *, processes: int = 2, concurrency: int = 4, name: str | None = None
) -> list[str]:
    command = [
        str(VENV_BIN / "trinity"), "worker", "--pool", pool,
        "--processes", str(processes), "--concurrency", str(concurrency),
        "--poll-seconds", "0.5", "--grace-seconds", "5",
    ]  # fmt: skip
    return [*command, "--name", name] if name else command


async def deploy_tasks(name: str, pool: str, tasks: list[dict[str, Any]]) -> uuid.UUID:
    """Deploy a Trinity workflow with these tasks to ``pool``; return the deployment id."""
    spec = specification(name=f"{name}-spec")
    ref = await deploy_workflow(
        workflow=workflow(tasks, name=name, spec_name=f"{name}-spec"), specification=spec, work_pool=pool
    )
    return ref.id


async def deploy_entrypoint(name: str, pool: str, entrypoint: str) -> uuid.UUID:
    """Deploy a plain Prefect flow (``module.flow`` entrypoint) to ``pool``."""
    async with get_client() as client:
        flow_id = await client.create_flow_from_name(name)
        return await client.create_deployment(
            flow_id=flow_id, name=name, entrypoint=entrypoint, work_pool_name=pool
        )


async def create_runs(deployment_id: uuid.UUID, count: int, **parameters: Any) -> list[uuid.UUID]:
    async with get_client() as client:
        runs = [
            await client.create_flow_run_from_deployment(deployment_id, parameters=parameters or None)
            for _ in range(count)
        ]
    return [run.id for run in runs]


async def deployment_run_count(deployment_id: uuid.UUID) -> int:
    """How many flow runs the deployment has."""
    async with get_client() as client:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
    return len(runs)


async def read_runs(ids: Iterable[uuid.UUID]) -> list[FlowRun]:
    ids = list(ids)
    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids)
        )


async def wait_for(ids: Iterable[uuid.UUID], predicate: Any, *, timeout: float, what: str) -> list[FlowRun]:
    """Poll until every run satisfies ``predicate`` (a FlowRun -> bool); fail with their states."""
    ids = list(ids)
    deadline = time.monotonic() + timeout
    runs: list[FlowRun] = []
    while time.monotonic() < deadline:
        runs = await read_runs(ids)
        if len(runs) == len(ids) and all(predicate(run) for run in runs):
            return runs
        await asyncio.sleep(0.3)
    states = sorted(f"{run.id}: {run.state_name}" for run in runs)
    raise AssertionError(f"runs not {what} after {timeout:.0f}s: {states}")


def is_final(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_final()


def is_running(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_running()


def executor_pid(run: FlowRun) -> int:
    """The executor process a run was handed to (Prefect records ``host:pid``)."""
    assert run.infrastructure_pid, f"flow run {run.id} has no infrastructure pid"
    return int(run.infrastructure_pid.rpartition(":")[2])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def task_run_names(
    flow_run_ids: Iterable[uuid.UUID], *, expected: int, timeout: float = 60
) -> dict[uuid.UUID, list[str]]:
    """Task run names per flow run, read once Prefect has recorded ``expected`` of them in all.

    Task runs reach the server as events and are written a moment after the flow run ends.
    """
    ids = list(flow_run_ids)
    body = {"flow_runs": {"id": {"any_": [str(i) for i in ids]}}}
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while time.monotonic() < deadline:
            response = await client.request("POST", "/task_runs/count", json=body)  # type: ignore[arg-type]
            if int(response.json()) >= expected:
                break
            await asyncio.sleep(0.5)
        names: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
        offset = 0
        while True:
            page = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)),
                sort=TaskRunSort.ID_DESC,
                limit=200,
                offset=offset,
            )
            for task_run in page:
                if task_run.flow_run_id in names:
                    names[task_run.flow_run_id].append(task_run.name)
            if len(page) < 200:
                return names
            offset += 200


async def pending_deployment_run(
    flow_name: str, parameters: dict[str, Any], *, pool: str | None = None, pending: bool = True
) -> FlowRun:
    """A flow run of a new deployment of ``flow_name``, moved to Pending as a worker does before
    starting it (``pending=False``: left Scheduled, to be claimed)."""
    async with get_client() as client:
        flow_id = await client.create_flow_from_name(flow_name)
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name=f"{flow_name}-{uuid.uuid4().hex[:6]}", work_pool_name=pool
        )
        flow_run = await client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
        if pending:
            await client.set_flow_run_state(flow_run.id, Pending())
        return await client.read_flow_run(flow_run.id)


class ClaimProbe(SlotAwareWorker[BaseJobConfiguration, BaseVariables, BaseWorkerResult]):
    """A worker type that records the runs offered to its claim step and claims none of them."""

    type = "trinity-claim-probe"
    job_configuration = BaseJobConfiguration
    job_configuration_variables = BaseVariables

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offered: list[list[uuid.UUID]] = []

    async def scheduled_flow_runs(self) -> list[WorkerFlowRunResponse]:
        found = await super().scheduled_flow_runs()
        self.offered.append([entry.flow_run.id for entry in found])
        return []

    async def run(
        self, flow_run: FlowRun, configuration: BaseJobConfiguration, task_status: Any = None
    ) -> Any:
        raise AssertionError(f"flow run {flow_run.id} was not to be claimed")


class RefusingClaimProbe(SlotAwareWorker[BaseJobConfiguration, BaseVariables, BaseWorkerResult]):
    """A worker type whose claim hook records each run it is asked to claim and claims none; its
    submission hook records each submission that ended."""

    type = "trinity-refusing-claim-probe"
    job_configuration = BaseJobConfiguration
    job_configuration_variables = BaseVariables

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asked: list[uuid.UUID] = []
        self.ended: list[uuid.UUID] = []

    async def claim_run(self, flow_run: FlowRun) -> bool:
        self.asked.append(flow_run.id)
        return False

    def submission_ended(self, flow_run: FlowRun) -> None:
        self.ended.append(flow_run.id)

    async def run(
        self, flow_run: FlowRun, configuration: BaseJobConfiguration, task_status: Any = None
    ) -> Any:
        raise AssertionError(f"flow run {flow_run.id} was not claimed, so it must not run")
