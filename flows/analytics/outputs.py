"""Where a report goes: files of the LOGS tree, rows for the API, artifacts in the Prefect UI."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from analytics import Report, insight_rows, performance_rows, render_logs_tree, render_markdown_summary
from analytics.report_model import jsonable
from flows.analytics.database import Tables
from trinity.core.config import load_settings

# The analysis grades "high"/"medium"/"low"; the API serves "critical"/"warning"/"info".
SEVERITY = {"high": "critical", "medium": "warning", "low": "info"}
_INSIGHT_FIELDS = ("workflow", "task_id", "kind", "title", "window_start", "window_end", "yaml_diff")
_PERFORMANCE_KEYS = ("workflow", "task_id", "window_start", "window_end")
_FAMILY_DETAILS = ("centroid_terms", "variants", "earlier", "recent", "model")


def logs_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The LOGS tree root: ``override``, else the configured one (see ``Settings.logs_dir``)."""
    if override:
        return Path(override)
    return load_settings().logs_dir


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write through a temporary file in the same folder and rename it over ``path``, so a reader
    sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_logs_tree(report: Report, root: Path, *, sections: Iterable[str] | None = None) -> list[Path]:
    """Write the report's LOGS tree under ``root`` (only the top folders in ``sections`` if given).

    Returns the paths written, in a stable order.
    """
    wanted = set(sections) if sections is not None else None
    written: list[Path] = []
    for relative, content in sorted(render_logs_tree(report).items()):
        if wanted is not None and relative.split("/", 1)[0] not in wanted:
            continue
        target = root / relative
        write_atomic(target, content)
        written.append(target)
    return written


@dataclass(frozen=True)
class RowCounts:
    """Rows written for one report window."""

    performance: int = 0
    insights: int = 0
    families: int = 0


def performance_records(report: Report) -> list[dict[str, Any]]:
    """``analytics_performance`` rows: window columns, the other figures in ``metrics``."""
    records = []
    for row in performance_rows(report):
        metrics = {key: value for key, value in row.items() if key not in _PERFORMANCE_KEYS}
        records.append(
            {
                "id": uuid.uuid4(),
                "workflow": row["workflow"],
                "task_id": row["task_id"],
                "window_start": row["window_start"],
                "window_end": row["window_end"],
                "metrics": metrics,
            }
        )
    return records


def insight_records(report: Report) -> list[dict[str, Any]]:
    """``analytics_insights`` rows; the insight's id, source and expected effect go in the evidence."""
    records = []
    for row in insight_rows(report):
        raw = row["evidence"]
        evidence = dict(raw) if isinstance(raw, Mapping) else {"value": raw}
        evidence.setdefault("insight_id", row["id"])
        evidence.setdefault("source", row["source"])
        if row["expected_effect"]:
            evidence.setdefault("expected_effect", row["expected_effect"])
        record = {key: row[key] for key in _INSIGHT_FIELDS}
        record["title"] = str(record["title"])[:500]
        record["yaml_diff"] = record["yaml_diff"] or None
        record.update(
            id=uuid.uuid4(),
            severity=SEVERITY.get(str(row["severity"]), str(row["severity"]))[:20],
            evidence=evidence,
        )
        records.append(record)
    return records


def family_records(report: Report) -> list[dict[str, Any]]:
    """``analytics_failure_families`` rows: one per family of the window."""
    records = []
    for family in report.families.families:
        data = jsonable(family)
        records.append(
            {
                "id": uuid.uuid4(),
                "family_id": family.id,
                "window_start": report.window_start.to_pydatetime(),
                "window_end": report.window_end.to_pydatetime(),
                "signature": family.signature,
                "exception_type": None if family.exception_type is None else family.exception_type[:255],
                "count": family.count,
                "flow_runs": family.flow_runs,
                "example": family.example,
                "workflows": family.workflows,
                "tasks": family.tasks,
                "first_seen": None if family.first_seen is None else family.first_seen.to_pydatetime(),
                "last_seen": None if family.last_seen is None else family.last_seen.to_pydatetime(),
                "flow_run_ids": family.flow_run_ids,
                "trend": family.trend,
                "is_new": family.new,
                "details": {key: data[key] for key in _FAMILY_DETAILS},
            }
        )
    return records


def replace_window_rows(
    connection: sa.Connection,
    tables: Tables,
    report: Report,
    *,
    performance: bool = True,
    insights: bool = True,
    workflow: str | None = None,
) -> RowCounts:
    """Replace the rows of the report's window (same start and end) by the report's rows (failure
    families always; performance and insights when asked).

    ``workflow``: the report covers only that workflow, so only its rows are replaced; failure
    families span workflows, so such a report leaves the window's families as they are.
    """
    start, end = report.window_start.to_pydatetime(), report.window_end.to_pydatetime()
    counts = {"performance": 0, "insights": 0, "families": 0}
    for kind, table, wanted, build in (
        ("performance", tables.performance, performance, performance_records),
        ("insights", tables.insights, insights, insight_records),
        ("families", tables.families, workflow is None, family_records),
    ):
        if not wanted:
            continue
        same_window = [table.c.window_start == start, table.c.window_end == end]
        if workflow is not None:
            same_window.append(table.c.workflow == workflow)
        connection.execute(table.delete().where(*same_window))
        records = build(report)
        if records:
            connection.execute(table.insert(), records)
        counts[kind] = len(records)
    return RowCounts(**counts)


def performance_table(report: Report) -> list[dict[str, Any]]:
    """Per-workflow figures for a table artifact."""
    table = []
    for w in report.performance.workflows:
        table.append(
            {
                "workflow": w.workflow,
                "runs": w.runs,
                "success_rate": _round(w.success_rate, 4),
                "p50_s": _round(w.duration.p50),
                "p95_s": _round(w.duration.p95),
                "max_s": _round(w.duration.max),
                "queue_wait_p95_s": _round(w.queue_wait.p95),
                "trend": w.trend.direction,
            }
        )
    return table


def recommendations_table(report: Report) -> list[dict[str, Any]]:
    """One row per recommendation, for a table artifact."""
    return [
        {
            "severity": r.severity,
            "workflow": r.workflow,
            "task": r.task_id or "",
            "kind": r.kind,
            "recommendation": r.title,
            "expected effect": r.expected_effect,
        }
        for r in report.recommendations
    ]


def families_table(report: Report) -> list[dict[str, Any]]:
    """One row per failure family, for a table artifact."""
    return [
        {
            "family": f.id,
            "signature": f.signature,
            "failures": f.count,
            "flow runs": f.flow_runs,
            "tasks": ", ".join(f.tasks),
            "first seen": None if f.first_seen is None else f"{f.first_seen:%Y-%m-%d %H:%M}",
            "last seen": None if f.last_seen is None else f"{f.last_seen:%Y-%m-%d %H:%M}",
            "trend": f.trend,
            "new": f.new,
        }
        for f in report.families.families
    ]


def anomalies_table(report: Report) -> list[dict[str, Any]]:
    """One row per multivariate anomaly, for a table artifact."""
    return [
        {
            "workflow": a.workflow,
            "task": a.task,
            "flow run": a.flow_run_id,
            "score": _round(a.score, 3),
            "features": "; ".join(f"{v.name} {v.value:.4g} (baseline {v.baseline:.4g})" for v in a.features),
        }
        for a in report.multivariate.anomalies
    ]


def forecasts_table(report: Report) -> list[dict[str, Any]]:
    """One row per SLO forecast, for a table artifact."""
    return [
        {
            "workflow": f.workflow,
            "metric": f.metric,
            "target": f.target,
            "current": _round(f.current, 4),
            "status": f.status,
            "breach expected at": None if f.breach_expected_at is None else f.breach_expected_at.isoformat(),
            "low": None if f.low is None else f.low.isoformat(),
            "high": None if f.high is None else f.high.isoformat(),
        }
        for f in report.forecasts
    ]


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


async def publish_artifacts(report: Report, *, prefix: str, title: str) -> dict[str, uuid.UUID]:
    """Create the report's artifacts on the current flow run (keys ``<prefix>-report``,
    ``<prefix>-workflows``, ``<prefix>-recommendations``, ``<prefix>-failure-families``,
    ``<prefix>-anomalies`` and ``<prefix>-forecasts``); returns key -> artifact id."""
    window = f"{report.window_start:%Y-%m-%d %H:%M} to {report.window_end:%Y-%m-%d %H:%M} UTC"
    created = {
        f"{prefix}-report": await acreate_markdown_artifact(
            markdown=render_markdown_summary(report),
            key=f"{prefix}-report",
            description=f"{title}, {window}",
        ),
        f"{prefix}-workflows": await acreate_table_artifact(
            table=performance_table(report),
            key=f"{prefix}-workflows",
            description=f"Per-workflow performance, {window}",
        ),
        f"{prefix}-recommendations": await acreate_table_artifact(
            table=recommendations_table(report),
            key=f"{prefix}-recommendations",
            description=f"Recommended workflow changes, {window}",
        ),
    }
    for suffix, rows, what in (
        ("failure-families", families_table(report), "Failure families"),
        ("anomalies", anomalies_table(report), "Task runs unlike their task's others"),
        ("forecasts", forecasts_table(report), "When each success metric will be breached at this rate"),
    ):
        key = f"{prefix}-{suffix}"
        created[key] = await acreate_table_artifact(table=rows, key=key, description=f"{what}, {window}")
    return created


async def publish_run_summary(*, key: str, title: str, lines: Iterable[str]) -> uuid.UUID:
    """Create a short Markdown artifact on the current flow run, so every run of an analytics flow
    says what it did in the Prefect UI -- also the runs that found nothing new."""
    body = "\n".join(f"- {line}" for line in lines)
    return await acreate_markdown_artifact(markdown=f"# {title}\n\n{body}\n", key=key, description=title)
