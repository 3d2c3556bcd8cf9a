"""Plain helpers of the fault suite: processes to hurt, workflows to run, records to check."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psutil
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun

from deployments.service import deploy_workflow
from tests.flows.factories import specification, workflow
from tests.flows.worker.support import (
    REPO,
    VENV_BIN,
    WorkerProcess,
    create_runs,
    read_runs,
    sqlite_trinity_database,
)
from tests.flows.worker.support import worker_env as plain_worker_env
from tests.support.servers import PrefectServer, start_prefect_server

# Short heartbeats so a dead run is found in seconds (the automation waits two intervals).
HEARTBEAT_SECONDS = 5
# The suite's Prefect servers log warnings and errors only (their logs are kept in their home).
SERVER_ENV = {"PREFECT_LOGGING_LEVEL": "WARNING"}


def chaos_prefect_server(home: Path, *, database_url: str | None, port: int | None = None) -> PrefectServer:
    """Start the suite's Prefect server (again, on the same port, after a kill)."""
    return start_prefect_server(home, database_url=database_url, port=port, extra_env=SERVER_ENV)


def kill_prefect_server(server: PrefectServer) -> None:
    """SIGKILL the server and everything it started (no clean shutdown)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)


def restart_prefect_server(server: PrefectServer) -> None:
    """Start a killed server again on the same port, home and database (``server`` is updated, so
    whoever stops it later stops the new process)."""
    port = int(server.api_url.rsplit(":", 1)[1].split("/", 1)[0])
    url = server.env.get("PREFECT_API_DATABASE_CONNECTION_URL", "")
    database_url = "postgresql://" + url.split("://", 1)[1] if url.startswith("postgresql") else None
    server.process = chaos_prefect_server(server.home, database_url=database_url, port=port).process


class Worker(WorkerProcess):
    """A ``trinity worker`` in a session of its own, so its whole process tree can be hurt."""

    def tree(self) -> list[psutil.Process]:
        """The worker and every process under it (executors, shell commands)."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the worker's process group, as ``trinity up`` and systemd do."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill_tree(self) -> None:
        """SIGKILL the worker and its executors at once: the run's process is gone."""
        for process in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self.process.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> int:
        """SIGTERM to the whole group; SIGKILL the tree if it is still there a minute later."""
        if self.process.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill_tree()
        # Executors orphaned by a kill of the worker alone finish their runs and exit; make sure.
        for process in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        return self.process.returncode


def worker_env(server: PrefectServer, folder: Path, **extra: str) -> dict[str, str]:
    """Environment of a worker on ``server`` with the suite's heartbeat interval."""
    env = plain_worker_env(server, sqlite_trinity_database(folder))
    env.update(
        TRINITY_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
        TRINITY_STATE_DIR=str(folder / "state"),
        # Runs' INFO lines must reach Prefect (the server's environment keeps its own at WARNING).
        PREFECT_LOGGING_LEVEL="INFO",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def running_worker(
    pool: str,
    env: dict[str, str],
    log_path: Path,
    *,
    processes: int = 1,
    concurrency: int = 4,
    grace_seconds: float = 30,
    name: str | None = None,
) -> Iterator[Worker]:
    """A ``trinity worker`` for the block; stopped (and its tree killed) afterwards."""
    command = [
        str(VENV_BIN / "trinity"), "worker", "--pool", pool,
        "--processes", str(processes), "--concurrency", str(concurrency),
        "--poll-seconds", "0.5", "--grace-seconds", str(grace_seconds),
        "--name", name or f"{pool}-{uuid.uuid4().hex[:4]}",
    ]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(process=process, log_path=log_path)
    try:
        yield worker
    finally:
        worker.stop()


async def deploy(name: str, pool: str, tasks: list[dict[str, Any]], **extra: Any) -> uuid.UUID:
    """Deploy a Trinity workflow (``extra``: workflow fields such as ``on_crash``); its id."""
    spec = specification(
        {"type": "object", "properties": {"marker": {"type": "string", "default": "-"}}},
        name=f"{name}-spec",
    )
    document = workflow(tasks, name=name, spec_name=f"{name}-spec", **extra)
    ref = await deploy_workflow(workflow=document, specification=spec, work_pool=pool)
    return ref.id


# The fault suite's name for it: it starts runs for a worker to take.
start_runs = create_runs


async def wait_until(
    ids: Iterable[uuid.UUID], predicate: Any, *, timeout: float, what: str, worker: Worker | None = None
) -> list[FlowRun]:
    """Poll until every run satisfies ``predicate``; fail with their states (and the worker's log)."""
    ids = list(ids)
    deadline = time.monotonic() + timeout
    runs: list[FlowRun] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the server may be on its way back
            runs = await read_runs(ids)
            if len(runs) == len(ids) and all(predicate(run) for run in runs):
                return runs
        await asyncio.sleep(0.3)
    states = sorted(f"{run.id}: {run.state_name} ({run.state.message if run.state else ''})" for run in runs)
    tail = f"\nworker log:\n{worker.log()[-3000:]}" if worker is not None else ""
    raise AssertionError(f"runs not {what} after {timeout:.0f}s: {states}{tail}")


async def runs_of(deployment_id: uuid.UUID, *, tag: str | None = None) -> list[FlowRun]:
    """Every flow run of a deployment (optionally only those with ``tag``)."""
    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
                tags=FlowRunFilterTags(all_=[tag]) if tag else None,
            )
        )


async def running_state_count(flow_run_id: uuid.UUID) -> int:
    """How many times the run entered Running: more than once means it was executed twice."""
    async with get_client() as client:
        return sum(state.is_running() for state in await client.read_flow_run_states(flow_run_id))


async def state_names(flow_run_id: uuid.UUID) -> list[str]:
    """The names of every state the run has been in, oldest first."""
    async with get_client() as client:
        return [state.name for state in await client.read_flow_run_states(flow_run_id)]


def state_name(run: FlowRun) -> str:
    return run.state_name or ""


def is_final(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_final()


def is_running(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_running()


def marker_path(folder: Path) -> str:
    return str(folder / f"marker-{uuid.uuid4().hex[:6]}")


def shell_task(script: str, task_id: str = "work", **extra: Any) -> dict[str, Any]:
    """A ``shell`` task running ``sh -c script`` (``$MARKER`` is the run's marker parameter)."""
    return {
        "id": task_id,
        "uses": "shell",
        "with": {"argv": ["sh", "-c", script], "env": {"MARKER": "${{ params.marker }}"}},
        **extra,
    }
