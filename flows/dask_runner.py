"""Task runs on a Dask cluster (prefect-dask), for workflows with ``task_runner: {type: dask}``.

The workflow's flow gets prefect-dask's :class:`DaskTaskRunner` as its task runner, so Prefect's
flow engine (in ``trinity run``, the Trinity worker's executors and ``python -m prefect.engine``
alike) enters a copy of it for each flow run: with ``address`` it connects to that scheduler, with
``workers: N`` it starts a local cluster of N worker processes and stops it when the run ends.

Each spec task run is sent through that runner's client as one Dask task, :func:`_run_remote`,
which calls the same Prefect task the in-process path calls, inside the flow run's serialized
context: the task run gets the same name, parent, upstream edges, retries, timeout and cache,
and reports to Prefect from the Dask worker. It hands back the final state *and* the task's
record (attempts, start time, CPU, memory, hashes, the Dask worker's address), which a plain
``Task.submit`` would leave on the worker. The task run is tagged ``dask-worker:<address>``.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast
from uuid import uuid4

import anyio
import distributed
from prefect import Task, tags
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext, hydrated_context, serialize_context
from prefect.states import Failed
from prefect.task_runners import TaskRunner
from prefect_dask.task_runners import DaskTaskRunner

from flows.recording import TaskRecord
from flows.task_run import TaskCall
from specs.models import TaskRunner as TaskRunnerSpec
from trinity.core.redaction import hold_secrets, install_log_redaction, redact_urls, release_secrets

DASK_WORKER_TAG = "dask-worker:"


def task_runner_for(spec: TaskRunnerSpec) -> TaskRunner[Any]:
    """The prefect-dask task runner a workflow's ``task_runner`` asks for."""
    if spec.address is not None:
        return DaskTaskRunner(address=spec.address)
    # Loopback only, the dashboard on a free port: the cluster serves one run and ends with it.
    cluster = {
        "n_workers": spec.workers,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
    }
    return DaskTaskRunner(cluster_kwargs=cluster)


def _current_runner() -> DaskTaskRunner:
    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    if not isinstance(runner, DaskTaskRunner):
        raise RuntimeError("not inside a flow run whose task runner is a DaskTaskRunner")
    return runner


def _describe(runner: DaskTaskRunner) -> str:
    return f"Dask scheduler {runner.address}" if runner.address else "local Dask cluster"


async def connect() -> str | None:
    """Connect the current flow run's runner to its cluster (starting a local one): None when
    ready, else one line saying why not.

    Done once per run, off the event loop, before any task is sent: the runner creates its client
    on first use and is not safe to create from several threads at once.
    """
    runner = _current_runner()
    try:
        await anyio.to_thread.run_sync(lambda: runner.client)
    except Exception as exc:
        reason = redact_urls(f"{type(exc).__name__}: {exc}".strip().splitlines()[0])
        return f"{_describe(runner)} not usable: {reason}"
    return None


def _run_remote(
    task: Task[Any, Any], label: str, call: TaskCall, wait_for: list[State], context: dict[str, Any]
) -> tuple[State, TaskRecord | None]:
    """On a Dask worker: run one spec task run in the flow run's context."""
    call.worker = distributed.get_worker().address
    # This process masks the run's secrets while its task runs, as the flow run's process does.
    held = list(call.scope.held)
    install_log_redaction()
    hold_secrets(held)
    try:
        # The tag names the worker on the task run in the Prefect UI (its logs say it too).
        with hydrated_context(context), tags(f"{DASK_WORKER_TAG}{call.worker}"):
            state: State = asyncio.run(task(label=label, call=call, wait_for=wait_for, return_state=True))
    finally:
        release_secrets(held)
    return state, call.record


async def run_on_dask(task: Task[Any, Any], label: str, call: TaskCall, wait_for: list[State]) -> State:
    """Run one spec task run on the current flow run's Dask cluster; its final state.

    The record ``call`` carries is updated from the one the worker filled in. A run the cluster
    lost (its worker died, the scheduler went away) ends Failed with the reason.
    """
    # distributed's Client is untyped.
    client: Any = _current_runner().client
    future = client.submit(
        _run_remote,
        task,
        label,
        call,
        wait_for,
        serialize_context(),
        key=f"{label}-{uuid4().hex}",
        pure=False,
    )
    loop = asyncio.get_running_loop()
    done = anyio.Event()
    future.add_done_callback(lambda _: loop.call_soon_threadsafe(done.set))
    try:
        await done.wait()
        state, record = cast(tuple[State, TaskRecord | None], future.result())
    except Exception as exc:
        reason = redact_urls(f"{type(exc).__name__}: {exc}".strip().splitlines()[0])
        return Failed(message=f"lost on the Dask cluster: {reason}")
    finally:
        if not future.done():
            future.cancel()
    if record is not None and call.record is not None:
        call.record.__dict__.update(record.__dict__)
    return state
