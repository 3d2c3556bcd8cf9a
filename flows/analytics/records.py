"""Rows for Trinity's tables from what Prefect and the executor recorded about a run.

Pure functions: Prefect's flow and task run objects and the executor's ``metrics["tasks"]`` entries
in, row dicts out. Prefect is the truth for states and times; the executor adds what Prefect does
not know (CPU seconds, peak memory, input/output hashes, the one-line error).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prefect.client.schemas.objects import FlowRun, TaskRun

_ITEM = re.compile(r"^(?P<id>.+)\[(?P<index>\d+)\]$")
# Task rows the executor recorded but Prefect does not have (yet): a stable id per (run, name),
# so that a later harvest replaces the row instead of adding another.
_EXECUTOR_NAMESPACE = uuid.UUID("5d0c8f3e-7a43-4b8e-9a55-2f8e4d1c9b70")


@dataclass(frozen=True)
class RunIdentity:
    """Which workflow a flow run ran, and which version."""

    name: str
    version: str


def split_task_run_name(name: str) -> tuple[str, int | None]:
    """``"load[3]"`` -> ``("load", 3)``; ``"load"`` -> ``("load", None)``."""
    match = _ITEM.match(name)
    if match is None:
        return name, None
    return match.group("id"), int(match.group("index"))


def trigger_of(flow_run: FlowRun) -> str:
    """How the run started: schedule, automation, subflow, manual (a deployment) or local."""
    if flow_run.parent_task_run_id is not None:
        return "subflow"
    if flow_run.auto_scheduled:
        return "schedule"
    created_by = flow_run.created_by
    if created_by is not None and (created_by.type or "").upper() == "AUTOMATION":
        return "automation"
    return "manual" if flow_run.deployment_id is not None else "local"


def utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO text (as the executor writes) or a datetime, as aware UTC; anything else None."""
    if isinstance(value, dt.datetime):
        return utc(value)
    if isinstance(value, str) and value:
        try:
            return utc(dt.datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _integer(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    return text[:limit] if limit else text


def reference_time(flow_run: FlowRun) -> dt.datetime | None:
    """Where a run falls in report windows: expected start, else start, else end."""
    return utc(flow_run.expected_start_time or flow_run.start_time or flow_run.end_time)


def execution_log_row(
    flow_run: FlowRun, identity: RunIdentity, *, new_row_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """The ``execution_logs`` columns Prefect knows (no ``metrics``: those are the executor's)."""
    start, end = utc(flow_run.start_time), utc(flow_run.end_time)
    elapsed = _seconds(start, end)
    if elapsed is None:
        elapsed = flow_run.total_run_time.total_seconds() if flow_run.total_run_time else 0.0
    state = flow_run.state
    return {
        "id": new_row_id or uuid.uuid4(),
        "workflow_name": identity.name[:255],
        "workflow_version": identity.version[:64],
        "flow_run_id": flow_run.id,
        "status": state.type.value if state is not None else "PENDING",
        "execution_time": dt.timedelta(seconds=elapsed),
        "expected_start_time": utc(flow_run.expected_start_time),
        "started_at": start,
        "ended_at": end,
    }


def harvested_run_row(
    flow_run: FlowRun,
    identity: RunIdentity,
    *,
    task_runs: int,
    harvested_at: dt.datetime,
    parent_flow_run_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The ``harvested_runs`` row of a flow run."""
    return {
        "flow_run_id": flow_run.id,
        "workflow_name": identity.name[:255],
        "trigger": trigger_of(flow_run),
        "state_name": _text(flow_run.state.name if flow_run.state else None, 100),
        "deployment_id": flow_run.deployment_id,
        "parent_flow_run_id": parent_flow_run_id,
        "reference_time": reference_time(flow_run),
        "task_runs": task_runs,
        "harvested_at": harvested_at,
    }


def task_run_row(task_run: TaskRun, workflow: str, recorded: Mapping[str, Any] | None) -> dict[str, Any]:
    """A ``task_runs`` row: Prefect's state and times, the executor's figures merged in."""
    recorded = recorded or {}
    name = task_run.name
    task_id, index = split_task_run_name(name)
    state = task_run.state
    start = utc(task_run.start_time) or parse_time(recorded.get("start_time"))
    end = utc(task_run.end_time) or parse_time(recorded.get("end_time"))
    duration = _seconds(start, end)
    if duration is None:
        duration = _number(recorded.get("duration_seconds"))
    error = _text(recorded.get("error"))
    state_type = state.type.value if state is not None else str(recorded.get("state") or "PENDING")
    if error is None and state_type in ("FAILED", "CRASHED") and state is not None:
        error = _text(state.message)
    return {
        "task_run_id": task_run.id,
        "flow_run_id": task_run.flow_run_id,
        "workflow_name": workflow[:255],
        "task_id": str(recorded.get("task_id") or task_id)[:255],
        "task_run_name": name[:255],
        "map_index": index,
        "state_type": state_type,
        "state_name": _text(state.name if state is not None else recorded.get("state_name"), 100),
        "start_time": start,
        "end_time": end,
        "duration_seconds": duration,
        "attempts": max(task_run.run_count or 0, _integer(recorded.get("attempts")) or 0),
        "cpu_seconds": _number(recorded.get("cpu_seconds")),
        "peak_memory_bytes": _integer(recorded.get("peak_memory_bytes")),
        "error_message": error,
        "inputs_hash": _text(recorded.get("inputs_hash"), 64),
        "output_hash": _text(recorded.get("output_hash"), 64),
    }


def recorded_task_row(
    flow_run_id: uuid.UUID, workflow: str, name: str, recorded: Mapping[str, Any]
) -> dict[str, Any]:
    """A ``task_runs`` row from the executor's record alone (Prefect has not got the task run)."""
    task_id, index = split_task_run_name(name)
    start, end = parse_time(recorded.get("start_time")), parse_time(recorded.get("end_time"))
    duration = _number(recorded.get("duration_seconds"))
    return {
        "task_run_id": executor_task_run_id(flow_run_id, name),
        "flow_run_id": flow_run_id,
        "workflow_name": workflow[:255],
        "task_id": str(recorded.get("task_id") or task_id)[:255],
        "task_run_name": name[:255],
        "map_index": index,
        "state_type": str(recorded.get("state") or "PENDING")[:50],
        "state_name": _text(recorded.get("state_name"), 100),
        "start_time": start,
        "end_time": end,
        "duration_seconds": duration if duration is not None else _seconds(start, end),
        "attempts": _integer(recorded.get("attempts")) or 0,
        "cpu_seconds": _number(recorded.get("cpu_seconds")),
        "peak_memory_bytes": _integer(recorded.get("peak_memory_bytes")),
        "error_message": _text(recorded.get("error")),
        "inputs_hash": _text(recorded.get("inputs_hash"), 64),
        "output_hash": _text(recorded.get("output_hash"), 64),
    }


def executor_task_run_id(flow_run_id: uuid.UUID, name: str) -> uuid.UUID:
    """The stand-in id of a task run known only from the executor's record."""
    return uuid.uuid5(_EXECUTOR_NAMESPACE, f"{flow_run_id}/{name}")


def recorded_tasks(metrics: Any) -> dict[str, Mapping[str, Any]]:
    """The executor's per-task records (``metrics["tasks"]``) by task run name."""
    tasks = metrics.get("tasks") if isinstance(metrics, Mapping) else None
    if not isinstance(tasks, Mapping):
        return {}
    return {str(name): entry for name, entry in tasks.items() if isinstance(entry, Mapping)}
