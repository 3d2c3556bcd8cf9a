"""The live path to the sinks: a bounded, non-blocking queue per sink and a sender thread each.

:meth:`LiveSender.put` never blocks and never raises: it appends to each sink's queue, and a full
queue drops its oldest record (counted in ``dropped``). Each sink has its own thread, which drains
its queue in batches (up to ``batch_size``, or what arrived within ``flush_interval_seconds``), so
a sink that is down or slow delays only itself. A batch that fails stays at the head of its queue;
the thread waits (backoff doubling from half a second up to 30 s) and tries again. The first
failure and the recovery are each logged in one line; the harvest writes whatever was dropped.

Each sink's backlog, dropped and written counts and last error are in :meth:`LiveSender.status`
and in the ``trinity_sink_*`` Prometheus metrics.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from blocks.sink_records import Record
from blocks.sink_writers import SinkError, SinkWriter
from trinity.core import metrics

logger = logging.getLogger("trinity.sinks")

MIN_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0


@dataclass
class SinkStatus:
    """One sink's figures, as :meth:`LiveSender.status` reports them."""

    sink: str
    backlog: int = 0
    dropped: int = 0
    written: int = 0
    failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    healthy: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "sink": self.sink,
            "backlog": self.backlog,
            "dropped": self.dropped,
            "written": self.written,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "healthy": self.healthy,
        }


@dataclass
class _Lane:
    """One sink: its writer, its queue and its thread."""

    writer: SinkWriter
    queue: collections.deque[Record]
    status: SinkStatus
    wake: threading.Condition = field(default_factory=threading.Condition)
    idle: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class LiveSender:
    """Feeds several sinks from one process without ever making the caller wait."""

    def __init__(
        self,
        writers: Sequence[SinkWriter],
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval_seconds: float = 1.0,
        publish: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.batch_size = batch_size
        # Where the figures go for `trinity status` (at most once a second, and at close).
        self._publish = publish
        self._published = 0.0
        self.flush_interval_seconds = flush_interval_seconds
        self._stopping = threading.Event()
        self._lanes = [
            _Lane(writer, collections.deque(maxlen=queue_size), SinkStatus(writer.name)) for writer in writers
        ]
        for lane in self._lanes:
            lane.idle.set()
            lane.thread = threading.Thread(
                target=self._drain, args=(lane,), name=f"trinity-sink-{lane.writer.name}", daemon=True
            )
            lane.thread.start()

    @property
    def sinks(self) -> list[str]:
        """The names of the sinks fed."""
        return [lane.writer.name for lane in self._lanes]

    def put(self, records: Iterable[Record]) -> None:
        """Queue records for every sink; drops (and counts) the oldest of a full queue."""
        batch = list(records)
        if not batch:
            return
        for lane in self._lanes:
            with lane.wake:
                before = len(lane.queue)
                dropped = max(before + len(batch) - (lane.queue.maxlen or 0), 0)
                lane.queue.extend(batch)
                lane.idle.clear()
                lane.status.backlog = len(lane.queue)
                if dropped:
                    lane.status.dropped += dropped
                    metrics.SINK_DROPPED.labels(lane.writer.name).inc(dropped)
                # Wake the sender when it sleeps on an empty queue or a batch is full; otherwise
                # let the batch fill for the rest of the interval.
                if before == 0 or len(lane.queue) >= self.batch_size:
                    lane.wake.notify()
            metrics.SINK_BACKLOG.labels(lane.writer.name).set(lane.status.backlog)
        self._maybe_publish()

    def status(self) -> list[dict[str, Any]]:
        """Each sink's backlog, dropped and written counts, failures and last error."""
        return [lane.status.as_dict() for lane in self._lanes]

    def _maybe_publish(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._publish is None or (not force and now - self._published < 1.0):
            return
        self._published = now
        try:
            self._publish(self.status())
        except Exception as exc:
            logger.debug("sink figures not published: %s", exc)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every queue to be sent; True when all were."""
        deadline = time.monotonic() + timeout
        for lane in self._lanes:
            with lane.wake:
                lane.wake.notify()
            if not lane.idle.wait(max(deadline - time.monotonic(), 0.0)):
                return False
        return True

    def close(self, timeout: float = 0.0) -> bool:
        """Flush for up to ``timeout`` seconds, then stop the threads; True when nothing is left."""
        flushed = self.flush(timeout) if timeout > 0 else all(not lane.queue for lane in self._lanes)
        self._stopping.set()
        for lane in self._lanes:
            with lane.wake:
                lane.wake.notify()
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(timeout=1.0)
            try:
                lane.writer.close()
            except Exception as exc:
                logger.debug("closing sink %s: %s", lane.writer.name, exc)
        self._maybe_publish(force=True)
        if not flushed:
            left = {lane.writer.name: len(lane.queue) for lane in self._lanes if lane.queue}
            logger.warning(
                "sinks: exiting with records still queued (%s); the scheduled harvest will write them",
                ", ".join(f"{name}: {count}" for name, count in left.items()),
            )
        return flushed

    def _next_batch(self, lane: _Lane) -> list[Record]:
        with lane.wake:
            if not lane.queue:
                lane.idle.set()
                lane.wake.wait_for(lambda: bool(lane.queue) or self._stopping.is_set())
            if self._stopping.is_set():
                return []
            if len(lane.queue) < self.batch_size:
                # A batch fills for a moment (runs end in bursts), unless a flush is waiting.
                lane.wake.wait(self.flush_interval_seconds)
            return [lane.queue[index] for index in range(min(self.batch_size, len(lane.queue)))]

    def _drain(self, lane: _Lane) -> None:
        backoff = MIN_BACKOFF_SECONDS
        name = lane.writer.name
        while not self._stopping.is_set():
            batch = self._next_batch(lane)
            if not batch:
                continue
            try:
                lane.writer.write(batch)
            except Exception as exc:
                reason = str(exc) if isinstance(exc, SinkError) else f"{name}: {type(exc).__name__}: {exc}"
                self._failed(lane, reason, backoff)
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = MIN_BACKOFF_SECONDS
            self._sent(lane, batch)

    def _failed(self, lane: _Lane, reason: str, backoff: float) -> None:
        status = lane.status
        if status.healthy:
            logger.warning(
                "sink %s is failing (%s): keeping up to %d records queued, retrying every %.1f-%.0f s; "
                "runs are not affected",
                status.sink,
                reason,
                lane.queue.maxlen or 0,
                backoff,
                MAX_BACKOFF_SECONDS,
            )
        status.healthy = False
        status.failures += 1
        status.last_error = reason
        status.last_error_at = time.time()
        metrics.SINK_ERRORS.labels(status.sink).inc()
        self._maybe_publish()

    def _sent(self, lane: _Lane, batch: list[Record]) -> None:
        status = lane.status
        with lane.wake:
            # The batch is the queue's head unless drops pushed part of it out meanwhile.
            for record in batch:
                if lane.queue and lane.queue[0] is record:
                    lane.queue.popleft()
            status.backlog = len(lane.queue)
            if not lane.queue:
                lane.idle.set()
        status.written += len(batch)
        metrics.SINK_WRITTEN.labels(status.sink).inc(len(batch))
        metrics.SINK_BACKLOG.labels(status.sink).set(status.backlog)
        if not status.healthy:
            status.healthy = True
            logger.warning("sink %s is back: %d records queued to send", status.sink, status.backlog)
        self._maybe_publish(force=not status.backlog)
