"""Live run events from Prefect's own streams, resumable after a reconnect.

:func:`run_events` yields a flow run's state changes (its own and its task runs') and log lines
as they happen: it subscribes to Prefect's events websocket (``/api/events/out``, through
``prefect.events.clients.PrefectEventSubscriber``) and logs websocket (``/api/logs/out``,
``PrefectLogsSubscriber``), so nothing polls Prefect's database in a loop. Around the live feeds:

* a catch-up read of what Prefect recorded (``/api/events/filter`` and ``/api/logs/filter``) right
  after subscribing, and once more when Prefect's event persister has flushed, so events that
  happened before the subscription -- the run's start, or whatever a reconnecting client missed
  -- are sent too; Prefect's live stream also drops events for a subscriber that falls behind,
  and the last read, when the run has ended, brings those back;
* an :class:`~deployments.event_order.OrderingBuffer`, so the events go out in a resumable
  order: every event carries the stream's cursor, and ``after=`` that cursor resumes with
  exactly the events past it, nothing lost or repeated;
* the end: a run's stream stops once the run is in a final state and the lines its process
  sends last (logs come in batches) have arrived.

Prefect streams logs only when its server runs with ``PREFECT_SERVER_LOGS_STREAM_*`` on (they are in
:data:`flows.worker.tuning.SERVER_SETTINGS`, which ``trinity up`` applies); without them, log lines
arrive with the catch-up reads only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
    LogFilterTimestamp,
)
from prefect.client.schemas.sorting import LogSort
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import (
    EventAnyResourceFilter,
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventOrder,
)
from prefect.exceptions import ObjectNotFound
from prefect.logging.clients import get_logs_subscriber
from prefect.settings import PREFECT_LOGGING_TO_API_BATCH_INTERVAL

from deployments.event_order import (
    FINAL_STATES,
    Cursor,
    EventKind,
    Feed,
    OrderingBuffer,
    RunEvent,
    from_micros,
    from_prefect_event,
    from_prefect_log,
    micros,
    spec_task_id,
)
from flows.worker.tuning import SERVER_SETTINGS
from specs.naming import WORKFLOW_TAG_PREFIX

logger = logging.getLogger("trinity.events")

STATE_HOLD_SECONDS = 0.5
"""How long a state change waits for earlier ones still on their way (the ordering window)."""
_FLUSH_INTERVAL = SERVER_SETTINGS["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL"][0]
PERSIST_LAG_SECONDS = float(_FLUSH_INTERVAL) + 1.0
"""How long after a live subscription starts a second catch-up read runs (events in flight)."""
CONNECT_TIMEOUT_SECONDS = 10.0
EVENT_PAGE = 50  # Prefect's largest page of /events/filter
LOG_PAGE = 200
STATE_EVENT_PREFIXES = ["prefect.flow-run.", "prefect.task-run."]


class EventStreamUnavailableError(Exception):
    """Prefect's event or log stream cannot be reached."""


class RunNotFoundError(Exception):
    """Prefect has no flow run with this id."""


def log_hold_seconds() -> float:
    """The ordering window of log lines: the process sends them in batches this far apart."""
    return float(PREFECT_LOGGING_TO_API_BATCH_INTERVAL.value()) + 1.0


def tail_seconds() -> float:
    """How long after a run's final state its last log lines may still arrive."""
    return log_hold_seconds() + 1.0


@dataclass
class StreamScope:
    """Whose events: one flow run, or every run tagged ``workflow:<name>``."""

    flow_run_id: UUID | None = None
    tag: str | None = None
    members: dict[UUID, bool] = field(default_factory=dict)

    @classmethod
    def for_workflow(cls, name: str) -> StreamScope:
        """Every run of a workflow: Trinity tags them ``workflow:<name>``."""
        return cls(tag=f"{WORKFLOW_TAG_PREFIX}{name}")

    def __post_init__(self) -> None:
        if (self.flow_run_id is None) == (self.tag is None):
            raise ValueError("a stream follows one flow run or one tag")
        if self.flow_run_id is not None:
            self.members[self.flow_run_id] = True

    def event_filter(self, since: datetime) -> EventFilter:
        resource = f"prefect.flow-run.{self.flow_run_id}" if self.flow_run_id else f"prefect.tag.{self.tag}"
        return EventFilter(
            occurred=EventOccurredFilter(since=since, until=datetime.now(since.tzinfo) + timedelta(days=1)),
            event=EventNameFilter(prefix=STATE_EVENT_PREFIXES),
            any_resource=EventAnyResourceFilter(id=[resource]),
            order=EventOrder.ASC,
        )

    def log_filter(self, after: datetime | None) -> LogFilter:
        return LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[self.flow_run_id]) if self.flow_run_id else None,
            timestamp=LogFilterTimestamp(after_=after) if after else None,
        )

    def learn(self, event: RunEvent) -> None:
        """Events that matched the tag filter name the flow runs that belong to the scope."""
        if self.tag is not None and event.kind is not EventKind.LOG:
            self.members[event.flow_run_id] = True


class _Stream:
    """The state of one :func:`run_events` call."""

    def __init__(self, client: Any, scope: StreamScope, after: Cursor | None) -> None:
        self.client = client
        self.scope = scope
        # A run's stream sends its final state last, after its closing read; a workflow's stream
        # goes on, so there a final state waits as long as a run's stream waits for its last lines.
        self.buffer = OrderingBuffer(
            hold={Feed.STATE: STATE_HOLD_SECONDS, Feed.LOG: log_hold_seconds()},
            cursor=after or Cursor(),
            final_hold=None if scope.flow_run_id is not None else tail_seconds(),
        )
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.task_names: dict[UUID, str | None] = {}
        self.pending_logs: list[RunEvent] = []
        self.final_at: int | None = None

    def offer(self, event: RunEvent | None) -> None:
        if event is None:
            return
        if event.is_final and event.flow_run_id == self.scope.flow_run_id:
            # Noted even when the client had it already: a resumed stream ends as well.
            self.final_at = max(self.final_at or 0, event.position.at)
        if event.kind is EventKind.LOG:
            member = self.scope.members.get(event.flow_run_id)
            if member is None:
                self.pending_logs.append(event)  # whose run this is gets asked once, in a batch
            if not member:
                return
        else:
            self.scope.learn(event)
            if not self.scope.members.get(event.flow_run_id):
                return
            if event.task_run_id is not None and event.task_run:
                self.task_names[event.task_run_id] = event.task_run
        self.buffer.offer(event)

    async def settle_logs(self) -> None:
        """Logs of flow runs not yet known: ask Prefect which belong to the tag (one call)."""
        waiting, self.pending_logs = self.pending_logs, []
        unknown = list({e.flow_run_id for e in waiting if e.flow_run_id not in self.scope.members})
        if unknown and self.scope.tag is not None:
            runs = await self.client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=unknown)), limit=len(unknown)
            )
            found = {run.id: self.scope.tag in (run.tags or []) for run in runs}
            for run_id in unknown:
                self.scope.members[run_id] = found.get(run_id, False)
        for event in waiting:
            if self.scope.members.get(event.flow_run_id):
                self.buffer.offer(event)

    async def replay(self, since: datetime, log_after: datetime | None) -> None:
        """Offer what Prefect recorded since these times (catch-up; duplicates are dropped)."""
        page = await self.client.read_events(filter=self.scope.event_filter(since), limit=EVENT_PAGE)
        while True:
            for event in page.events:
                self.offer(from_prefect_event(event))
            if not page.next_page:
                break
            page = await self.client.read_events_page(page.next_page)
        offset = 0
        while True:
            logs = await self.client.read_logs(
                log_filter=self.scope.log_filter(log_after),
                limit=LOG_PAGE,
                offset=offset,
                sort=LogSort.TIMESTAMP_ASC,
            )
            for log in logs:
                self.offer(from_prefect_log(log))
            if len(logs) < LOG_PAGE:
                break
            offset += LOG_PAGE
        await self.settle_logs()

    async def named(self, events: Iterable[RunEvent]) -> list[RunEvent]:
        """Fill in the task of log lines written inside a task run."""
        out = []
        for event in events:
            if event.kind is EventKind.LOG and event.task_run_id is not None:
                name = await self._task_name(event.task_run_id)
                event = _with_task(event, name)
            out.append(event)
        return out

    async def _task_name(self, task_run_id: UUID) -> str | None:
        if task_run_id not in self.task_names:
            try:
                self.task_names[task_run_id] = (await self.client.read_task_run(task_run_id)).name
            except ObjectNotFound:
                self.task_names[task_run_id] = None
        return self.task_names[task_run_id]


def _with_task(event: RunEvent, name: str | None) -> RunEvent:
    return replace(event, task_run=name, task=spec_task_id(name))


@contextlib.asynccontextmanager
async def _subscribed(source: Any) -> AsyncIterator[Any]:
    """``async with source``, closing its websocket also when subscribing is interrupted.

    Prefect's subscribers open the websocket, then authenticate and send the filter inside
    ``__aenter__``, and close nothing when that is cut short (a client that leaves while its
    stream connects, the connect timeout). Left open, the connection stays registered with the
    event loop until the loop is gone, then is collected as an unclosed transport.
    """
    try:
        subscription = await source.__aenter__()
    except BaseException:
        # Closing a subscriber that never connected fails on its missing connection: nothing to close.
        with contextlib.suppress(Exception):
            await source.__aexit__(None, None, None)
        raise
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_exit(source)
        yield subscription


async def _pump(source: Any, kind: str, queue: asyncio.Queue[tuple[str, Any]], ready: asyncio.Event) -> None:
    """Copy one Prefect subscription into the queue; never blocks on the consumer."""
    try:
        async with _subscribed(source) as subscription:
            ready.set()
            async for item in subscription:
                queue.put_nowait((kind, item))
        queue.put_nowait(("closed", kind))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # handed to the consumer, which decides what it means
        queue.put_nowait(("error", exc))


@contextlib.asynccontextmanager
async def _live(stream: _Stream, since: datetime) -> AsyncIterator[None]:
    """Subscribe to Prefect's events and logs websockets for the scope; yields once both are up."""
    sources = {
        "event": get_events_subscriber(filter=stream.scope.event_filter(since), reconnection_attempts=5),
        "log": get_logs_subscriber(filter=stream.scope.log_filter(None), reconnection_attempts=5),
    }
    readies = {kind: asyncio.Event() for kind in sources}
    tasks = [asyncio.create_task(_pump(s, kind, stream.queue, readies[kind])) for kind, s in sources.items()]
    try:
        deadline = asyncio.get_running_loop().time() + CONNECT_TIMEOUT_SECONDS
        while not all(ready.is_set() for ready in readies.values()):
            if any(task.done() for task in tasks) or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        if not all(ready.is_set() for ready in readies.values()):
            reason = "timed out"
            while not stream.queue.empty():
                kind, item = stream.queue.get_nowait()
                if kind == "error":
                    reason = f"{type(item).__name__}: {item}"
            raise EventStreamUnavailableError(f"cannot subscribe to Prefect's event streams ({reason})")
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _flow_run(client: Any, flow_run_id: UUID) -> Any:
    try:
        return await client.read_flow_run(flow_run_id)
    except ObjectNotFound as exc:
        raise RunNotFoundError(f"Prefect has no flow run {flow_run_id}") from exc


def _now() -> int:
    return micros(datetime.now().astimezone())


async def run_events(scope: StreamScope, *, after: Cursor | None = None) -> AsyncGenerator[RunEvent, None]:
    """Yield the scope's events in order, each with its cursor; resume with ``after=`` a cursor.

    A flow run's stream starts at the run's first event (or after the cursor) and ends once the
    run is final and its last events are sent; a tag's stream starts now (or after the cursor)
    and goes on until the caller stops. Raises :class:`RunNotFoundError` and
    :class:`EventStreamUnavailableError`.
    """
    async with get_client() as client:
        stream = _Stream(client, scope, after)
        tail = int(tail_seconds() * 1_000_000)
        lag = int(PERSIST_LAG_SECONDS * 1_000_000)
        since, log_after, finished_long_ago = await _start(client, scope, after, tail + lag)
        if finished_long_ago:
            # Everything is recorded: one catch-up read, no live subscription.
            await stream.replay(since, log_after)
            for event in await stream.named(stream.buffer.release(None)):
                yield event
            return
        async with _live(stream, since):
            connected = _now()
            await stream.replay(since, log_after)
            second_read_at: int | None = connected + lag
            while True:
                now = _now()
                if second_read_at is not None and now >= second_read_at:
                    # Events published just before the subscription, persisted since the first read.
                    recent = max(since, from_micros(connected - 2 * lag))
                    await stream.replay(recent, recent if log_after is None else max(log_after, recent))
                    second_read_at = None
                cap = connected - lag if second_read_at is not None else None
                for event in await stream.named(stream.buffer.release(now, state_cap=cap)):
                    yield event
                if stream.final_at is not None and now >= stream.final_at + tail and second_read_at is None:
                    break
                await _wait_for_items(stream, now, second_read_at, cap)
        # The run is over: one last read brings back anything the live feeds dropped.
        await stream.replay(since, log_after)
        for event in await stream.named(stream.buffer.release(None)):
            yield event


async def _start(
    client: Any, scope: StreamScope, after: Cursor | None, settle: int
) -> tuple[datetime, datetime | None, bool]:
    """Where the catch-up reads start, and whether the run ended long enough ago to skip live."""
    now = _now()
    if after is not None:
        points = [p.at for p in (after.state, after.log) if p is not None]
        start = from_micros(min(points)) if points else None
    else:
        start = None
    if scope.flow_run_id is None:
        moment = start or from_micros(now)
        return moment, moment, False
    flow_run = await _flow_run(client, scope.flow_run_id)
    if start is None:
        start = flow_run.created - timedelta(minutes=1) if flow_run.created else from_micros(now)
    state = flow_run.state
    ended = (
        state is not None
        and state.type.value in FINAL_STATES
        and state.timestamp is not None
        and micros(state.timestamp) + settle < now
    )
    return start, start, ended


async def _wait_for_items(stream: _Stream, now: int, second_read_at: int | None, cap: int | None) -> None:
    """Sleep until something arrives or the next held event is due; offer what arrived."""
    wake = [t for t in (stream.buffer.next_due(), second_read_at) if t is not None]
    if stream.final_at is not None:
        wake.append(stream.final_at + int(tail_seconds() * 1_000_000))
    timeout = max(0.0, (min(wake) - now) / 1_000_000) + 0.01 if wake else 5.0
    try:
        first = await asyncio.wait_for(stream.queue.get(), timeout=min(timeout, 5.0))
    except TimeoutError:
        return
    items = [first]
    while not stream.queue.empty():
        items.append(stream.queue.get_nowait())
    for kind, item in items:
        if kind == "event":
            stream.offer(from_prefect_event(item))
        elif kind == "log":
            stream.offer(from_prefect_log(item))
        elif kind == "error":
            raise EventStreamUnavailableError(f"Prefect's event stream failed: {type(item).__name__}: {item}")
        elif kind == "closed" and stream.final_at is None:
            raise EventStreamUnavailableError(f"Prefect closed its {item} stream")
    if stream.pending_logs:
        await stream.settle_logs()


async def read_run_logs(*, flow_run_id: UUID, limit: int, offset: int) -> list[RunEvent]:
    """One page of a flow run's log lines, oldest first (for the GraphQL ``Run.logs`` page)."""
    async with get_client() as client:
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
            limit=limit,
            offset=offset,
            sort=LogSort.TIMESTAMP_ASC,
        )
        stream = _Stream(client, StreamScope(flow_run_id=flow_run_id), None)
        events = [event for event in map(from_prefect_log, logs) if event is not None]
        return await stream.named(events)
