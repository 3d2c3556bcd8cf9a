"""Flat rows for database tables: one row per workflow/task metric set, one per insight."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from analytics.report_model import Report, jsonable
from analytics.stats import Summary, Trend


def _window(report: Report) -> dict[str, datetime]:
    return {
        "window_start": report.window_start.to_pydatetime(),
        "window_end": report.window_end.to_pydatetime(),
    }


def _metrics(duration: Summary, trend: Trend) -> dict[str, Any]:
    return {
        "duration_count": duration.count,
        "duration_mean_seconds": duration.mean,
        "duration_p50_seconds": duration.p50,
        "duration_p95_seconds": duration.p95,
        "duration_p99_seconds": duration.p99,
        "duration_max_seconds": duration.max,
        "trend_slope_seconds_per_day": trend.slope_seconds_per_day,
        "trend_p_value": trend.p_value,
        "trend_direction": trend.direction,
    }


def performance_rows(report: Report) -> list[dict[str, Any]]:
    """One row per workflow (``task_id`` None) and per workflow task; every row has the same keys.

    Durations are seconds of completed work; ``runs`` counts flow runs for workflow rows and task
    runs for task rows.
    """
    rows: list[dict[str, Any]] = []
    for w in report.performance.workflows:
        rows.append(
            {
                "workflow": w.workflow,
                "task_id": None,
                **_window(report),
                "runs": w.runs,
                "failed": sum(v for k, v in w.states.items() if k in ("FAILED", "CRASHED")),
                "success_rate": w.success_rate,
                **_metrics(w.duration, w.trend),
                "queue_wait_p95_seconds": w.queue_wait.p95,
                "attempts_mean": w.attempts_mean,
                "cpu_seconds_total": w.cpu_seconds_total,
                "peak_memory_bytes_max": w.peak_memory_bytes_max,
            }
        )
    for t in report.performance.tasks:
        rows.append(
            {
                "workflow": t.workflow,
                "task_id": t.task_id,
                **_window(report),
                "runs": t.task_runs,
                "failed": t.failed,
                "success_rate": t.success_rate,
                **_metrics(t.duration, t.trend),
                "queue_wait_p95_seconds": t.ready_wait.p95,
                "attempts_mean": t.attempts_mean,
                "cpu_seconds_total": t.cpu_seconds_total,
                "peak_memory_bytes_max": t.peak_memory_bytes_max,
            }
        )
    return [jsonable_numbers(row) for row in rows]


def jsonable_numbers(row: dict[str, Any]) -> dict[str, Any]:
    """NaN and numpy scalars to plain Python values, datetimes left as they are."""
    return {k: v if isinstance(v, datetime) else jsonable(v) for k, v in row.items()}


def insight_rows(report: Report) -> list[dict[str, Any]]:
    """One row per recommendation (``source`` "recommendation") and per finding (``source`` "finding")."""
    rows: list[dict[str, Any]] = []
    for r in report.recommendations:
        rows.append(
            {
                "id": r.id,
                "source": "recommendation",
                "workflow": r.workflow,
                "task_id": r.task_id,
                "kind": r.kind,
                "title": r.title,
                "severity": r.severity,
                "evidence": jsonable(r.evidence),
                "expected_effect": r.expected_effect,
                "yaml_diff": r.yaml_diff,
                **_window(report),
            }
        )
    for f in report.findings:
        rows.append(
            {
                "id": f.id,
                "source": "finding",
                "workflow": f.workflow,
                "task_id": f.task_id,
                "kind": f.kind,
                "title": f.title,
                "severity": f.severity,
                "evidence": jsonable(f.evidence),
                "expected_effect": "",
                "yaml_diff": "",
                **_window(report),
            }
        )
    return rows
