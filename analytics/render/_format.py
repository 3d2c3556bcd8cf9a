"""Markdown building blocks shared by the renderers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from analytics.proposals import pct, secs
from analytics.report_model import Recommendation, Report

__all__ = ["evidence_lines", "header", "pct", "recommendation_block", "secs", "table"]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def header(report: Report, title: str) -> str:
    """Title plus the window and the amount of history behind the numbers."""
    return (
        f"# {title}\n\n"
        f"Window {report.window_start.isoformat()} to {report.window_end.isoformat()}: "
        f"{report.totals['runs']} runs, {report.totals['task_runs']} task runs, "
        f"{report.totals['workflows']} workflows.\n\n"
    )


def evidence_lines(evidence: dict[str, Any]) -> str:
    """Evidence as a bullet list (nested dicts inline)."""
    out = []
    for key, value in evidence.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        out.append(f"- {key}: {value}")
    return "\n".join(out) + "\n"


def recommendation_block(rec: Recommendation, *, level: int = 3, with_diff: bool = True) -> str:
    """One recommendation: title, where, effect, evidence and its diff."""
    where = f"{rec.workflow}/{rec.task_id}" if rec.task_id else rec.workflow
    text = (
        f"{'#' * level} {rec.title}\n\n"
        f"`{rec.id}` -- {where}, {rec.kind}, severity {rec.severity}.\n\n"
        f"{rec.expected_effect}\n\n"
        f"Evidence:\n\n{evidence_lines(rec.evidence)}\n"
    )
    if with_diff and rec.yaml_diff:
        text += f"```diff\n{rec.yaml_diff}```\n\n"
    return text
