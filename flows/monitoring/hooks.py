"""What the executor calls as runs start and end: metrics, and records for the live sinks.

Every process that runs workflows (an executor of ``trinity worker``, ``trinity run FILE``) builds
its :class:`~flows.monitoring.live.LiveSender` once, from its settings (``sinks:``), on the first
run; without sinks configured nothing is queued. At exit the process waits up to
``sinks.exit_flush_seconds`` for its queues. Nothing here raises into a run: a failure is logged
in one line and the run goes on.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import anyio
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun

from blocks.sink_records import PLACEMENT_KEY, placement, run_records
from blocks.sinks import SinkConfigError, sink_writers
from flows.monitoring.live import LiveSender
from flows.monitoring.log_lines import SinkLogHandler
from flows.monitoring.status import publish, status_folder
from trinity.core import metrics
from trinity.core.config import load_settings
from trinity.core.settings import ConfigError

logger = logging.getLogger("trinity.sinks")

# The worker's name, handed to its executor processes (runs of `trinity run` use the host's name).
WORKER_NAME_VARIABLE = "TRINITY_WORKER_NAME"
_FAILED_STATES = {"FAILED", "CRASHED"}
_DEPLOYMENT_LOOKUP_SECONDS = 2.0

_lock = threading.Lock()
_sender: LiveSender | None = None
_resolved = False
_deployments: dict[UUID, str] = {}
_handler: SinkLogHandler | None = None


def live_sender() -> LiveSender | None:
    """This process's sender, built on first use from its settings; None without sinks."""
    global _sender, _resolved, _handler
    if _resolved:
        return _sender
    with _lock:
        if _resolved:
            return _sender
        _resolved = True
        try:
            sinks = load_settings().sinks
            if not sinks.configured:
                return None
            writers = sink_writers(sinks)
        except (ConfigError, SinkConfigError) as exc:
            logger.warning("sinks: not feeding any sink from this process: %s", exc)
            return None
        folder = status_folder()
        _sender = LiveSender(
            writers,
            queue_size=sinks.queue_size,
            batch_size=sinks.batch_size,
            flush_interval_seconds=sinks.flush_interval_seconds,
            publish=(lambda figures: publish(folder, figures)) if folder is not None else None,
        )
        if "elasticsearch" in _sender.sinks:
            _handler = SinkLogHandler(_sender)
            _handler.install()
        atexit.register(_close_at_exit, sinks.exit_flush_seconds)
        return _sender


def _close_at_exit(timeout: float) -> None:
    sender = _sender
    if sender is not None:
        if _handler is not None:
            _handler.uninstall()
        sender.close(timeout)


def flush(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for this process's queues; True when empty (or no sinks)."""
    return _sender.flush(timeout) if _sender is not None else True


def worker_name() -> str:
    """The worker this process runs for (its executors are told), else the host name."""
    return os.environ.get(WORKER_NAME_VARIABLE) or socket.gethostname()


async def _deployment_name(deployment_id: UUID | None) -> str | None:
    if deployment_id is None:
        return None
    if deployment_id not in _deployments:
        try:
            with anyio.fail_after(_DEPLOYMENT_LOOKUP_SECONDS):
                async with get_client() as client:
                    deployment = await client.read_deployment(deployment_id)
            _deployments[deployment_id] = deployment.name
        except Exception as exc:
            logger.debug("deployment %s: name not read (%s); its id is used", deployment_id, exc)
            return str(deployment_id)
    return _deployments[deployment_id]


async def run_placement(flow_run: FlowRun | None) -> dict[str, Any]:
    """Where a run ran: deployment name, work pool, worker, attempt (kept in its row's metrics)."""
    if flow_run is None:
        return placement(deployment=None, work_pool=None, worker=worker_name(), attempt=None)
    return placement(
        deployment=await _deployment_name(flow_run.deployment_id),
        work_pool=flow_run.work_pool_name,
        worker=worker_name(),
        attempt=flow_run.run_count or 1,
    )


def run_started(workflow: str, version: str, flow_run: FlowRun | None) -> None:
    """A run of ``workflow`` begins in this process."""
    try:
        metrics.RUNS_STARTED.labels(workflow).inc()
        metrics.SLOTS_BUSY.inc()
        if flow_run is not None:
            if flow_run.expected_start_time and flow_run.start_time:
                wait = (flow_run.start_time - flow_run.expected_start_time).total_seconds()
                metrics.RUN_QUEUE_WAIT.labels(workflow).observe(max(wait, 0.0))
            if live_sender() is not None and _handler is not None:
                _handler.follow(flow_run.id, {"workflow": workflow, "version": version})
    except Exception as exc:
        logger.warning("metrics of a starting run of %s not recorded: %s", workflow, exc)


def run_finished(row: Mapping[str, Any], *, started_here: bool) -> None:
    """A run ended: count it, observe its tasks, queue its records for the sinks."""
    workflow = str(row["workflow_name"])
    try:
        state = str(row["status"])
        if started_here:
            metrics.SLOTS_BUSY.dec()
        metrics.RUNS_COMPLETED.labels(workflow, state).inc()
        if state in _FAILED_STATES:
            metrics.RUNS_FAILED.labels(workflow, state).inc()
        records = run_records(row)
        for record in records:
            if record.kind != "task_run":
                continue
            task = record.tags.get("task", "")
            metrics.TASK_RUNS.labels(workflow, task, record.tags.get("state", "")).inc()
            if "duration_s" in record.fields:
                metrics.TASK_DURATION.labels(workflow, task).observe(record.fields["duration_s"])
            if "queue_wait_s" in record.fields:
                metrics.TASK_QUEUE_WAIT.labels(workflow).observe(record.fields["queue_wait_s"])
        sender = live_sender()
        if sender is not None:
            sender.put(records)
    except Exception as exc:
        logger.warning("run of %s not handed to metrics/sinks: %s", workflow, exc)


def with_placement(row: dict[str, Any], where: Mapping[str, Any]) -> dict[str, Any]:
    """The row with ``where`` in its metrics, so the harvest knows where the run ran."""
    metrics_json = dict(row.get("metrics") or {})
    metrics_json[PLACEMENT_KEY] = dict(where)
    return {**row, "metrics": metrics_json}
