"""Flows the Prefect-compatibility tests run in this process, what they saw, and running helpers.

Each run gets a ``key``: the test waits on ``RUNNING[key]`` until the flow is inside its body and
reads ``SEEN[key]`` afterwards; ``INTERRUPTS[key]`` is the run's :class:`ThreadInterrupt` where
the flow sends the cancellation itself.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, State
from prefect.flows import Flow

from flows.worker.prefect_compat import (
    RunCancelled,
    SuspensionNotice,
    SuspensionWatcher,
    ThreadInterrupt,
    run_sync_flow_run,
)

RUNNING: dict[str, threading.Event] = {}
SEEN: dict[str, dict[str, Any]] = {}
INTERRUPTS: dict[str, ThreadInterrupt] = {}
CANCELLED_HOOKS: list[str] = []


@task
def tick(index: int) -> int:
    return index


def _on_cancellation(flow: Flow[..., Any], flow_run: FlowRun, state: State) -> None:
    CANCELLED_HOOKS.append(str(flow_run.id))


def _observe(key: str) -> None:
    SEEN[key] = {
        "threads": [thread.name for thread in threading.enumerate()],
        "sigterm": signal.getsignal(signal.SIGTERM),
    }
    RUNNING[key].set()


@flow(name="compat-sync-ticker", on_cancellation=[_on_cancellation])
def sync_ticker(key: str, seconds: float) -> int:
    """Runs a task every 50 ms for ``seconds``."""
    _observe(key)
    deadline, ticks = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        tick(ticks)
        ticks += 1
        time.sleep(0.05)
    return ticks


@flow(name="compat-async-ticker", on_cancellation=[_on_cancellation])
async def async_ticker(key: str, seconds: float) -> int:
    """The async twin of :func:`sync_ticker`."""
    _observe(key)
    deadline, ticks = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        tick(ticks)
        ticks += 1
        await asyncio.sleep(0.05)
    return ticks


@flow(name="compat-converting-flow", on_cancellation=[_on_cancellation])
def converting_flow(key: str) -> None:
    """Cancels itself, then raises another error in place of RunCancelled, as Prefect 3.8's task
    engine does when the cancellation lands before its task run exists."""
    try:
        INTERRUPTS[key].interrupt()
        while True:
            time.sleep(0.01)
    except RunCancelled:
        raise ValueError("Task run is not set") from None


@contextmanager
def watched(key: str) -> Iterator[threading.Event]:
    """Set up ``RUNNING[key]`` for one run."""
    RUNNING[key] = threading.Event()
    try:
        yield RUNNING[key]
    finally:
        RUNNING.pop(key, None)


class RecordingWatcher:
    """A suspension watcher that only records what the engine hands it."""

    def __init__(self) -> None:
        self.watched: list[tuple[uuid.UUID, SuspensionNotice]] = []

    @contextmanager
    def watching(self, flow_run_id: uuid.UUID, notice: SuspensionNotice) -> Iterator[None]:
        self.watched.append((flow_run_id, notice))
        yield


def final_state(state: State | None) -> State:
    """``state``, which must be there."""
    assert state is not None, "the engine handed back no state"
    return state


def run_in_a_thread(
    flow: Flow[..., Any],
    flow_run: FlowRun,
    parameters: dict[str, Any],
    *,
    interrupt: ThreadInterrupt | None = None,
    watcher: SuspensionWatcher | None = None,
) -> asyncio.Future[State | None]:
    """Run a sync flow as an executor does: in a thread of its own, marked for interruption."""
    interrupt = interrupt or ThreadInterrupt()

    def run() -> State | None:
        interrupt.enter()
        try:
            return run_sync_flow_run(flow, flow_run, parameters, interrupt=interrupt, watcher=watcher)
        finally:
            interrupt.leave()

    return asyncio.ensure_future(asyncio.to_thread(run))


async def state_names(flow_run_id: uuid.UUID) -> list[str]:
    """The names of a flow run's states, oldest first."""
    async with get_client() as client:
        return [state.name for state in await client.read_flow_run_states(flow_run_id)]
