"""The seed's LOGS tree as a mapping of relative path -> content (the caller writes the files)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from analytics.render import markdown as md
from analytics.render.charts import critical_path_gantt_svg, duration_trends_svg, usage_heatmap_svg
from analytics.report_model import Report, jsonable

LOGS_TREE_PATHS: tuple[str, ...] = (
    "performance/execution_times.json",
    "performance/resource_usage.json",
    "performance/bottleneck_analysis.json",
    "performance/anomalies.json",
    "performance/forecasts.json",
    "optimization/suggestions.md",
    "optimization/performance_improvements.md",
    "optimization/architecture_recommendations.md",
    "patterns/workflow_usage.json",
    "patterns/integration_patterns.json",
    "patterns/user_behavior.json",
    "patterns/failure_families.json",
    "insights/business_impact.md",
    "insights/technical_learnings.md",
    "insights/future_opportunities.md",
    "charts/duration_trends.svg",
    "charts/critical_path_gantt.svg",
    "charts/usage_heatmap.svg",
)


def _json(report: Report, payload: dict[str, Any]) -> str:
    head = {
        "window_start": report.window_start,
        "window_end": report.window_end,
        "generated_at": report.generated_at,
    }
    return json.dumps(jsonable({**head, **payload}), indent=2, allow_nan=False) + "\n"


def execution_times(report: Report) -> dict[str, Any]:
    """Durations, queue waits, attempts and trends per workflow and task."""
    workflows = [
        {
            k: v
            for k, v in jsonable(w).items()
            if k not in ("cpu_seconds_total", "cpu_seconds_per_run", "peak_memory_bytes_max")
        }
        for w in report.performance.workflows
    ]
    tasks = [
        {k: v for k, v in jsonable(t).items() if not k.startswith(("cpu_", "peak_memory"))}
        for t in report.performance.tasks
    ]
    return {"workflows": workflows, "tasks": tasks}


def resource_usage(report: Report) -> dict[str, Any]:
    """CPU seconds and peak memory per workflow and task."""
    return {
        "workflows": [
            {
                "workflow": w.workflow,
                "runs": w.runs,
                "task_runs": w.task_runs,
                "cpu_seconds_total": w.cpu_seconds_total,
                "cpu_seconds_per_run": w.cpu_seconds_per_run,
                "peak_memory_bytes_max": w.peak_memory_bytes_max,
            }
            for w in report.performance.workflows
        ],
        "tasks": [
            {
                "workflow": t.workflow,
                "task_id": t.task_id,
                "task_runs": t.task_runs,
                "cpu_seconds_mean": t.cpu_seconds_mean,
                "cpu_seconds_total": t.cpu_seconds_total,
                "peak_memory_bytes_p95": t.peak_memory_bytes_p95,
                "peak_memory_bytes_max": t.peak_memory_bytes_max,
            }
            for t in report.performance.tasks
        ],
    }


def integration_patterns(report: Report) -> dict[str, Any]:
    """Actions (``uses``) per workflow, and task runs, failures and durations per action."""
    per_action: dict[str, dict[str, float]] = defaultdict(
        lambda: {"task_runs": 0, "failed": 0, "seconds": 0.0}
    )
    for t in report.performance.tasks:
        action = report.usage.task_actions.get(t.workflow, {}).get(t.task_id, "<unknown>")
        entry = per_action[action]
        entry["task_runs"] += t.task_runs
        entry["failed"] += t.failed
        entry["seconds"] += (t.duration.mean or 0.0) * t.duration.count
    actions = {
        name: {
            "task_runs": int(v["task_runs"]),
            "failed": int(v["failed"]),
            "failure_rate": v["failed"] / v["task_runs"] if v["task_runs"] else None,
            "completed_seconds_total": v["seconds"],
        }
        for name, v in sorted(per_action.items())
    }
    return {
        "actions_per_workflow": report.usage.actions,
        "actions": actions,
        "task_actions": report.usage.task_actions,
    }


def workflow_usage(report: Report) -> dict[str, Any]:
    """How much each workflow ran, when (UTC), and how many runs overlapped."""
    u = report.usage
    daily = {
        w.workflow: [{"date": d.date, "runs": d.runs, "failed": d.failed} for d in w.daily]
        for w in report.performance.workflows
    }
    return {
        "runs_by_workflow": u.runs_by_workflow,
        "by_hour_utc": u.by_hour,
        "by_weekday": u.by_weekday,
        "weekday_hour_utc": u.weekday_hour,
        "max_concurrent_runs": u.max_concurrent_runs,
        "daily": daily,
    }


def user_behavior(report: Report) -> dict[str, Any]:
    """Trigger kinds and arrival regularity per workflow, and the busiest slots."""
    u = report.usage
    busiest_hour = max(range(24), key=lambda h: u.by_hour[h]) if any(u.by_hour) else None
    busiest_day = max(range(7), key=lambda d: u.by_weekday[d]) if any(u.by_weekday) else None
    return {
        "triggers": u.triggers,
        "arrival": u.arrival,
        "busiest_hour_utc": busiest_hour,
        "busiest_weekday": busiest_day,
        "weekday_numbering": "0 = Monday",
    }


def failure_families(report: Report) -> dict[str, Any]:
    """``{"families": [...]}``: the window's failure families, largest first."""
    section = report.families
    return {
        "families": section.families,
        "distance_threshold": section.distance_threshold,
        "distinct_messages": section.messages,
        "ungrouped_failures": section.ungrouped_failures,
    }


def anomalies(report: Report) -> dict[str, Any]:
    """``{"anomalies": [...]}``: multivariate anomalies, highest score first, with the tasks checked."""
    section = report.multivariate
    return {
        "anomalies": section.anomalies,
        "min_score": section.min_score,
        "feature_z": section.feature_z,
        "unavailable_features": section.unavailable_features,
        "tasks": section.checks,
    }


def forecasts(report: Report) -> dict[str, Any]:
    """``{"forecasts": [...]}``: one per success metric."""
    return {"forecasts": report.forecasts}


def render_logs_tree(report: Report) -> dict[str, str | bytes]:
    """Relative path -> content for every file of the LOGS tree (text as str, charts as SVG bytes)."""
    bottleneck_findings = [f for f in report.findings if f.kind == "bottleneck"]
    files: dict[str, str | bytes] = {
        "performance/execution_times.json": _json(report, execution_times(report)),
        "performance/resource_usage.json": _json(report, resource_usage(report)),
        "performance/bottleneck_analysis.json": _json(
            report, {"workflows": report.bottlenecks, "findings": bottleneck_findings}
        ),
        "performance/anomalies.json": _json(report, anomalies(report)),
        "performance/forecasts.json": _json(report, forecasts(report)),
        "optimization/suggestions.md": md.suggestions_md(report),
        "optimization/performance_improvements.md": md.performance_improvements_md(report),
        "optimization/architecture_recommendations.md": md.architecture_md(report),
        "patterns/workflow_usage.json": _json(report, workflow_usage(report)),
        "patterns/integration_patterns.json": _json(report, integration_patterns(report)),
        "patterns/user_behavior.json": _json(report, user_behavior(report)),
        "patterns/failure_families.json": _json(report, failure_families(report)),
        "insights/business_impact.md": md.business_impact_md(report),
        "insights/technical_learnings.md": md.technical_learnings_md(report),
        "insights/future_opportunities.md": md.future_opportunities_md(report),
        "charts/duration_trends.svg": duration_trends_svg(report),
        "charts/critical_path_gantt.svg": critical_path_gantt_svg(report),
        "charts/usage_heatmap.svg": usage_heatmap_svg(report),
    }
    return files
