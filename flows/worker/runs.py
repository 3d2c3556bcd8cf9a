"""Run one existing flow run to a final state with Prefect's own flow engine, in this process.

This is what ``python -m prefect.engine <flow-run-id>`` does in a fresh process, minus the
process: the engine proposes Running, records task runs, sends logs, heartbeats, calls the
flow's hooks and reports the final state exactly as it does there. Two things differ:

* Cancellation. A process runner cancels a run by terminating its process; here many runs share
  a process, so a run is stopped on its own: an async flow's task is cancelled, a sync flow's
  thread gets :class:`RunCancelled` raised in it. The engine is then told through
  ``handle_cancellation``, the path Prefect takes after a cancel request over its control
  channel, so the run ends Cancelled (not Crashed) and its ``on_cancellation`` hooks run.
* Suspension from outside. The engine subclasses below watch for it through the executor's
  one shared subscription (:mod:`flows.worker.suspension`) instead of a thread and websocket
  per flow run.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect._flow_run_suspension import FlowRunSuspensionRequest, register_flow_run_suspension_request
from prefect.client.schemas.objects import FlowRun, State
from prefect.flow_engine import (
    AsyncFlowRunEngine,
    FlowRunEngine,
    run_generator_flow_async,
    run_generator_flow_sync,
)
from prefect.flows import Flow
from prefect.utilities.callables import get_call_parameters, parameters_to_args_kwargs

from flows.worker.suspension import current_watch


class RunCancelled(BaseException):
    """Raised inside a sync flow run's thread to stop it when the run is cancelled."""


@dataclass
class RunControl:
    """The handle the executor keeps to cancel one running flow run."""

    flow_run_id: UUID
    cancel_requested: bool = False
    reason: str = "Flow run was cancelled."
    task: asyncio.Task[Any] | None = None
    thread_id: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def request_cancel(self, reason: str) -> None:
        """Stop the run: cancel its asyncio task, or raise :class:`RunCancelled` in its thread."""
        self.cancel_requested = True
        self.reason = reason
        with self._lock:
            if self.thread_id is not None:
                # CPython raises it the next time the thread runs Python code; a thread blocked
                # in C (a long time.sleep, a socket read) sees it when that call returns.
                _set_async_exc(self.thread_id, RunCancelled)
                return
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def enter_thread(self) -> None:
        """Mark the calling thread as the one running this flow run."""
        with self._lock:
            self.thread_id = threading.get_ident()

    def leave_thread(self) -> None:
        """Unmark the calling thread; drop a cancellation that has not been raised yet."""
        with self._lock:
            if self.thread_id is not None:
                _set_async_exc(self.thread_id, None)
            self.thread_id = None


def _set_async_exc(thread_id: int, exc_type: type[BaseException] | None) -> None:
    exc = ctypes.py_object(exc_type) if exc_type is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), exc)


@contextmanager
def _suspension_scope(
    flow_run: FlowRun | None, request: FlowRunSuspensionRequest
) -> Iterator[FlowRunSuspensionRequest]:
    """What ``setup_flow_run_suspension_request`` does, with the executor's shared watcher
    in place of a watcher thread and websocket per flow run (see :mod:`flows.worker.suspension`)."""
    if flow_run is None:
        raise ValueError("Flow run not set")
    with ExitStack() as stack:
        stack.enter_context(register_flow_run_suspension_request(flow_run.id, request))
        watch = current_watch.get()
        if flow_run.deployment_id and watch is not None:
            stack.enter_context(watch.watching(flow_run.id, request))
        request.raise_if_requested()
        yield request


class ExecutorAsyncFlowRunEngine(AsyncFlowRunEngine[Any, Any]):
    """Prefect's async flow engine, watching for suspension through the executor's watcher."""

    @contextmanager
    def setup_flow_run_suspension_request(self) -> Iterator[FlowRunSuspensionRequest]:
        with _suspension_scope(self.flow_run, self._get_flow_run_suspension_request()) as request:
            yield request


class ExecutorFlowRunEngine(FlowRunEngine[Any, Any]):
    """Prefect's sync flow engine, watching for suspension through the executor's watcher."""

    @contextmanager
    def setup_flow_run_suspension_request(self) -> Iterator[FlowRunSuspensionRequest]:
        with _suspension_scope(self.flow_run, self._get_flow_run_suspension_request()) as request:
            yield request


def flow_parameters(flow: Flow[..., Any], flow_run: FlowRun) -> dict[str, Any]:
    """The call parameters for ``flow`` from the flow run's parameters, flow defaults applied."""
    args, kwargs = parameters_to_args_kwargs(flow.fn, flow_run.parameters or {})
    return get_call_parameters(flow.fn, args, kwargs)


async def run_async_flow(flow: Flow[..., Any], flow_run: FlowRun, control: RunControl) -> State | None:
    """Run an async flow for an existing flow run in the current event loop.

    Returns the final state, or None where the engine does not hand it back (generator flows).
    """
    parameters = flow_parameters(flow, flow_run)
    if flow.isgenerator:
        async for _ in run_generator_flow_async(flow, flow_run=flow_run, parameters=parameters):
            pass
        return None

    engine = ExecutorAsyncFlowRunEngine(flow=flow, flow_run=flow_run, parameters=parameters)
    # The same loop as prefect.flow_engine.run_flow_async, with cancellation of this run alone.
    async with engine.start():
        while engine.is_running():
            async with engine.run_context():
                try:
                    await engine.call_flow_fn()
                except asyncio.CancelledError as exc:
                    if not control.cancel_requested:
                        raise
                    uncancel_current_task()
                    engine.cancel_all_tasks()
                    await engine.handle_cancellation(exc)
    return engine.state


def run_sync_flow(flow: Flow[..., Any], flow_run: FlowRun, control: RunControl) -> State | None:
    """Run a sync flow for an existing flow run in the calling thread (one made for this run).

    Returns the final state, or None where the engine does not hand it back (generator flows).
    """
    parameters = flow_parameters(flow, flow_run)
    control.enter_thread()
    try:
        if control.cancel_requested:
            raise RunCancelled()
        if flow.isgenerator:
            for _ in run_generator_flow_sync(flow, flow_run=flow_run, parameters=parameters):
                pass
            return None

        engine = ExecutorFlowRunEngine(flow=flow, flow_run=flow_run, parameters=parameters)
        with engine.start():
            while engine.is_running():
                with engine.run_context():
                    try:
                        engine.call_flow_fn()
                    except RunCancelled as exc:
                        engine.cancel_all_tasks()
                        engine.handle_cancellation(exc)
        return engine.state
    finally:
        control.leave_thread()


def uncancel_current_task() -> None:
    """Clear pending cancellation of the current asyncio task, so it can await its clean-up."""
    task = asyncio.current_task()
    if task is not None:
        while task.cancelling():
            task.uncancel()
