"""Markdown sections for what the analytics learnt: failure families, multivariate anomalies and
SLO forecasts (used by the summary and the insights documents)."""

from __future__ import annotations

import pandas as pd

from analytics.learning_model import FailureFamily, Forecast, MultivariateAnomaly
from analytics.render._format import table
from analytics.report_model import Report

MAX_LISTED = 20


def _when(stamp: pd.Timestamp | None) -> str:
    return "" if stamp is None else f"{stamp:%Y-%m-%d %H:%M}"


def _places(family: FailureFamily) -> str:
    shown = ", ".join(family.tasks[:3])
    return shown + (f" and {len(family.tasks) - 3} more" if len(family.tasks) > 3 else "")


def families_table(families: list[FailureFamily]) -> str:
    """One row per family: signature, failures, where, when, trend."""
    return table(
        ["family", "signature", "failures", "flow runs", "tasks", "first seen", "last seen", "trend"],
        (
            (
                f.id + (" (new)" if f.new else ""),
                f.signature,
                f.count,
                f.flow_runs,
                _places(f),
                _when(f.first_seen),
                _when(f.last_seen),
                f"{f.trend} ({f.earlier} -> {f.recent})",
            )
            for f in families[:MAX_LISTED]
        ),
    )


def families_md(report: Report) -> str:
    """The failure families section."""
    section = report.families
    parts = [f"## Failure families ({len(section.families)})\n\n"]
    if not section.families:
        return parts[0] + "No task run failed in this window.\n"
    parts.append(
        f"{section.messages} distinct normalised error messages, clustered at cosine distance "
        f"{section.distance_threshold:g}; trends compare the first and second half of the window.\n\n"
    )
    parts.append(families_table(section.families))
    if section.ungrouped_failures:
        parts.append(
            f"\n{section.ungrouped_failures} failures with rare messages beyond the clustering bound "
            "belong to no family.\n"
        )
    return "".join(parts)


def _features(anomaly: MultivariateAnomaly) -> str:
    return "; ".join(
        f"{f.name} {f.value:.4g} (baseline {f.baseline:.4g})"
        for f in anomaly.features
        if f.value is not None and f.baseline is not None
    )


def multivariate_md(report: Report) -> str:
    """The multivariate anomalies section."""
    section = report.multivariate
    parts = [
        f"## Multivariate anomalies ({len(section.anomalies)})\n\n",
        f"Isolation forest per task; reported from an anomaly score of {section.min_score:g} with at "
        f"least one feature {section.feature_z:g} robust z from the task's median. Not recorded, so "
        f"not used: {', '.join(section.unavailable_features)}.\n\n",
    ]
    if not section.anomalies:
        return "".join(parts) + "No task run stood apart from its task's others.\n"
    parts.append(
        table(
            ["where", "flow run", "task run", "score", "features that stand out"],
            (
                (f"{a.workflow}/{a.task}", a.flow_run_id, a.task_run_name, f"{a.score:.2f}", _features(a))
                for a in section.anomalies[:MAX_LISTED]
            ),
        )
    )
    return "".join(parts)


def _forecast_row(f: Forecast) -> tuple[str, ...]:
    expected = _when(f.breach_expected_at) if f.status == "breach_expected" else ""
    between = f"{_when(f.low)} - {_when(f.high) or 'later'}" if f.status == "breach_expected" else ""
    current = "" if f.current is None else f"{f.current:.4g}"
    slope = "" if f.slope_per_day is None else f"{f.slope_per_day:+.3g}"
    return (
        f.workflow,
        f.metric,
        f"{f.target:g}",
        current,
        slope,
        f.status.replace("_", " "),
        expected,
        between,
    )


def forecasts_md(report: Report) -> str:
    """The SLO forecasts section."""
    parts = ["## SLO forecasts\n\n"]
    if not report.forecasts:
        return parts[0] + "No specification sets success metrics for these workflows.\n"
    horizon = report.forecasts[0].horizon_days
    parts.append(f"Trend of each success metric, extrapolated {horizon:g} days ahead.\n\n")
    parts.append(
        table(
            [
                "workflow",
                "metric",
                "target",
                "now (trend)",
                "per day",
                "status",
                "breach expected",
                "between",
            ],
            (_forecast_row(f) for f in report.forecasts),
        )
    )
    return "".join(parts)


def summary_md(report: Report) -> str:
    """The learnt part of the summary: expected breaches and the largest failure families."""
    parts: list[str] = []
    expected = [f for f in report.forecasts if f.status == "breach_expected"]
    if expected:
        parts.append("## SLO breaches expected\n\n")
        parts.append(
            table(
                ["workflow", "metric", "target", "now (trend)", "breach expected", "between"],
                (_forecast_row(f)[:4] + _forecast_row(f)[6:] for f in expected),
            )
        )
        parts.append("\n")
    if report.families.families:
        parts.append(f"## Failure families ({len(report.families.families)})\n\n")
        parts.append(families_table(report.families.families[:5]))
        parts.append("\n")
    return "".join(parts)
