"""Live run events for API clients (SSE and GraphQL subscriptions).

Each stream reads :func:`deployments.events.run_events` in a task of its own and hands the events
to the client through a bounded queue: a client that leaves :data:`QUEUE_SIZE` events unread for
:data:`SLOW_CONSUMER_SECONDS` is dropped with a clear reason. Prefect's feeds are read on
meanwhile (into the stream's own buffer), so a slow client slows neither Prefect nor other
clients. An API key may hold :data:`MAX_STREAMS_PER_KEY` streams at once in one API process (429
beyond that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from api.deps import AppState
from api.deps import authenticate as authenticate_in
from api.errors import (
    ApiError,
    Detail,
    NotFoundError,
    PrefectUnavailableError,
    RateLimitedError,
    UnprocessableError,
)
from api.prefect import PrefectGateway
from api.security import Principal
from api.services.audit import AuditTrail
from deployments import events as prefect_events
from deployments.event_order import Cursor, CursorError, RunEvent

logger = logging.getLogger("trinity.api")

MAX_STREAMS_PER_KEY = 5
QUEUE_SIZE = 1000
SLOW_CONSUMER_SECONDS = 10.0
RETRY_STREAM_SECONDS = 5.0


class SlowConsumerError(ApiError):
    """The client read too slowly; its stream was dropped (it may resume with its last id)."""

    status_code, code = 409, "slow_consumer"


class TooManyStreamsError(RateLimitedError):
    code = "too_many_streams"


def parse_cursor(text: str | None, *, loc: str) -> Cursor | None:
    """A ``Last-Event-ID`` / ``after`` value as a cursor (422 when no stream of ours made it)."""
    if text is None or not text.strip():
        return None
    try:
        return Cursor.parse(text)
    except CursorError as exc:
        raise UnprocessableError(
            "the last event id is not one this API sent", details=[Detail(loc=loc, msg=str(exc))]
        ) from exc


async def authenticate(
    state: AppState, trail: AuditTrail, *, api_key: str | None, authorization: str | None
) -> Principal:
    """The caller of a long-lived request, as REST authenticates it, without holding a session.

    A stream lasts minutes; the session used to check the key is closed before it starts.
    """
    async with state.db.session(read_only=True) as session:
        return await authenticate_in(state, session, trail, api_key=api_key, authorization=authorization)


@dataclass
class StreamRegistry:
    """Open streams per API key, in this process."""

    _open: dict[uuid.UUID, int] = field(default_factory=dict)

    @contextlib.contextmanager
    def slot(self, principal: Principal) -> Iterator[None]:
        """Hold one of the key's stream slots (:class:`TooManyStreamsError` when none is free)."""
        held = self._open.get(principal.key_id, 0)
        limit = MAX_STREAMS_PER_KEY
        if held >= limit:
            raise TooManyStreamsError(
                f"this key already has {held} live event streams open (at most {limit}); close one first",
                retry_after=RETRY_STREAM_SECONDS,
            )
        self._open[principal.key_id] = held + 1
        try:
            yield
        finally:
            remaining = self._open[principal.key_id] - 1
            if remaining:
                self._open[principal.key_id] = remaining
            else:
                del self._open[principal.key_id]


def stream_registry(app: Any) -> StreamRegistry:
    """The application's count of open streams per key (made on first use)."""
    registry: StreamRegistry | None = getattr(app.state, "event_streams", None)
    if registry is None:
        registry = app.state.event_streams = StreamRegistry()
    return registry


_END = object()


class EventSubscription:
    """The events of one stream, read by one client; iterate it with ``async for``."""

    def __init__(self, description: str, queue_size: int) -> None:
        self.description = description
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self.dropped = False
        self.task: asyncio.Task[None] | None = None

    def __aiter__(self) -> EventSubscription:
        return self

    async def __anext__(self) -> RunEvent:
        if self.dropped:
            raise SlowConsumerError(
                f"dropped: the client left {self.queue.maxsize} events unread for "
                f"{SLOW_CONSUMER_SECONDS:g}s; reconnect with the last event id to resume"
            )
        item = await self.queue.get()
        if item is _END:
            self.queue.put_nowait(_END)  # later reads end too
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        event: RunEvent = item
        return event

    async def _deliver(self, item: Any) -> bool:
        """Queue one item; drop the client when its queue stays full for SLOW_CONSUMER_SECONDS."""
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            pass
        try:
            # Prefect's feeds are read on regardless (deployments.events never waits on us).
            await asyncio.wait_for(self.queue.put(item), SLOW_CONSUMER_SECONDS)
        except TimeoutError:
            self.dropped = True
            logger.warning(
                "event stream %s dropped: its client left %d events unread for %gs",
                self.description,
                self.queue.maxsize,
                SLOW_CONSUMER_SECONDS,
            )
            return False
        return True

    async def _read(
        self, prefect: PrefectGateway, scope: prefect_events.StreamScope, after: Cursor | None
    ) -> None:
        try:
            # aclosing: a dropped client closes Prefect's websockets now, not when the GC gets to it.
            async with (
                prefect.scope(),
                contextlib.aclosing(prefect_events.run_events(scope, after=after)) as events,
            ):
                async for event in events:
                    if not await self._deliver(event):
                        return
        except prefect_events.RunNotFoundError as exc:
            await self._deliver(NotFoundError(str(exc), code="flow_run_not_found"))
            return
        except prefect_events.EventStreamUnavailableError as exc:
            logger.warning("event stream %s stopped: %s", self.description, exc)
            await self._deliver(PrefectUnavailableError(f"the live event stream stopped: {exc}"))
            return
        except ApiError as exc:
            await self._deliver(exc)
            return
        except Exception as exc:  # a stream must end with a reason, never hang its client
            logger.error("event stream %s failed: %s: %s; closed", self.description, type(exc).__name__, exc)
            await self._deliver(ApiError("the live event stream failed; reconnect with the last event id"))
            return
        await self._deliver(_END)


@contextlib.asynccontextmanager
async def open_stream(
    *,
    prefect: PrefectGateway,
    registry: StreamRegistry,
    principal: Principal,
    scope: prefect_events.StreamScope,
    after: Cursor | None,
    description: str,
) -> AsyncIterator[EventSubscription]:
    """Start reading the scope's events for ``principal``; stops when the block exits."""
    with registry.slot(principal):
        subscription = EventSubscription(description, QUEUE_SIZE)
        subscription.task = asyncio.create_task(subscription._read(prefect, scope, after))
        try:
            yield subscription
        finally:
            subscription.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await subscription.task
