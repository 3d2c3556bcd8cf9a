"""Trinity's Prometheus metrics, every one named ``trinity_…`` (the one home of their names).

Recorded where things happen -- the executor (runs, tasks, slots), the live sink sender (backlog,
drops), the API (request latency by route template) -- and served by the API's ``GET /metrics``
and by ``trinity worker --metrics-port N``. A worker's executors are separate processes: the
worker sets ``PROMETHEUS_MULTIPROC_DIR`` (:data:`MULTIPROC_DIR_VARIABLE`) before any of them
starts, each writes its figures there, and the worker's endpoint adds them up
(:func:`registry`). Gauges then sum over the live processes.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Trinity's own registry: /metrics shows trinity_… only, not the interpreter's or Prefect's.
OURS = CollectorRegistry(auto_describe=True)

_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

RUNS_STARTED = Counter(
    "trinity_runs_started", "Workflow runs started, by workflow.", ["workflow"], registry=OURS
)
RUNS_COMPLETED = Counter(
    "trinity_runs_completed",
    "Workflow runs that reached a final state, by workflow and state.",
    ["workflow", "state"],
    registry=OURS,
)
RUNS_FAILED = Counter(
    "trinity_runs_failed",
    "Workflow runs that ended Failed or Crashed, by workflow and state.",
    ["workflow", "state"],
    registry=OURS,
)
TASK_RUNS = Counter(
    "trinity_task_runs",
    "Task runs finished, by workflow, task and state.",
    ["workflow", "task", "state"],
    registry=OURS,
)
TASK_DURATION = Histogram(
    "trinity_task_duration_seconds",
    "Task run durations (first attempt start to end), by workflow and task.",
    ["workflow", "task"],
    buckets=_DURATION_BUCKETS,
    registry=OURS,
)
TASK_QUEUE_WAIT = Histogram(
    "trinity_task_queue_wait_seconds",
    "Time a ready task waited for a slot and its task run before it started, by workflow.",
    ["workflow"],
    buckets=_DURATION_BUCKETS,
    registry=OURS,
)
RUN_QUEUE_WAIT = Histogram(
    "trinity_run_queue_wait_seconds",
    "Time from a run's scheduled start to its actual start, by workflow.",
    ["workflow"],
    buckets=_DURATION_BUCKETS,
    registry=OURS,
)
SLOTS_BUSY = Gauge(
    "trinity_executor_slots_busy",
    "Flow runs in progress in the executors.",
    multiprocess_mode="livesum",
    registry=OURS,
)
SINK_BACKLOG = Gauge(
    "trinity_sink_backlog",
    "Records queued for a sink, by sink.",
    ["sink"],
    multiprocess_mode="livesum",
    registry=OURS,
)
SINK_DROPPED = Counter(
    "trinity_sink_dropped", "Records dropped because a sink's queue was full.", ["sink"], registry=OURS
)
SINK_WRITTEN = Counter("trinity_sink_written", "Records a sink took, by sink.", ["sink"], registry=OURS)
SINK_ERRORS = Counter(
    "trinity_sink_errors", "Failed writes to a sink (each is retried), by sink.", ["sink"], registry=OURS
)
API_LATENCY = Histogram(
    "trinity_api_request_duration_seconds",
    "API request latency, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=OURS,
)


def multiprocess_dir() -> str | None:
    """The folder the processes of this worker share their figures in, if any."""
    return os.environ.get(MULTIPROC_DIR_VARIABLE) or None


class _TrinityOnly(Collector):
    """The figures of a worker's processes, without those of the libraries they run (Prefect
    counts its events with prometheus_client too, into the same folder)."""

    def __init__(self, folder: str) -> None:
        self._files = multiprocess.MultiProcessCollector(None, path=folder)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        found = self._files.collect()  # type: ignore[no-untyped-call]
        return [family for family in found if family.name.startswith("trinity_")]


def registry() -> CollectorRegistry | None:
    """The registry to expose: the multiprocess files' figures when processes share a folder,
    else None (:data:`OURS`, this process's figures)."""
    folder = multiprocess_dir()
    if folder is None:
        return None
    collected = CollectorRegistry()
    collected.register(_TrinityOnly(folder))
    return collected


def exposition() -> bytes:
    """The current figures in Prometheus' text format."""
    collected = registry()
    return generate_latest(OURS if collected is None else collected)


def _forget_this_process_at_exit() -> None:
    folder = multiprocess_dir()
    if folder is not None:
        # A live gauge of a process that ended must not count any more.
        atexit.register(multiprocess.mark_process_dead, os.getpid(), folder)


_forget_this_process_at_exit()
