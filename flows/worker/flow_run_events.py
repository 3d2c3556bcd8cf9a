"""The flow runs named by one kind of Prefect event, as the event stream delivers them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from uuid import UUID

from prefect.events.clients import PrefectEventSubscriber, get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter

FLOW_RUN_RESOURCE_PREFIX = "prefect.flow-run."


@asynccontextmanager
async def flow_run_event_stream(event_name: str) -> AsyncIterator[AsyncIterator[UUID]]:
    """Subscribe to ``event_name``; yields the ids of the flow runs its events are about.

    Events about anything but a flow run, or with a malformed id, are passed over.
    """
    event_filter = EventFilter(event=EventNameFilter(name=[event_name]))
    async with get_events_subscriber(filter=event_filter, reconnect_on_clean_close=True) as events:
        yield _flow_run_ids(events)


async def _flow_run_ids(events: PrefectEventSubscriber) -> AsyncIterator[UUID]:
    async for event in events:
        resource_id = event.resource.id
        if not resource_id.startswith(FLOW_RUN_RESOURCE_PREFIX):
            continue
        try:
            yield UUID(resource_id.removeprefix(FLOW_RUN_RESOURCE_PREFIX))
        except ValueError:
            continue


async def listen_or_poll(
    listen: Callable[[], Awaitable[None]],
    poll: Callable[[], Awaitable[None]],
    *,
    poll_seconds: float,
    stream_down: Callable[[Exception], None],
) -> None:
    """Run ``listen`` until cancelled; whenever the stream fails, report it, ``poll`` and retry.

    The poll catches up on anything missed while the stream was down.
    """
    while True:
        try:
            await listen()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream_down(exc)
        await poll()
        await asyncio.sleep(poll_seconds)
