"""Log lines of workflow runs, live to Elasticsearch: a handler beside Prefect's API handler.

It sees what Prefect's run loggers (``prefect.flow_runs``, ``prefect.task_runs``) emit, shapes each
line exactly as Prefect's own handler sends it to the API (same run ids, timestamp, message), and
queues it with an id derived from that (:func:`blocks.sink_records.log_line_id`); the harvest
derives the same id from the line Prefect stored, so a line written by both paths stays one
document. Only lines of runs this process follows (Trinity workflow runs) are queued.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import OrderedDict
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import Log
from prefect.logging.handlers import APILogHandler

from blocks.sink_records import LogLine, log_line_id
from flows.monitoring.live import LiveSender

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
_FOLLOWED = 10_000


def log_line(
    flow_run_id: Any,
    task_run_id: Any,
    timestamp: dt.datetime | str,
    logger: str,
    level: int,
    message: str,
    tags: dict[str, str],
) -> LogLine:
    """A :class:`LogLine` from the fields Prefect stores for a log (live and harvest alike)."""
    time = timestamp if isinstance(timestamp, dt.datetime) else dt.datetime.fromisoformat(timestamp)
    flow, task = str(flow_run_id), str(task_run_id) if task_run_id else None
    return LogLine(
        id=log_line_id(
            flow_run_id=flow, task_run_id=task, time=time, logger=logger, level=level, message=message
        ),
        flow_run_id=flow,
        task_run_id=task,
        time=time,
        level=level,
        logger=logger,
        message=message,
        tags=tags,
    )


def stored_log_line(log: Log, tags: dict[str, str]) -> LogLine:
    """The :class:`LogLine` of a log Prefect stored: the id the live path gave the same line."""
    return log_line(log.flow_run_id, log.task_run_id, log.timestamp, log.name, log.level, log.message, tags)


class SinkLogHandler(logging.Handler):
    """Queues the log lines of followed runs for the sinks; never blocks, never raises."""

    def __init__(self, sender: LiveSender) -> None:
        super().__init__()
        self._sender = sender
        self._shape = APILogHandler()
        self._runs: OrderedDict[str, dict[str, str]] = OrderedDict()

    def follow(self, flow_run_id: UUID, tags: dict[str, str]) -> None:
        """Queue the lines of this run, tagged with ``tags`` (workflow, version). Lines logged
        after the run's final hook still belong to it: runs are forgotten only when many newer
        ones are followed."""
        self._runs[str(flow_run_id)] = tags
        while len(self._runs) > _FOLLOWED:
            self._runs.popitem(last=False)

    def install(self) -> None:
        for name in RUN_LOGGERS:
            logging.getLogger(name).addHandler(self)

    def uninstall(self) -> None:
        for name in RUN_LOGGERS:
            logging.getLogger(name).removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not getattr(record, "send_to_api", True):
                return
            flow_run_id = getattr(record, "flow_run_id", None)
            if flow_run_id is not None and str(flow_run_id) not in self._runs:
                return
            shaped = self._shape.prepare(record)
            tags = self._runs.get(str(shaped.get("flow_run_id")))
            if tags is None:
                return
            line = log_line(
                flow_run_id=shaped["flow_run_id"],
                task_run_id=shaped.get("task_run_id"),
                timestamp=shaped["timestamp"],
                logger=shaped["name"],
                level=int(shaped["level"]),
                message=shaped["message"],
                tags=tags,
            )
            self._sender.put([line])
        except Exception:
            # A line without a run (or one Prefect would drop) is not ours to send.
            return
