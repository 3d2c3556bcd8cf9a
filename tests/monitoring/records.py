"""Sink records for the wire tests: built from an ``execution_logs`` row, as both paths build them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from blocks.sink_records import LogLine, RunMetric, run_records
from flows.monitoring.log_lines import log_line

T0 = dt.datetime(2026, 11, 30, 23, 59, 58, 250000, tzinfo=dt.UTC)


def execution_row(*, workflow: str = "orders", tasks: int = 3, status: str = "COMPLETED") -> dict[str, Any]:
    """A finished run's row: ``tasks`` fan-out items ending in the same microsecond, one retried."""
    end = T0 + dt.timedelta(seconds=1.6)
    task_json = {
        f"load[{index}]": {
            "task_id": "load",
            "state": "COMPLETED",
            "duration_seconds": 1.5,
            "attempts": 2 if index == 0 else 1,
            "cpu_seconds": 0.25,
            "peak_memory_bytes": 50_000_000 + index,
            "start_time": (T0 + dt.timedelta(seconds=0.1)).isoformat(),
            "end_time": end.isoformat(),
            "ready_time": (T0 + dt.timedelta(seconds=0.05)).isoformat(),
        }
        for index in range(tasks)
    }
    return {
        "workflow_name": workflow,
        "workflow_version": "2.0.0",
        "flow_run_id": uuid.uuid4(),
        "status": status,
        "execution_time": dt.timedelta(seconds=4),
        "expected_start_time": T0 - dt.timedelta(seconds=2),
        "started_at": T0,
        # The next UTC day: the flow run's document goes to that day's index.
        "ended_at": T0 + dt.timedelta(seconds=4),
        "metrics": {
            "tasks": task_json,
            "placement": {"deployment": "trinity", "work_pool": "pool-a", "worker": "w1", "attempt": 1},
        },
    }


def records_and_lines(row: dict[str, Any], lines: int = 2) -> tuple[list[RunMetric], list[LogLine]]:
    """The run's records and ``lines`` log lines of it."""
    tags = {"workflow": row["workflow_name"], "version": row["workflow_version"]}
    logs = [
        log_line(
            flow_run_id=row["flow_run_id"],
            task_run_id=None,
            timestamp=T0 + dt.timedelta(milliseconds=index),
            logger="prefect.flow_runs",
            level=20,
            message=f"line {index}",
            tags=tags,
        )
        for index in range(lines)
    ]
    return run_records(row), logs
