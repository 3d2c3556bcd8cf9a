"""One watcher per executor process for flow runs suspended from outside.

Prefect lets another process suspend a running deployment flow run (``suspend_flow_run`` with
its id): the run's engine learns of it from the event stream and stops at its next task. To
learn of it, Prefect's engine gives every deployment flow run its own watcher -- a thread, an
event loop, an API client and a websocket subscription, opened (blocking the caller) when the
run starts and joined when it ends. Dozens of runs at once in one process make that the
biggest per-run cost on both sides, so an executor keeps a single subscription for all its runs
and hands each run's engine the same notice.

The engines of :mod:`flows.worker.prefect_compat` hand each run's :class:`SuspensionNotice`
to this watcher (Prefect 3.8 has no public hook for it; that module says what it uses).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import State, StateType
from prefect.logging.loggers import get_logger

from flows.worker.flow_run_events import flow_run_event_stream, listen_or_poll
from flows.worker.prefect_compat import SuspensionNotice

logger = get_logger("trinity.worker.suspension")

SUSPENDED_EVENT = "prefect.flow-run.Suspended"

current_watch: ContextVar[SuspensionWatch | None] = ContextVar("trinity_suspension_watch", default=None)


class SuspensionWatch:
    """Marks the notice of each watched flow run that another process suspends."""

    def __init__(self, client: PrefectClient, *, poll_seconds: float = 10.0) -> None:
        self._client = client
        self._poll_seconds = poll_seconds
        self._notices: dict[UUID, SuspensionNotice] = {}
        # Engines of sync flows enter and leave from their own threads.
        self._lock = threading.Lock()

    @contextmanager
    def watching(self, flow_run_id: UUID, notice: SuspensionNotice) -> Iterator[None]:
        """Watch ``flow_run_id`` while the block runs."""
        with self._lock:
            self._notices[flow_run_id] = notice
        try:
            yield
        finally:
            with self._lock:
                if self._notices.get(flow_run_id) is notice:
                    del self._notices[flow_run_id]

    def _watched(self) -> set[UUID]:
        with self._lock:
            return set(self._notices)

    async def run(self) -> None:
        """Listen to the event stream until cancelled; poll while it is unavailable."""
        await listen_or_poll(
            self._listen,
            self._poll_once,
            poll_seconds=self._poll_seconds,
            stream_down=lambda exc: logger.debug("Suspension event stream unavailable (%s); polling", exc),
        )

    async def _listen(self) -> None:
        async with flow_run_event_stream(SUSPENDED_EVENT) as flow_run_ids:
            async for flow_run_id in flow_run_ids:
                if flow_run_id in self._watched():
                    await self._confirm(flow_run_id)

    async def _confirm(self, flow_run_id: UUID) -> None:
        # The event says what happened; the flow run's state says whether it still holds.
        try:
            flow_run = await self._client.read_flow_run(flow_run_id)
        except Exception:
            logger.warning("Could not read flow run %s after a suspension event", flow_run_id, exc_info=True)
            return
        self._mark(flow_run_id, flow_run.state)

    def _mark(self, flow_run_id: UUID, state: State | None) -> None:
        with self._lock:
            notice = self._notices.get(flow_run_id)
        if notice is not None:
            notice.mark(state)

    async def _poll_once(self) -> None:
        watched = self._watched()
        if not watched:
            return
        try:
            flow_runs = await self._client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=sorted(watched, key=str)),
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.PAUSED]),
                        name=FlowRunFilterStateName(any_=["Suspended"]),
                    ),
                )
            )
        except Exception:
            logger.debug("Could not poll for suspended flow runs", exc_info=True)
            return
        for flow_run in flow_runs:
            self._mark(flow_run.id, flow_run.state)
