"""Notice when a flow run held by this worker is being cancelled.

Prefect's worker base class only cancels runs that have not started yet; a run in progress is
stopped by whoever runs it. Here that is an executor process, so the worker listens for
``prefect.flow-run.Cancelling`` events (Prefect's event stream, over a websocket) and, while the
stream is unavailable, polls for its runs in a Cancelling state -- the same two channels
Prefect's own runner uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.logging.loggers import get_logger

logger = get_logger("trinity.worker.cancellation")

CANCELLING_EVENT = "prefect.flow-run.Cancelling"


class CancellationWatcher:
    """Calls ``on_cancelling(flow_run_id)`` for each held flow run that enters Cancelling."""

    def __init__(
        self,
        *,
        held: Callable[[], set[UUID]],
        on_cancelling: Callable[[UUID], object],
        poll_seconds: float = 10.0,
    ) -> None:
        self._held = held
        self._on_cancelling = on_cancelling
        self._poll_seconds = poll_seconds
        self._notified: set[UUID] = set()

    async def run(self) -> None:
        """Watch until cancelled: the event stream first, polling whenever it is down."""
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("Cancellation event stream unavailable (%s); polling instead", exc)
            # Catch up on anything missed while the stream was down, then try it again.
            await self._poll_once()
            await asyncio.sleep(self._poll_seconds)

    async def _listen(self) -> None:
        event_filter = EventFilter(event=EventNameFilter(name=[CANCELLING_EVENT]))
        async with get_events_subscriber(filter=event_filter, reconnect_on_clean_close=True) as events:
            # Runs that went Cancelling before the stream was up.
            await self._poll_once()
            async for event in events:
                resource_id = event.resource.id
                if not resource_id.startswith("prefect.flow-run."):
                    continue
                try:
                    flow_run_id = UUID(resource_id.removeprefix("prefect.flow-run."))
                except ValueError:
                    continue
                self._notify(flow_run_id)

    async def _poll_once(self) -> None:
        held = self._held()
        if not held:
            return
        ids = FlowRunFilterId(any_=sorted(held, key=str))
        try:
            async with get_client() as client:
                # Prefect marks a cancelling run either by type or, for older clients, by name.
                by_type = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        id=ids,
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CANCELLING])),
                    )
                )
                by_name = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        id=ids,
                        state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Cancelling"])),
                    )
                )
        except Exception:
            logger.warning("Could not poll for cancelling flow runs", exc_info=True)
            return
        for flow_run in [*by_type, *by_name]:
            self._notify(flow_run.id)

    def _notify(self, flow_run_id: UUID) -> None:
        held = self._held()
        # Forget runs that are gone so the set stays small.
        self._notified &= held
        if flow_run_id in held and flow_run_id not in self._notified:
            self._notified.add(flow_run_id)
            self._on_cancelling(flow_run_id)
