"""Plain factories for small, hand-written run histories (times are seconds after T0)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from analytics.frames import RUN_COLUMNS, TASK_COLUMNS

T0 = datetime(2025, 1, 6, tzinfo=UTC)
# The seed's failure family fields, in the order patterns/failure_families.json and the API give them.
FAMILY_KEYS = [
    "signature",
    "count",
    "example",
    "workflows",
    "tasks",
    "first_seen",
    "last_seen",
    "flow_run_ids",
]


def at(seconds: float | None) -> datetime | None:
    """T0 plus ``seconds`` (None stays None)."""
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def run_row(
    run_id: str,
    *,
    workflow: str = "wf",
    state: str = "COMPLETED",
    start: float = 0.0,
    end: float | None = 10.0,
    expected: float | None = None,
    version: str = "1.0.0",
) -> dict[str, Any]:
    expected = start if expected is None else expected
    return {
        "flow_run_id": run_id,
        "workflow": workflow,
        "workflow_version": version,
        "state": state,
        "expected_start_time": at(expected),
        "start_time": at(start),
        "end_time": at(end),
        "duration_seconds": None if end is None else end - start,
        "queue_wait_seconds": start - expected,
    }


def task_row(
    run_id: str,
    task_id: str,
    start: float,
    end: float,
    *,
    workflow: str = "wf",
    state: str = "COMPLETED",
    state_name: str | None = None,
    attempts: int = 1,
    error: str | None = None,
    inputs_hash: str | None = None,
    output_hash: str | None = None,
    name: str | None = None,
    cpu: float = 1.0,
    memory: float = 1e6,
) -> dict[str, Any]:
    return {
        "flow_run_id": run_id,
        "workflow": workflow,
        "task_id": task_id,
        "task_run_name": name or task_id,
        "state": state,
        "state_name": state_name or state.capitalize(),
        "start_time": at(start),
        "end_time": at(end),
        "duration_seconds": end - start,
        "attempts": attempts,
        "cpu_seconds": cpu,
        "peak_memory_bytes": memory,
        "error_message": error,
        "inputs_hash": inputs_hash,
        "output_hash": output_hash,
    }


def frames(runs: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DataFrames with the contract's columns (and dtypes pandas infers from the rows)."""
    run_frame = pd.DataFrame(runs, columns=list(RUN_COLUMNS))
    task_frame = pd.DataFrame(tasks, columns=list(TASK_COLUMNS))
    for frame, columns in (
        (run_frame, ("expected_start_time", "start_time", "end_time")),
        (task_frame, ("start_time", "end_time")),
    ):
        for column in columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return run_frame, task_frame


def workflow_doc(
    tasks: list[dict[str, Any]], *, name: str = "wf", version: str = "1.0.0", **extra: Any
) -> dict[str, Any]:
    """A valid workflow document around ``tasks``."""
    return {
        "kind": "Workflow",
        "name": name,
        "version": version,
        "spec": {"name": name, "version": "^1.0.0"},
        **extra,
        "tasks": tasks,
    }


def task(task_id: str, *needs: str, uses: str = "noop", **extra: Any) -> dict[str, Any]:
    """One task entry of a workflow document."""
    entry: dict[str, Any] = {"id": task_id, "uses": uses}
    if needs:
        entry["needs"] = list(needs)
    entry.update(extra)
    return entry
