"""Everything the Trinity worker takes from Prefect beyond its public surface, in one module.

Written against Prefect 3.8 (the range pinned in ``pyproject.toml``). At import it checks the
installed Prefect first and refuses any other version with one line naming both, before it
imports a private module that may have moved. Each behaviour relied on below is pinned by
``tests/flows/worker/test_prefect_compat.py``; a Prefect upgrade starts there.

What is used, and why no public surface does the job:

* ``prefect.flow_engine``'s engines. An executor runs an *existing* flow run in a process it
  shares with other runs, and must stop one run on its own. ``run_flow_sync``/``run_flow_async``
  offer no way in: Prefect's own cancellation of a running flow is a SIGTERM to the process
  (a runner's control channel), which here would end every run of the executor. So the engine's
  run loop is driven here, and a cancelled run is handed to ``handle_cancellation``, the step
  Prefect takes after that SIGTERM, so it ends Cancelled and its ``on_cancellation`` hooks run.
* ``prefect._flow_run_suspension``. For every deployment flow run Prefect's engine opens a
  watcher thread, event loop, client and websocket to learn of suspension from outside. The
  engines below override ``setup_flow_run_suspension_request`` (the engine's own hook) to
  register the run's request with one watcher per executor instead (:mod:`flows.worker.suspension`).
* ``BaseWorker``'s claim step (``_get_scheduled_flow_runs``) and the state it reads, so a worker
  asks the server only for as many runs as it has free slots.
* ``BaseWorker._propose_pending_state`` and ``_submit_run``: the proposal that claims a run, and
  the submission around it. Prefect's claim goes through the client's retries and tells a lost
  answer from a refusal by nothing; the Trinity worker claims once and reads back
  (:mod:`flows.worker.claims`), and heartbeats a claimed run until its executor has it. Exposed as
  the hooks :meth:`SlotAwareWorker.claim_run` and :meth:`SlotAwareWorker.submission_ended`.
* ``PREFECT__WORKER_NAME``: the variable Prefect's API client reads for its attribution headers.
* ``PyThreadState_SetAsyncExc``, to stop a sync flow's thread: see :class:`ThreadInterrupt`.
* ``EventsWorker._instances``: whether this process already has an events worker, so a command
  can deliver its last events before it exits without starting one (:func:`deliver_pending_events`).
"""

from __future__ import annotations

import abc
import asyncio
import ctypes
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, Protocol, TypeVar
from uuid import UUID

import prefect

_LOWEST = (3, 8, 8)
_ABOVE = (3, 9)
SUPPORTED_PREFECT = f">={'.'.join(map(str, _LOWEST))},<{'.'.join(map(str, _ABOVE))}"


class UnsupportedPrefectError(ImportError):
    """The installed Prefect is outside the range this module was written and tested for."""


def check_prefect_version(version: str) -> None:
    """Raise :class:`UnsupportedPrefectError` unless ``version`` is in :data:`SUPPORTED_PREFECT`."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    release = tuple(int(part) for part in match.groups("0")) if match else None
    if release is None or not _LOWEST <= release < _ABOVE:
        raise UnsupportedPrefectError(
            f"The Trinity worker supports Prefect {SUPPORTED_PREFECT} (it relies on internals of that "
            f"release line), but Prefect {version} is installed; "
            f"install a supported one: pip install 'prefect{SUPPORTED_PREFECT}'"
        )


# Before the private imports below: on another Prefect they may not exist, and the version is the
# message to give.
check_prefect_version(prefect.__version__)

from prefect._flow_run_suspension import (  # noqa: E402
    FlowRunSuspensionRequest,
    is_suspended_flow_run_state,
    register_flow_run_suspension_request,
)
from prefect.client.schemas.objects import FlowRun, State  # noqa: E402
from prefect.client.schemas.responses import WorkerFlowRunResponse  # noqa: E402
from prefect.events.worker import EventsWorker  # noqa: E402
from prefect.flow_engine import (  # noqa: E402
    AsyncFlowRunEngine,
    BaseFlowRunEngine,
    FlowRunEngine,
    run_generator_flow_async,
    run_generator_flow_sync,
)
from prefect.flows import Flow  # noqa: E402
from prefect.workers.base import (  # noqa: E402
    BaseJobConfiguration,
    BaseVariables,
    BaseWorker,
    BaseWorkerResult,
)

WORKER_NAME_VARIABLE = "PREFECT__WORKER_NAME"


def attribution_environment(worker_name: str) -> dict[str, str]:
    """Environment that makes a process's API requests carry ``worker_name``, as a worker's own do."""
    return {WORKER_NAME_VARIABLE: worker_name}


# -- suspension ---------------------------------------------------------------------------------


class SuspensionNotice:
    """One flow run's suspension request: once marked, the engine stops the run (as Suspended)
    at its next task."""

    def __init__(self, request: FlowRunSuspensionRequest) -> None:
        self._request = request

    def mark(self, state: State | None) -> bool:
        """Mark the run suspended if ``state`` (its state as read from the API) is Suspended and it
        is not marked yet; return whether it was marked now."""
        if not is_suspended_flow_run_state(state) or self._request.is_requested():
            return False
        assert state is not None
        self._request.mark_requested(state)
        return True

    def is_marked(self) -> bool:
        """Whether the run has been marked suspended."""
        return self._request.is_requested()


class SuspensionWatcher(Protocol):
    """Tells the notices of the flow runs it watches when another process suspends them."""

    def watching(self, flow_run_id: UUID, notice: SuspensionNotice) -> AbstractContextManager[None]:
        """Watch ``flow_run_id`` while the block runs."""
        ...


@contextmanager
def _suspension_scope(
    flow_run: FlowRun | None, request: FlowRunSuspensionRequest, watcher: SuspensionWatcher | None
) -> Iterator[FlowRunSuspensionRequest]:
    # BaseFlowRunEngine.setup_flow_run_suspension_request, with `watcher` in place of
    # observe_flow_run_suspension (a thread and a websocket per flow run).
    if flow_run is None:
        raise ValueError("Flow run not set")
    with ExitStack() as stack:
        # In-process suspension (suspend_flow_run from this process) finds the run here.
        stack.enter_context(register_flow_run_suspension_request(flow_run.id, request))
        if flow_run.deployment_id and watcher is not None:
            stack.enter_context(watcher.watching(flow_run.id, SuspensionNotice(request)))
        request.raise_if_requested()
        yield request


class _WatchedSuspension(BaseFlowRunEngine[Any, Any]):
    """The engine hook both executor engines override: suspension from the executor's watcher."""

    suspension_watcher: SuspensionWatcher | None = None

    @contextmanager
    def setup_flow_run_suspension_request(self) -> Iterator[FlowRunSuspensionRequest]:
        request = self._get_flow_run_suspension_request()
        with _suspension_scope(self.flow_run, request, self.suspension_watcher) as scoped:
            yield scoped


class ExecutorAsyncFlowRunEngine(_WatchedSuspension, AsyncFlowRunEngine[Any, Any]):
    """Prefect's async flow engine, learning of suspension from the executor's watcher."""


class ExecutorFlowRunEngine(_WatchedSuspension, FlowRunEngine[Any, Any]):
    """Prefect's sync flow engine, learning of suspension from the executor's watcher."""


# -- running one flow run -----------------------------------------------------------------------


class RunCancelled(BaseException):
    """Raised inside a sync flow run's thread to stop it when the run is cancelled.

    Not Prefect's ``CancelledError``: the engine's timeout scopes (flow and task
    ``timeout_seconds``) turn that one into a timeout, and the run would end TimedOut.
    """


class ThreadInterrupt:
    """Raises :class:`RunCancelled` in the thread running one sync flow run.

    Why an exception raised into the thread (``PyThreadState_SetAsyncExc``): many flow runs share
    an executor process, each sync flow in a thread of its own, and a cancelled run must stop
    without the others. Nothing Prefect supports reaches a thread: its cancellation of a running
    flow is a SIGTERM to the whole process; ``anyio`` cancel scopes and
    ``prefect.utilities.timeout`` govern only the code that awaits inside them (for sync code the
    latter injects an exception the same way, for timeouts only); and running each sync flow in a
    subprocess of its own is the per-run start-up cost the executor exists to avoid. The
    executor's backstop remains a process boundary: a run that has not stopped after the cancel
    grace period (blocked in C code, where the exception cannot land) gets its executor retired.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread_id: int | None = None
        self._sent = False

    @property
    def sent(self) -> bool:
        """Whether :class:`RunCancelled` has been sent to the thread (raised, or about to be)."""
        with self._lock:
            return self._sent

    def enter(self) -> None:
        """Mark the calling thread as the one to interrupt."""
        with self._lock:
            self._thread_id = threading.get_ident()

    def disarm(self) -> None:
        """Drop an interruption the thread has not raised yet; the thread stays marked."""
        with self._lock:
            if self._thread_id is not None:
                _set_async_exc(self._thread_id, None)

    def leave(self) -> None:
        """Unmark the thread, dropping an interruption it has not raised yet."""
        with self._lock:
            if self._thread_id is not None:
                _set_async_exc(self._thread_id, None)
            self._thread_id = None

    def interrupt(self) -> bool:
        """Raise :class:`RunCancelled` in the marked thread, once; False if no thread is marked.

        CPython raises it the next time the thread runs Python code: a thread blocked in C (a long
        ``time.sleep``, a socket read) sees it when that call returns.
        """
        with self._lock:
            if self._thread_id is None:
                return False
            if not self._sent:
                self._sent = True
                _set_async_exc(self._thread_id, RunCancelled)
            return True


def _set_async_exc(thread_id: int, exc_type: type[BaseException] | None) -> None:
    exc = ctypes.py_object(exc_type) if exc_type is not None else None
    changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), exc)
    if changed > 1:
        # CPython's documented remedy when more than one thread state was affected: revert.
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
        raise SystemError(f"raising an exception in thread {thread_id} affected {changed} threads")


async def run_async_flow_run(
    flow: Flow[..., Any],
    flow_run: FlowRun,
    parameters: dict[str, Any],
    *,
    cancel_requested: Callable[[], bool],
    watcher: SuspensionWatcher | None,
) -> State | None:
    """Run an async flow for an existing flow run in the current event loop, as
    ``prefect.flow_engine.run_flow_async`` does; cancelling the calling task while
    ``cancel_requested()`` ends the run Cancelled. Returns the final state, or None where the
    engine does not hand it back (generator flows)."""
    if flow.isgenerator:
        async for _ in run_generator_flow_async(flow, flow_run=flow_run, parameters=parameters):
            pass
        return None

    engine = ExecutorAsyncFlowRunEngine(flow=flow, flow_run=flow_run, parameters=parameters)
    engine.suspension_watcher = watcher
    async with engine.start():
        while engine.is_running():
            async with engine.run_context():
                try:
                    # Annotated as returning a coroutine; it returns the flow's result, unused here.
                    _ = await engine.call_flow_fn()
                except BaseException as exc:
                    # Whatever the cancellation surfaces as: Prefect code it lands in may raise
                    # something else in its place (see run_sync_flow_run).
                    if not cancel_requested():
                        raise
                    uncancel_current_task()
                    engine.cancel_all_tasks()
                    await engine.handle_cancellation(exc)
    return engine.state


def run_sync_flow_run(
    flow: Flow[..., Any],
    flow_run: FlowRun,
    parameters: dict[str, Any],
    *,
    interrupt: ThreadInterrupt,
    watcher: SuspensionWatcher | None,
) -> State | None:
    """Run a sync flow for an existing flow run in the calling thread, as
    ``prefect.flow_engine.run_flow_sync`` does; ``interrupt`` raising :class:`RunCancelled` in the
    flow's code ends the run Cancelled. Returns the final state, or None for generator flows."""
    if flow.isgenerator:
        for _ in run_generator_flow_sync(flow, flow_run=flow_run, parameters=parameters):
            pass
        return None

    engine = ExecutorFlowRunEngine(flow=flow, flow_run=flow_run, parameters=parameters)
    engine.suspension_watcher = watcher
    with engine.start():
        while engine.is_running():
            with engine.run_context():
                try:
                    engine.call_flow_fn()
                except BaseException as exc:
                    # Not only RunCancelled: Prefect code it lands in may raise something else in
                    # its place (3.8's task engine, hit before its task run exists, fails with
                    # "Task run is not set"), and the run must still end Cancelled.
                    if not interrupt.sent:
                        raise
                    interrupt.disarm()
                    engine.cancel_all_tasks()
                    engine.handle_cancellation(exc)
    return engine.state


def uncancel_current_task() -> None:
    """Clear pending cancellation of the current asyncio task, so it can await its clean-up."""
    task = asyncio.current_task()
    if task is not None:
        while task.cancelling():
            task.uncancel()


# -- the worker's claim step --------------------------------------------------------------------

C = TypeVar("C", bound=BaseJobConfiguration)
V = TypeVar("V", bound=BaseVariables)
R = TypeVar("R", bound=BaseWorkerResult)


class SlotAwareWorker(BaseWorker[C, V, R], abc.ABC):
    """``BaseWorker`` whose claim step a subclass can narrow, with the state it needs for that.

    ``abc.ABC`` among the direct bases keeps Prefect from registering this class as a worker type.
    """

    @property
    def free_slots(self) -> int | None:
        """Flow runs this worker can still take; None before set-up or without a limit."""
        return None if self._limiter is None else int(self._limiter.available_tokens)

    @property
    def slot_limit(self) -> int | None:
        """The most flow runs this worker runs at once (None: no limit)."""
        return self._limit

    @property
    def work_pool_name(self) -> str:
        """The work pool this worker polls."""
        return self._work_pool_name

    @property
    def work_queue_names(self) -> list[str]:
        """The work queues it polls, sorted; empty for all of the pool's queues."""
        return sorted(self._work_queues)

    @property
    def prefetch_seconds(self) -> float:
        """How far ahead of their scheduled time runs are claimed."""
        return self._prefetch_seconds

    @property
    def worker_logger(self) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
        """The worker's logger (its records carry the worker's id once registered)."""
        return self._logger

    async def scheduled_flow_runs(self) -> list[WorkerFlowRunResponse]:
        """The flow runs to claim on this poll; ``BaseWorker`` asks for every scheduled one."""
        return await super()._get_scheduled_flow_runs()

    async def claim_run(self, flow_run: FlowRun) -> bool:
        """Claim ``flow_run`` (propose ``Pending``); True when this worker now holds it.

        ``BaseWorker`` calls it once per run it submits, before the run's infrastructure starts.
        """
        return await super()._propose_pending_state(flow_run)

    def submission_ended(self, flow_run: FlowRun) -> None:
        """Called when the submission of ``flow_run`` is over: its infrastructure has it (started),
        it was not claimed, or the submission failed."""

    async def _get_scheduled_flow_runs(self) -> list[WorkerFlowRunResponse]:
        return await self.scheduled_flow_runs()

    async def _propose_pending_state(self, flow_run: FlowRun) -> bool:
        return await self.claim_run(flow_run)

    async def _submit_run(self, flow_run: FlowRun) -> None:
        try:
            await super()._submit_run(flow_run)
        finally:
            self.submission_ended(flow_run)


def _events_worker_running() -> bool:
    # Only a worker that already exists: asking for one would start one, and connect it to the
    # API, just to stop it. Prefect flushes its own workers the same way (prefect/task_runners.py).
    with EventsWorker._instance_lock:
        return bool(EventsWorker._instances)  # type: ignore[misc]


def wait_for_events_sent(timeout: float) -> None:
    """Wait (at most ``timeout`` seconds) until Prefect's events worker in this process has sent
    every event queued so far; nothing when this process has none. The worker keeps running."""
    if not _events_worker_running():
        return
    # wait_until_empty has no timeout of its own; a daemon thread keeps an unreachable API from
    # holding the command (or the interpreter's exit) for longer than ``timeout``.
    waiter = threading.Thread(target=EventsWorker.instance().wait_until_empty, daemon=True)
    waiter.start()
    waiter.join(timeout)


def deliver_pending_events(timeout: float) -> None:
    """Wait (at most ``timeout`` seconds) until Prefect's events worker has sent what it holds, then
    stop it; nothing when this process has none.

    A flow run's last state changes reach the server as events, a moment after the run ends. A
    command that exits right away leaves them queued; Prefect's exit hook still sends them, but logs
    "EventsWorker - Still processing items" (and gives up on what it could not send in time).
    """
    if _events_worker_running():
        wait_for_events_sent(timeout)
        EventsWorker.drain_all(timeout=timeout, at_exit=False)
