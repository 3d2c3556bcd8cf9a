"""Flow-run heartbeats: the sign that the process running a flow run is still alive.

A run whose process dies (SIGKILL, OOM, a host that goes away) cannot report anything; Prefect
finds it by the heartbeats it no longer sends. The process sends ``prefect.flow-run.heartbeat``
events -- the same events Prefect's engine sends -- and an automation that Trinity installs
(:mod:`deployments.automations`) marks the run ``Crashed`` when they stop for about two intervals.

Prefect's engine sends them from a thread per flow run, at most every 30 s (its default is 180 s).
An executor holds dozens of runs, so one thread per process sends them for every run it holds,
every :func:`heartbeat_seconds`. A thread, not the event loop: a run that keeps the loop busy with
CPU work is alive, and must not be reported dead for it.

The interval comes from ``TRINITY_HEARTBEAT_SECONDS`` (default 30); the automation's window is
derived from the same value in the process that installs it, so set it alike for workers and for
``trinity deploy`` / ``trinity up``. The same value goes into each deployment's job variables as
``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` (:func:`flow_run_heartbeat_environment`), so a run started
by a stock Prefect worker (``--type process``), whose engine sends the heartbeats itself, sends
them as often as the automation expects instead of Prefect's default of every 180 s. Prefect's
engine sends them at most every 30 s: with a shorter interval only ``trinity worker`` keeps up.
"""

from __future__ import annotations

import contextvars
import math
import os
import threading
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import FlowRun
from prefect.events import emit_event
from prefect.logging.loggers import get_logger

logger = get_logger("trinity.worker.heartbeat")

HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"
HEARTBEAT_SECONDS_VARIABLE = "TRINITY_HEARTBEAT_SECONDS"
DEFAULT_HEARTBEAT_SECONDS = 30.0
# Prefect's proactive triggers look at least 10 s back, so two intervals must cover that.
MIN_HEARTBEAT_SECONDS = 5.0
MAX_HEARTBEAT_SECONDS = 3600.0
# The setting a Prefect flow-run process reads for its own heartbeats, and the least it accepts.
PREFECT_HEARTBEAT_VARIABLE = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
PREFECT_MIN_HEARTBEAT_SECONDS = 30


def heartbeat_seconds(environ: dict[str, str] | None = None) -> float:
    """The heartbeat interval: ``TRINITY_HEARTBEAT_SECONDS`` (5..3600), else 30 s.

    Raises ValueError, naming the variable, for a value that is not such a number.
    """
    raw = (os.environ if environ is None else environ).get(HEARTBEAT_SECONDS_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_HEARTBEAT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{HEARTBEAT_SECONDS_VARIABLE} must be a number of seconds, got {raw!r}") from None
    if not MIN_HEARTBEAT_SECONDS <= value <= MAX_HEARTBEAT_SECONDS:
        raise ValueError(
            f"{HEARTBEAT_SECONDS_VARIABLE} must be between {MIN_HEARTBEAT_SECONDS:g} and "
            f"{MAX_HEARTBEAT_SECONDS:g} seconds, got {raw}"
        )
    return value


def flow_run_heartbeat_environment(interval: float | None = None) -> dict[str, str]:
    """The environment that makes a Prefect flow-run process heartbeat every ``interval`` seconds
    (default: the configured interval), or as close as Prefect allows (every 30 s at most)."""
    interval = heartbeat_seconds() if interval is None else interval
    return {PREFECT_HEARTBEAT_VARIABLE: str(max(PREFECT_MIN_HEARTBEAT_SECONDS, math.ceil(interval)))}


def heartbeat_resources(flow_run: FlowRun) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The event's resource and related resources, as Prefect's engine names them.

    The tags matter: the automation only watches runs tagged ``trinity``, and Prefect adds a
    run's tags to the related resources of its state events the same way.
    """
    resource = {
        "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
        "prefect.resource.name": flow_run.name or "",
    }
    related = [{"prefect.resource.id": f"prefect.flow.{flow_run.flow_id}", "prefect.resource.role": "flow"}]
    if flow_run.deployment_id:
        related.append(
            {
                "prefect.resource.id": f"prefect.deployment.{flow_run.deployment_id}",
                "prefect.resource.role": "deployment",
            }
        )
    related += [
        {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
        for tag in sorted(set(flow_run.tags or []))
    ]
    return resource, related


class HeartbeatSender:
    """Sends a heartbeat for every flow run it holds, from one daemon thread.

    ``add`` a run when its process starts working on it and ``discard`` it when the run has
    left. ``add`` sends the first heartbeat at once (``emit_event`` only queues it), so a run
    that dies before its first interval is still found.
    """

    def __init__(self, *, interval: float | None = None) -> None:
        self.interval = interval if interval is not None else heartbeat_seconds()
        self._runs: dict[UUID, tuple[dict[str, str], list[dict[str, str]]]] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, flow_run: FlowRun) -> None:
        """Start sending heartbeats for ``flow_run`` (the first one now)."""
        beat = heartbeat_resources(flow_run)
        with self._lock:
            self._runs[flow_run.id] = beat
        _send(flow_run.id, *beat)

    def discard(self, flow_run_id: UUID | str) -> None:
        """Stop sending heartbeats for this flow run (unknown ids are ignored); once it returns, no
        further heartbeat of the run is queued."""
        key = flow_run_id if isinstance(flow_run_id, UUID) else UUID(str(flow_run_id))
        with self._lock:
            self._runs.pop(key, None)

    def clear(self) -> None:
        """Stop sending heartbeats for every run held."""
        with self._lock:
            self._runs.clear()

    def held(self) -> set[UUID]:
        """The flow runs heartbeats are sent for."""
        with self._lock:
            return set(self._runs)

    def start(self) -> HeartbeatSender:
        """Start the thread; it sees the caller's context (Prefect settings: which API)."""
        if self._thread is None:
            context = contextvars.copy_context()
            self._thread = threading.Thread(
                target=context.run, args=(self._loop,), name="trinity-heartbeats", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending (runs still held are no longer reported alive)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HeartbeatSender:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stopped.wait(timeout=self.interval):
            with self._lock:
                runs = list(self._runs)
            for flow_run_id in runs:
                # Under the lock, and only while still held: a heartbeat queued after `discard`
                # could reach Prefect after the run was handed back, and the automation would
                # take the handed-back run for dead.
                with self._lock:
                    beat = self._runs.get(flow_run_id)
                    if beat is not None:
                        _send(flow_run_id, *beat)


def _send(flow_run_id: UUID, resource: dict[str, str], related: list[dict[str, str]]) -> None:
    try:
        emit_event(event=HEARTBEAT_EVENT, resource=resource, related=related)
    except Exception:
        logger.debug("Could not send a heartbeat for flow run %s", flow_run_id, exc_info=True)


def deliver_queued_heartbeats(timeout: float = 5.0) -> None:
    """Wait (at most ``timeout`` seconds, in the calling thread) until the heartbeats this process
    has queued are sent. Call it after :meth:`HeartbeatSender.discard` and before proposing a state
    that ends a run's heartbeats (handing it back), so no heartbeat of the run arrives after it."""
    from flows.worker.prefect_compat import wait_for_events_sent  # the API imports this module too

    wait_for_events_sent(timeout)


def sending_heartbeats(flow_run: FlowRun, *, interval: float | None = None) -> HeartbeatSender:
    """A sender holding just ``flow_run``: ``with sending_heartbeats(flow_run): ...``."""
    sender = HeartbeatSender(interval=interval)
    sender.add(flow_run)
    return sender
