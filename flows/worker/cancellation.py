"""Notice when a flow run held by this worker is being cancelled.

Prefect's worker base class only cancels runs that have not started yet; a run in progress is
stopped by whoever runs it. Here that is an executor process, so the worker listens for
``prefect.flow-run.Cancelling`` events (Prefect's event stream, over a websocket) and, while the
stream is unavailable, polls for its runs in a Cancelling state -- the same two channels
Prefect's own runner uses.
"""

from __future__ import annotations

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
from prefect.logging.loggers import get_logger

from flows.worker.flow_run_events import flow_run_event_stream, listen_or_poll

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
        await listen_or_poll(
            self._listen,
            self._poll_once,
            poll_seconds=self._poll_seconds,
            stream_down=lambda exc: logger.warning(
                "Cancellation event stream unavailable (%s); polling instead", exc
            ),
        )

    async def _listen(self) -> None:
        async with flow_run_event_stream(CANCELLING_EVENT) as flow_run_ids:
            # Runs that went Cancelling before the stream was up.
            await self._poll_once()
            async for flow_run_id in flow_run_ids:
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
