"""Run one existing flow run to a final state with Prefect's own flow engine, in this process.

This is what ``python -m prefect.engine <flow-run-id>`` does in a fresh process, minus the
process: the engine proposes Running, records task runs, sends logs, heartbeats, calls the
flow's hooks and reports the final state exactly as it does there. Two things differ (both
driven through :mod:`flows.worker.prefect_compat`, which says why):

* Cancellation. A process runner cancels a run by terminating its process; here many runs share
  a process, so a run is stopped on its own: an async flow's task is cancelled, a sync flow's
  thread gets :class:`RunCancelled` raised in it. The engine then records the run Cancelled and
  runs its ``on_cancellation`` hooks.
* Suspension from outside. The engine learns of it through the executor's one shared
  subscription (:mod:`flows.worker.suspension`) instead of a thread and websocket per flow run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, State
from prefect.flows import Flow
from prefect.utilities.callables import get_call_parameters, parameters_to_args_kwargs

from flows.worker.prefect_compat import (
    RunCancelled,
    ThreadInterrupt,
    run_async_flow_run,
    run_sync_flow_run,
    uncancel_current_task,
)
from flows.worker.suspension import current_watch

__all__ = [
    "RunCancelled",
    "RunControl",
    "flow_parameters",
    "run_async_flow",
    "run_sync_flow",
    "uncancel_current_task",
]


@dataclass
class RunControl:
    """The handle the executor keeps to cancel one running flow run."""

    flow_run_id: UUID
    cancel_requested: bool = False
    reason: str = "Flow run was cancelled."
    task: asyncio.Task[Any] | None = None
    thread: ThreadInterrupt = field(default_factory=ThreadInterrupt)

    def request_cancel(self, reason: str) -> None:
        """Stop the run: raise :class:`RunCancelled` in its thread, or cancel its asyncio task."""
        self.cancel_requested = True
        self.reason = reason
        if self.thread.interrupt():
            return
        if self.task is not None and not self.task.done():
            self.task.cancel()


def flow_parameters(flow: Flow[..., Any], flow_run: FlowRun) -> dict[str, Any]:
    """The call parameters for ``flow`` from the flow run's parameters, flow defaults applied."""
    args, kwargs = parameters_to_args_kwargs(flow.fn, flow_run.parameters or {})
    return get_call_parameters(flow.fn, args, kwargs)


async def run_async_flow(flow: Flow[..., Any], flow_run: FlowRun, control: RunControl) -> State | None:
    """Run an async flow for an existing flow run in the current event loop.

    Returns the final state, or None where the engine does not hand it back (generator flows).
    """
    return await run_async_flow_run(
        flow,
        flow_run,
        flow_parameters(flow, flow_run),
        cancel_requested=lambda: control.cancel_requested,
        watcher=current_watch.get(),
    )


def run_sync_flow(flow: Flow[..., Any], flow_run: FlowRun, control: RunControl) -> State | None:
    """Run a sync flow for an existing flow run in the calling thread (one made for this run).

    Returns the final state, or None where the engine does not hand it back (generator flows).
    """
    parameters = flow_parameters(flow, flow_run)
    control.thread.enter()
    try:
        if control.cancel_requested:
            raise RunCancelled()
        return run_sync_flow_run(
            flow, flow_run, parameters, interrupt=control.thread, watcher=current_watch.get()
        )
    finally:
        control.thread.leave()
