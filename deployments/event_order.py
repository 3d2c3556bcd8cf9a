"""Run events in a resumable order: what one event is, where it sits, and the ordering buffer.

A run's events come from two feeds: state changes (Prefect events, ``prefect.flow-run.*`` and
``prefect.task-run.*``) and log lines (Prefect logs). Each feed is ordered by a :class:`Position`,
(time, id): the state's timestamp or the log record's time, ties broken by Prefect's id. The
position of every feed sent so far is the stream's :class:`Cursor`, which is each event's SSE
``id:``; a client that reconnects with it gets exactly the events past it (see
:mod:`deployments.events`).

Events reach us a little out of order (flow-run states come from the server, task-run states and
logs from the process running the flow, logs in batches), so :class:`OrderingBuffer` holds each
one for a short window past its time and releases them in position order. One that arrives after
its window has closed is sent at once, out of order, and logged.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

logger = logging.getLogger("trinity.events")

FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
"""Prefect state types after which a flow run changes no more."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


class EventKind(StrEnum):
    FLOW_RUN_STATE = "flow_run.state"
    TASK_RUN_STATE = "task_run.state"
    LOG = "log"


class Feed(StrEnum):
    STATE = "s"
    LOG = "l"


def micros(moment: datetime) -> int:
    """Exact microseconds since the Unix epoch (no float rounding)."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True, order=True)
class Position:
    """Where an item sits in its feed: its time in microseconds, then its id."""

    at: int
    id: str

    def encode(self) -> str:
        return f"{self.at}.{self.id}"


_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# Positions are microseconds since the epoch (17 digits reach past the year 5000) and an id.
_POSITION = rf"(?:-|[0-9]{{1,17}}\.{_UUID})"
CURSOR_PATTERN = rf"^{_POSITION}~{_POSITION}$"
"""What :meth:`Cursor.encode` makes, and so every ``Last-Event-ID`` a stream accepts."""


class CursorError(ValueError):
    """A ``Last-Event-ID`` that no stream of ours produced."""


@dataclass(frozen=True)
class Cursor:
    """The last position sent of each feed; ``None`` means nothing yet."""

    state: Position | None = None
    log: Position | None = None

    def get(self, feed: Feed) -> Position | None:
        return self.state if feed is Feed.STATE else self.log

    def advanced(self, feed: Feed, position: Position) -> Cursor:
        current = self.get(feed)
        if current is not None and position <= current:
            return self
        return replace(self, state=position) if feed is Feed.STATE else replace(self, log=position)

    def encode(self) -> str:
        """``<state position>~<log position>`` (``-`` for an empty feed); opaque to clients."""
        return "~".join(p.encode() if p else "-" for p in (self.state, self.log))

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Read an id made by :meth:`encode`; :class:`CursorError` otherwise."""
        parts = text.strip().split("~")
        if len(parts) != 2:
            raise CursorError("expected two positions separated by '~'")
        return cls(state=_parse_position(parts[0]), log=_parse_position(parts[1]))


def _parse_position(text: str) -> Position | None:
    if text == "-":
        return None
    at, _, ident = text.partition(".")
    try:
        value, checked = int(at), str(UUID(ident))
    except ValueError as exc:
        raise CursorError(f"{text[:80]!r} is not a position (microseconds.uuid)") from exc
    if value < 0:
        raise CursorError("a position's time cannot be negative")
    return Position(at=value, id=checked)


@dataclass(frozen=True)
class RunEvent:
    """One state change or log line of a flow run, as the streams send it."""

    kind: EventKind
    position: Position
    flow_run_id: UUID
    task_run_id: UUID | None = None
    task: str | None = None
    task_run: str | None = None
    state: str | None = None
    state_name: str | None = None
    message: str | None = None
    level: str | None = None
    cursor: str = ""

    @property
    def feed(self) -> Feed:
        return Feed.LOG if self.kind is EventKind.LOG else Feed.STATE

    @property
    def timestamp(self) -> datetime:
        return from_micros(self.position.at)

    @property
    def is_final(self) -> bool:
        return self.kind is EventKind.FLOW_RUN_STATE and self.state in FINAL_STATES

    def to_json(self) -> dict[str, Any]:
        """The JSON object of an SSE ``data:`` line (and of the GraphQL ``RunEvent``)."""
        return {
            "id": self.cursor,
            "type": self.kind.value,
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
            "flow_run_id": str(self.flow_run_id),
            "task_run_id": str(self.task_run_id) if self.task_run_id else None,
            "task": self.task,
            "task_run": self.task_run,
            "state": self.state,
            "state_name": self.state_name,
            "message": self.message,
            "level": self.level,
        }


def spec_task_id(task_run_name: str | None) -> str | None:
    """The spec task id of a task run (runs are named ``id`` or ``id[label]`` after it)."""
    return task_run_name.split("[", 1)[0] if task_run_name else None


def _resource_uuid(resource_id: str, prefix: str) -> UUID | None:
    if not resource_id.startswith(prefix):
        return None
    try:
        return UUID(resource_id.removeprefix(prefix))
    except ValueError:
        return None


def from_prefect_event(event: Any) -> RunEvent | None:
    """A Prefect state-change event as a :class:`RunEvent`; None for anything else."""
    resource = event.resource
    state_type = resource.get("prefect.state-type")
    if not state_type:
        return None  # heartbeats and other non-state events
    position = Position(at=micros(event.occurred), id=str(event.id))
    common: dict[str, Any] = {
        "position": position,
        "state": state_type,
        "state_name": resource.get("prefect.state-name") or None,
        "message": resource.get("prefect.state-message") or None,
    }
    flow_run = _resource_uuid(resource.id, "prefect.flow-run.")
    if flow_run is not None:
        return RunEvent(kind=EventKind.FLOW_RUN_STATE, flow_run_id=flow_run, **common)
    task_run_id = _resource_uuid(resource.id, "prefect.task-run.")
    if task_run_id is None:
        return None
    task_run = event.payload.get("task_run") or {}
    if "__parents__" in (task_run.get("task_inputs") or {}):
        return None  # Prefect's tracking task run of a child flow run, not a spec task
    parent = next(
        (r.id for r in event.related if r.get("prefect.resource.role") == "flow-run"),
        "",
    )
    flow_run = _resource_uuid(parent, "prefect.flow-run.")
    if flow_run is None:
        return None
    name = resource.get("prefect.resource.name") or None
    # Until it runs, a task run has Prefect's default name: the task's name, "-", a key prefix.
    default_suffix = f"-{str(task_run.get('dynamic_key', ''))[:3]}"
    task = name.removesuffix(default_suffix) if name and name.endswith(default_suffix) else name
    return RunEvent(
        kind=EventKind.TASK_RUN_STATE,
        flow_run_id=flow_run,
        task_run_id=task_run_id,
        task=spec_task_id(task),
        task_run=name,
        **common,
    )


def from_prefect_log(log: Any) -> RunEvent | None:
    """A Prefect log line of a flow run as a :class:`RunEvent` (task names filled in later)."""
    if log.flow_run_id is None or log.id is None:
        return None
    return RunEvent(
        kind=EventKind.LOG,
        position=Position(at=micros(log.timestamp), id=str(log.id)),
        flow_run_id=log.flow_run_id,
        task_run_id=log.task_run_id,
        message=log.message,
        level=_LEVELS.get(log.level, str(log.level)),
    )


@dataclass
class OrderingBuffer:
    """Holds events for ``hold[feed]`` seconds past their time, then releases them in order.

    A flow run's final state is held for ``final_hold`` seconds instead (``None``: until
    everything is released): Prefect's server records it the moment the run's process asks,
    while the process's own last task-run states are still on their way over its events
    connection; sent at once, it would overtake them.

    ``cursor`` starts where the client is (nothing at or before it is sent again) and advances
    as events are released; each released event carries the cursor after it.
    """

    hold: dict[Feed, float]
    cursor: Cursor = field(default_factory=Cursor)
    final_hold: float | None = None
    _start: Cursor = field(init=False)
    _heaps: dict[Feed, list[tuple[Position, RunEvent]]] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._start = self.cursor

    def offer(self, event: RunEvent) -> None:
        """Take an event from any source; duplicates and events the client had are ignored."""
        before = self._start.get(event.feed)
        if event.position.id in self._seen or (before is not None and event.position <= before):
            return
        self._seen.add(event.position.id)
        heapq.heappush(self._heaps.setdefault(event.feed, []), (event.position, event))

    def release(self, now: int | None, *, state_cap: int | None = None) -> list[RunEvent]:
        """Events whose window has closed at ``now`` (µs), in order; ``None`` releases everything.

        ``state_cap`` keeps state events after it held (while a catch-up read is pending).
        """
        due: list[RunEvent] = []
        for feed in Feed:
            heap = self._heaps.get(feed, [])
            limit = None if now is None else now - int(self.hold[feed] * 1_000_000)
            if limit is not None and feed is Feed.STATE and state_cap is not None:
                limit = min(limit, state_cap)
            while heap and (limit is None or heap[0][0].at <= limit):
                if now is not None and not self._final_due(heap[0][1], now):
                    break  # later state changes wait behind it, so the order holds
                due.append(heapq.heappop(heap)[1])
        # Interleave the feeds by time, so a client reading both sees one timeline. Stamped only
        # after: each event's cursor must cover exactly the events sent before it and itself.
        due.sort(key=lambda e: e.position)
        return [self._stamp(event) for event in due]

    def next_due(self) -> int | None:
        """When (µs) the earliest held event's window closes; None when nothing is held."""
        due = []
        for feed, heap in self._heaps.items():
            if not heap:
                continue
            event = heap[0][1]
            if not event.is_final:
                due.append(event.position.at + int(self.hold[feed] * 1_000_000))
            elif self.final_hold is not None:
                due.append(event.position.at + int(self.final_hold * 1_000_000))
        return min(due) if due else None

    def _final_due(self, event: RunEvent, now: int) -> bool:
        if not event.is_final:
            return True
        return self.final_hold is not None and event.position.at + int(self.final_hold * 1_000_000) <= now

    def _stamp(self, event: RunEvent) -> RunEvent:
        sent = self.cursor.get(event.feed)
        if sent is not None and event.position <= sent:
            logger.warning(
                "%s %s of flow run %s arrived after its ordering window; sent out of order",
                event.kind.value,
                event.position.id,
                event.flow_run_id,
            )
            return replace(event, cursor=self.cursor.encode())
        self.cursor = self.cursor.advanced(event.feed, event.position)
        return replace(event, cursor=self.cursor.encode())
