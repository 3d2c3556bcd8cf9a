"""What the sinks receive: one record per flow run, per task run and per log line.

Records are built from a run's ``execution_logs`` row (:func:`run_records`), the same way whether
the executor hands them over live or the harvest reads the row later, so both paths produce the
same points and documents: same timestamps, tags and ids. That is what makes writing twice
harmless (InfluxDB keeps one point per measurement, tag set and time; Elasticsearch one document
per id) and lets the harvest complete what the live path missed.

* :class:`RunMetric` -- measurement ``trinity_task_run`` or ``trinity_flow_run``; tags
  ``workflow``, ``version``, ``task`` (task runs), ``state``, ``deployment``, ``work_pool``,
  ``worker``; fields ``duration_s``, ``queue_wait_s``, ``cpu_s``, ``max_rss_bytes``, ``attempt``,
  ``retries`` (those known), and the strings ``flow_run_id``, ``task_run`` (the task run's name,
  ``load[3]``) and ``error`` (failed task runs) that identify it.
* :class:`LogLine` -- one line a run logged, with the id :func:`log_line_id` derives from it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

TASK_RUN_MEASUREMENT = "trinity_task_run"
FLOW_RUN_MEASUREMENT = "trinity_flow_run"
TAG_KEYS = ("workflow", "version", "task", "state", "deployment", "work_pool", "worker")
FIELD_KEYS = ("duration_s", "queue_wait_s", "cpu_s", "max_rss_bytes", "attempt", "retries")
# Where a run ran, kept in the execution_logs row's metrics so the harvest knows it too.
PLACEMENT_KEY = "placement"
LOCAL = "local"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAMESPACE = uuid.UUID("9b1f4a56-6c1e-4d35-a4b8-3c1b7f0e2a11")


@dataclass(frozen=True)
class RunMetric:
    """One task run or flow run, as a point and a document."""

    kind: Literal["task_run", "flow_run"]
    id: str
    flow_run_id: str
    time: dt.datetime
    tags: dict[str, str]
    fields: dict[str, float | int]
    name: str
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    error: str | None = None

    def time_ns(self) -> int:
        """The point's time in nanoseconds: the microsecond of :attr:`time` plus a sub-microsecond
        offset drawn from the id, so that two task runs of one task ending within the same
        microsecond (fan-out items) stay two points, and both paths write the same time."""
        seconds = utc(self.time) - _EPOCH
        micros = (seconds.days * 86400 + seconds.seconds) * 1_000_000 + seconds.microseconds
        return micros * 1000 + uuid.UUID(self.id).int % 1000

    @property
    def measurement(self) -> str:
        """The InfluxDB measurement."""
        return TASK_RUN_MEASUREMENT if self.kind == "task_run" else FLOW_RUN_MEASUREMENT

    def document(self) -> dict[str, Any]:
        """The Elasticsearch document (its ``_id`` is :attr:`id`)."""
        return {
            "@timestamp": _iso(self.time),
            "kind": self.kind,
            "id": self.id,
            "flow_run_id": self.flow_run_id,
            "name": self.name,
            **self.tags,
            **self.fields,
            "start_time": _iso(self.start_time),
            "end_time": _iso(self.end_time),
            "error": self.error,
        }


@dataclass(frozen=True)
class LogLine:
    """One log line of a run (as Prefect stores it)."""

    id: str
    flow_run_id: str
    task_run_id: str | None
    time: dt.datetime
    level: int
    logger: str
    message: str
    tags: dict[str, str] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The Elasticsearch document (its ``_id`` is :attr:`id`)."""
        return {
            "@timestamp": _iso(self.time),
            "id": self.id,
            "flow_run_id": self.flow_run_id,
            "task_run_id": self.task_run_id,
            "level": self.level,
            "level_name": _level_name(self.level),
            "logger": self.logger,
            "message": self.message,
            **self.tags,
        }


Record = RunMetric | LogLine


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC (a naive value is taken as UTC)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return utc(value).isoformat(timespec="microseconds") if value is not None else None


def _level_name(level: int) -> str:
    names = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
    return names.get(level, f"LEVEL{level}")


def _time(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return utc(value) if value is not None else None
    return utc(dt.datetime.fromisoformat(str(value)))


def log_line_id(
    *, flow_run_id: str, task_run_id: str | None, time: dt.datetime, logger: str, level: int, message: str
) -> str:
    """The document id of a log line: derived from what it is, so each path derives the same."""
    basis = "\x1f".join([flow_run_id, task_run_id or "", _iso(time) or "", logger, str(level), message])
    return str(uuid.uuid5(_NAMESPACE, basis))


def task_run_id(flow_run_id: str, label: str) -> str:
    """The document id of a task run: its flow run and its label (``id`` or ``id[3]``)."""
    return str(uuid.uuid5(_NAMESPACE, f"{flow_run_id}/{label}"))


def placement(
    *, deployment: str | None, work_pool: str | None, worker: str | None, attempt: int | None
) -> dict[str, Any]:
    """What the executor knows of where a run ran (stored in the row's metrics)."""
    return {"deployment": deployment, "work_pool": work_pool, "worker": worker, "attempt": attempt}


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value)


def _fields(**values: float | int | None) -> dict[str, float | int]:
    return {key: value for key, value in values.items() if value is not None}


def run_records(row: Mapping[str, Any]) -> list[RunMetric]:
    """The flow-run record and one record per task run of an ``execution_logs`` row.

    Rows without a flow run id (a run outside Prefect) give nothing: nothing could identify them.
    """
    if row.get("flow_run_id") is None:
        return []
    flow_run_id = str(row["flow_run_id"])
    metrics: Mapping[str, Any] = row.get("metrics") or {}
    where: Mapping[str, Any] = metrics.get(PLACEMENT_KEY) or {}
    common = {
        "workflow": str(row["workflow_name"]),
        "version": str(row["workflow_version"]),
        "deployment": str(where.get("deployment") or LOCAL),
        "work_pool": str(where.get("work_pool") or LOCAL),
        "worker": str(where.get("worker") or LOCAL),
    }
    started, ended = _time(row.get("started_at")), _time(row.get("ended_at"))
    tasks: Mapping[str, Mapping[str, Any]] = metrics.get("tasks") or {}
    records = [
        _task_record(flow_run_id, label, task, common, fallback=ended or started)
        for label, task in sorted(tasks.items())
    ]
    expected = _time(row.get("expected_start_time"))
    queue_wait = (started - expected).total_seconds() if started and expected else None
    cpu = [float(task["cpu_seconds"]) for task in tasks.values() if task.get("cpu_seconds") is not None]
    rss = [int(task["peak_memory_bytes"]) for task in tasks.values() if task.get("peak_memory_bytes")]
    retries = sum(max(int(task.get("attempts") or 0) - 1, 0) for task in tasks.values())
    flow = RunMetric(
        kind="flow_run",
        id=flow_run_id,
        flow_run_id=flow_run_id,
        time=ended or started or utc(dt.datetime.now(dt.UTC)),
        tags={**common, "state": str(row["status"])},
        fields=_fields(
            duration_s=_seconds(row.get("execution_time")),
            queue_wait_s=max(queue_wait, 0.0) if queue_wait is not None else None,
            cpu_s=float(sum(cpu)) if cpu else None,
            max_rss_bytes=max(rss) if rss else None,
            attempt=int(where.get("attempt") or 1),
            retries=retries,
        ),
        name=str(row["workflow_name"]),
        start_time=started,
        end_time=ended,
    )
    return [flow, *records]


def _task_record(
    flow_run_id: str,
    label: str,
    task: Mapping[str, Any],
    common: Mapping[str, str],
    *,
    fallback: dt.datetime | None,
) -> RunMetric:
    start, end = _time(task.get("start_time")), _time(task.get("end_time"))
    ready = _time(task.get("ready_time"))
    attempts = int(task.get("attempts") or 0)
    queue_wait = (start - ready).total_seconds() if start and ready else None
    rss = task.get("peak_memory_bytes")
    return RunMetric(
        kind="task_run",
        id=task_run_id(flow_run_id, label),
        flow_run_id=flow_run_id,
        time=end or start or ready or fallback or utc(dt.datetime.now(dt.UTC)),
        tags={
            **common,
            "task": str(task.get("task_id") or label),
            "state": str(task.get("state") or "UNKNOWN"),
        },
        fields=_fields(
            duration_s=_seconds(task.get("duration_seconds")),
            queue_wait_s=max(queue_wait, 0.0) if queue_wait is not None else None,
            cpu_s=_seconds(task.get("cpu_seconds")),
            max_rss_bytes=int(rss) if rss else None,
            attempt=attempts,
            retries=max(attempts - 1, 0),
        ),
        name=label,
        start_time=start,
        end_time=end,
        error=task.get("error"),
    )
