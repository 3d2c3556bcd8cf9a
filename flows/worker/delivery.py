"""What an executor sends Prefect while Prefect is away: kept in memory, bounded, sent when back.

Task-run records reach Prefect as events; Prefect's events client already keeps what it could not
send and sends it again on reconnection. Its queue is bounded here (``PREFECT_EVENTS_WORKER_MAX_
QUEUE_SIZE``, set in :mod:`flows.worker.tuning`), and what it drops when full is counted.

Log lines go in batches over HTTP; Prefect drops a batch that fails after its client retries (about
a minute). An executor sends them through :class:`BufferedAPILogWorker` instead: a batch that
fails goes at once into a bounded buffer (:data:`BUFFER_LINES` lines, the oldest dropped and
counted when it overflows), and a thread sends the buffer, oldest first, as soon as the API
answers again. Runs never wait for logs.

Each change is said in one line of the worker's log (buffering started, lines dropped, delivered
after the API came back) and kept in a small JSON file per executor under
``TRINITY_DELIVERY_STATUS_DIR`` (set by ``trinity worker``), which
:func:`flows.worker.delivery_status.read_delivery_status` sums for ``trinity status``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.context import get_settings_context
from prefect.logging import configuration as logging_configuration
from prefect.logging.handlers import APILogHandler, APILogWorker
from prefect.logging.loggers import get_logger
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from flows.worker.delivery_status import STATUS_DIR_VARIABLE, DeliveryStatus

logger = get_logger("trinity.worker.delivery")

BUFFER_LINES = 50_000
# Lines waiting to be batched (between the handler and the batch sender).
QUEUE_LINES = 10_000
RETRY_SECONDS = 3.0
SEND_BATCH = 500
_QUEUE_FULL = "Service %r queue is full (%d items), dropping item"


class LogBuffer:
    """Log lines kept while the API is away; the oldest are dropped (and counted) beyond capacity."""

    def __init__(self, capacity: int = BUFFER_LINES) -> None:
        self.capacity = capacity
        self._lines: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self.status = DeliveryStatus()

    def keep(self, lines: list[dict[str, Any]]) -> int:
        """Add lines at the end; return how many old lines had to go."""
        with self._lock:
            self._lines.extend(lines)
            return self._trim()

    def take(self, count: int) -> list[dict[str, Any]]:
        """Remove and return up to ``count`` of the oldest lines."""
        with self._lock:
            taken = [self._lines.popleft() for _ in range(min(count, len(self._lines)))]
            self.status.logs_waiting = len(self._lines)
        return taken

    def put_back(self, lines: list[dict[str, Any]]) -> None:
        """Return lines that could not be sent to the front; beyond capacity the oldest go."""
        with self._lock:
            self._lines.extendleft(reversed(lines))
            self._trim()

    def delivered(self, count: int) -> None:
        with self._lock:
            self.status.logs_delivered_late += count

    def count_dropped(self, *, logs: int = 0, events: int = 0) -> DeliveryStatus:
        """Count lines or events dropped elsewhere (full queues); returns the new counts."""
        with self._lock:
            self.status.logs_dropped += logs
            self.status.events_dropped += events
            return DeliveryStatus(**asdict(self.status))

    def _trim(self) -> int:
        dropped = max(0, len(self._lines) - self.capacity)
        for _ in range(dropped):
            self._lines.popleft()
        self.status.logs_dropped += dropped
        self.status.logs_waiting = len(self._lines)
        return dropped

    def __len__(self) -> int:
        with self._lock:
            return len(self._lines)


BUFFER = LogBuffer()


class _Sender:
    """The thread that sends the buffer once the API answers again (started when needed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            context = contextvars.copy_context()
            self._thread = threading.Thread(
                target=context.run, args=(self._send_all,), name="trinity-log-buffer", daemon=True
            )
            self._thread.start()

    def _send_all(self) -> None:
        sent = 0
        while len(BUFFER):
            time.sleep(RETRY_SECONDS)
            while lines := BUFFER.take(SEND_BATCH):
                try:
                    with get_client(sync_client=True) as client:
                        client.create_logs(lines)
                except Exception:
                    BUFFER.put_back(lines)
                    break
                sent += len(lines)
                BUFFER.delivered(len(lines))
            publish()
        status = BUFFER.status
        logger.warning(
            "Prefect API reachable again: sent %d log line(s) kept while it was away (%d dropped so far)",
            sent,
            status.logs_dropped,
        )


SENDER = _Sender()


class BufferedAPILogWorker(APILogWorker):
    """Prefect's log batch sender, keeping what it cannot send instead of dropping it."""

    _max_queue_size = QUEUE_LINES

    async def _handle_batch(self, items: list[dict[str, Any]]) -> None:
        if len(BUFFER):
            # Older lines are waiting: keep the order, the sender takes these after them.
            _keep(items, reason=None)
            return
        try:
            # Fail fast: the buffer retries, so no batch holds up the ones behind it.
            with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}):
                await self._client.create_logs(items)
        except Exception as exc:
            _keep(items, reason=f"{type(exc).__name__}: {exc}".splitlines()[0][:200])

    def _on_item_dropped(self, item: dict[str, Any]) -> None:
        BUFFER.count_dropped(logs=1)


class BufferedAPILogHandler(APILogHandler):
    """Prefect's API log handler, sending through :class:`BufferedAPILogWorker`."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not get_settings_context().settings.logging.to_api.enabled:
                return
            if not getattr(record, "send_to_api", True):
                return
            BufferedAPILogWorker.instance().send(self.prepare(record))
        except Exception:
            self.handleError(record)


def _keep(items: list[dict[str, Any]], reason: str | None) -> None:
    was_empty = len(BUFFER) == 0
    dropped = BUFFER.keep(items)
    if was_empty and reason is not None:
        logger.warning(
            "Prefect API unreachable (%s): keeping run log lines in memory (up to %d) until it is back",
            reason,
            BUFFER.capacity,
        )
    if dropped:
        logger.warning(
            "Log buffer full (%d lines): dropped the %d oldest; %d dropped in all",
            BUFFER.capacity,
            dropped,
            BUFFER.status.logs_dropped,
        )
    SENDER.ensure_running()
    publish()


class _QueueFull(logging.Filter):
    """Turns Prefect's line per item dropped from a full queue into a count, and one line per
    hundred in the worker's log."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != _QUEUE_FULL:
            return True
        counts = BUFFER.count_dropped(events=1) if self.what == "events" else BUFFER.status
        count = counts.events_dropped if self.what == "events" else counts.logs_dropped
        if count == 1 or count % 100 == 0:
            logger.warning(
                "Prefect API too slow or away: %d %s dropped from a full queue so far", count, self.what
            )
            publish()
        return False


def install() -> None:
    """Send this process's run log lines through the buffer; count dropped events."""
    # Prefect configures logging when its main module is first imported; make sure it has, since
    # a later (incremental) set-up keeps the handlers replaced here.
    if not logging_configuration.PROCESS_LOGGING_CONFIG:
        logging_configuration.setup_logging()
    for candidate in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        if not isinstance(candidate, logging.Logger):
            continue
        for index, handler in enumerate(candidate.handlers):
            if type(handler) is APILogHandler:
                replacement = BufferedAPILogHandler(level=handler.level)
                replacement.setFormatter(handler.formatter)
                for log_filter in handler.filters:
                    replacement.addFilter(log_filter)
                candidate.handlers[index] = replacement
    # QueueService logs to a logger named after its class.
    logging.getLogger("EventsWorker").addFilter(_QueueFull("events"))
    logging.getLogger(BufferedAPILogWorker.__name__).addFilter(_QueueFull("log lines"))


def publish() -> None:
    """Write this executor's counts where ``trinity status`` reads them (when configured)."""
    folder = os.environ.get(STATUS_DIR_VARIABLE)
    if not folder:
        return
    path = Path(folder) / f"executor-{os.getpid()}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({**asdict(BUFFER.status), "updated": time.time()}))
        temporary.replace(path)
    except OSError:
        logger.debug("Could not write %s", path, exc_info=True)
