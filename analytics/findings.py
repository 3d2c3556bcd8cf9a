"""Findings: observations that deserve attention but are not document changes -- spec breaches,
slowdowns, dominant critical-path tasks, anomaly clusters, failing tasks, breaches the trend
forecasts and task runs unlike their task's others."""

from __future__ import annotations

from analytics.config import AnalysisConfig
from analytics.forecasts import FALLING_IS_BAD
from analytics.learning_model import Forecast, MultivariateAnomaly, MultivariateSection
from analytics.proposals import num, pct, secs
from analytics.report_model import (
    AnomalySection,
    FailureGroup,
    FailureSection,
    Finding,
    PerformanceSection,
    SpecCheck,
    WorkflowBottlenecks,
    observed_id,
)
from analytics.stats import Trend, trend_rate


def _finding(
    kind: str,
    workflow: str,
    task_id: str | None,
    title: str,
    evidence: dict[str, object],
    severity: str,
    extra: str = "",
) -> Finding:
    identity = observed_id(kind, workflow, task_id, extra)
    return Finding(identity, workflow, task_id, kind, title, evidence, severity)


def spec_findings(checks: list[SpecCheck]) -> list[Finding]:
    """One finding per breached success metric."""
    return [
        _finding(
            "spec_breach",
            c.workflow,
            None,
            extra=c.metric,
            title=(
                f"{c.workflow} breaches {c.metric}: {c.observed:.4g} against a target of {c.target:g} "
                f"({c.basis})"
            ),
            evidence={
                "metric": c.metric,
                "target": c.target,
                "observed": num(c.observed, 5),
                "delta": num(c.delta, 5),
                "delta_relative": num(c.delta_relative, 5),
                "n": c.n,
            },
            severity="high",
        )
        for c in checks
        if c.breached and c.observed is not None
    ]


def _trend_evidence(t: Trend) -> dict[str, object]:
    rate, _, unit = trend_rate(t)
    return {
        "slope_seconds": num(rate, 5),
        "slope_unit": unit,
        "slope_seconds_per_day": num(t.slope_seconds_per_day),
        "slope_95ci": [num(t.slope_low), num(t.slope_high)],
        "slope_seconds_per_run": num(t.slope_seconds_per_run, 5),
        "relative_change_per_day": num(t.relative_change_per_day, 5),
        "change_over_window_seconds": num(t.change_over_window_seconds),
        "p_value": None if t.p_value is None else float(f"{t.p_value:.3g}"),
        "n": t.n,
        "method": "Theil-Sen slope, Mann-Kendall test",
    }


def _trend_title(what: str, t: Trend) -> str:
    rate, relative, unit = trend_rate(t)
    return (
        f"{what} is getting {t.direction}: {rate:+.3g} s per {unit} "
        f"({pct(relative)} of its median per {unit}), "
        f"{secs(t.change_over_window_seconds)} over the window, p={t.p_value:.2g}"
    )


def trend_findings(perf: PerformanceSection) -> list[Finding]:
    """Workflows and tasks with a significant duration trend."""
    out = [
        _finding(
            "trend",
            w.workflow,
            None,
            _trend_title(w.workflow, w.trend),
            _trend_evidence(w.trend),
            "medium" if w.trend.direction == "slower" else "low",
        )
        for w in perf.workflows
        if w.trend.significant
    ]
    out += [
        _finding(
            "trend",
            t.workflow,
            t.task_id,
            _trend_title(f"{t.workflow}/{t.task_id}", t.trend),
            _trend_evidence(t.trend),
            "medium" if t.trend.direction == "slower" else "low",
        )
        for t in perf.tasks
        if t.trend.significant
    ]
    return out


def bottleneck_findings(sections: list[WorkflowBottlenecks], config: AnalysisConfig) -> list[Finding]:
    """Tasks that dominate their workflow's critical path."""
    out: list[Finding] = []
    for b in sections:
        for t in b.tasks:
            share = t.share_of_critical_path or 0.0
            if share < config.bottleneck_min_share or t.critical_share < config.bottleneck_min_critical_share:
                continue
            out.append(
                _finding(
                    "bottleneck",
                    b.workflow,
                    t.task_id,
                    title=(
                        f"{t.task_id} is on the critical path of {pct(t.critical_share)} of {b.workflow} "
                        f"runs and takes {pct(share)} of it; halving it would shorten runs by "
                        f"{secs(t.reduction_if_halved_seconds)}"
                    ),
                    evidence={
                        "critical_share": num(t.critical_share, 5),
                        "share_of_critical_path": num(share, 5),
                        "duration_mean_seconds": num(t.duration_mean_seconds),
                        "critical_path_mean_seconds": num(b.critical_path_mean_seconds),
                        "reduction_if_halved_seconds": num(t.reduction_if_halved_seconds),
                        "reduction_if_zero_seconds": num(t.reduction_if_zero_seconds),
                        "runs_analysed": b.runs_analysed,
                    },
                    severity="medium",
                )
            )
    return out


def anomaly_findings(section: AnomalySection) -> list[Finding]:
    """One finding per workflow or task with anomalous runs."""
    out: list[Finding] = []
    for c in section.counts:
        if not c.flagged:
            continue
        listed = [
            a
            for a in (section.tasks if c.task_id else section.runs)
            if a.workflow == c.workflow and a.task_id == c.task_id
        ]
        worst = max(listed, key=lambda a: abs(a.robust_z), default=None)
        what = f"{c.workflow}/{c.task_id}" if c.task_id else f"{c.workflow} runs"
        title = f"{what}: {c.flagged} of {c.checked} far outside their history"
        if c.slow_completed:
            title += f" ({c.slow_completed} slow but completed)"
        evidence: dict[str, object] = {
            "checked": c.checked,
            "flagged": c.flagged,
            "slow_completed": c.slow_completed,
        }
        if worst is not None:
            evidence.update(
                worst_flow_run_id=worst.flow_run_id,
                worst_duration_seconds=num(worst.duration_seconds),
                baseline_median_seconds=num(worst.baseline_median_seconds),
                worst_ratio=num(worst.ratio),
                worst_robust_z=num(worst.robust_z),
            )
        out.append(
            _finding(
                "anomaly",
                c.workflow,
                c.task_id,
                title,
                evidence,
                "medium" if c.flagged / max(c.checked, 1) >= 0.01 else "low",
            )
        )
    return out


def failure_findings(section: FailureSection) -> list[Finding]:
    """One finding per task that failed for good at least once."""
    out: list[Finding] = []
    top: dict[tuple[str, str], FailureGroup] = {}
    for g in section.groups:
        top.setdefault((g.workflow, g.task_id), g)
    for p in section.retry_profiles:
        if not p.failed_final:
            continue
        group = top.get((p.workflow, p.task_id))
        signature = group.signature if group else "n/a"
        out.append(
            _finding(
                "failures",
                p.workflow,
                p.task_id,
                title=(
                    f"{p.workflow}/{p.task_id} failed {p.failed_final} of {p.task_runs} times "
                    f"({pct(p.failure_rate)}), classified {p.classification}; most common error: {signature}"
                ),
                evidence={
                    "failed_final": p.failed_final,
                    "failure_rate": num(p.failure_rate, 5),
                    "classification": p.classification,
                    "signatures": p.signatures,
                    "top_signature": signature,
                    "top_signature_share": num(p.top_signature_share, 5),
                    "succeeded_on_retry": p.succeeded_on_retry,
                },
                severity="high" if p.failure_rate >= 0.05 else "medium" if p.failure_rate >= 0.01 else "low",
            )
        )
    return out


def _days(later: object, earlier: object) -> str:
    seconds = (later - earlier).total_seconds()  # type: ignore[operator]
    return f"~{seconds / 86_400:.1f} days" if seconds >= 86_400 else f"~{seconds / 3600:.1f} hours"


def forecast_findings(forecasts: list[Forecast], as_of: object) -> list[Finding]:
    """One finding per success metric whose trend breaches it within the horizon."""
    out: list[Finding] = []
    for f in forecasts:
        if f.status != "breach_expected" or f.breach_expected_at is None:
            continue
        verb = "falls below" if f.metric in FALLING_IS_BAD else "passes"
        between = f"between {f.low:%Y-%m-%d %H:%M} and " + (
            f"{f.high:%Y-%m-%d %H:%M} UTC" if f.high is not None else "later"
        )
        out.append(
            _finding(
                "forecast",
                f.workflow,
                None,
                extra=f.metric,
                title=(
                    f"At this rate {f.workflow} {f.metric} {verb} {f.target:g} in "
                    f"{_days(f.breach_expected_at, as_of)} ({f.breach_expected_at:%Y-%m-%d %H:%M} UTC, "
                    f"{between}); now {f.current:.4g}"
                ),
                evidence={
                    "metric": f.metric,
                    "target": f.target,
                    "current": num(f.current, 5),
                    "slope_per_day": num(f.slope_per_day, 5),
                    "breach_expected_at": f.breach_expected_at.isoformat(),
                    "low": None if f.low is None else f.low.isoformat(),
                    "high": None if f.high is None else f.high.isoformat(),
                    "points": f.points,
                    "method": f.method,
                    "model": {"kind": f.model.kind, "key": f.model.key, "revision": f.model.revision},
                },
                severity="high",
            )
        )
    return out


def multivariate_findings(section: MultivariateSection) -> list[Finding]:
    """One finding per task with multivariate anomalies, naming the worst and its features."""
    by_task: dict[tuple[str, str], list[MultivariateAnomaly]] = {}
    for a in section.anomalies:
        by_task.setdefault((a.workflow, a.task), []).append(a)
    checked = {(c.workflow, c.task): c.task_runs for c in section.checks}
    out: list[Finding] = []
    for (workflow, task), found in sorted(by_task.items()):
        worst = max(found, key=lambda a: a.score)
        runs = checked.get((workflow, task), len(found))
        features = ", ".join(
            f"{v.name} {v.value:.4g} vs {v.baseline:.4g}"
            for v in worst.features
            if v.value is not None and v.baseline is not None
        )
        out.append(
            _finding(
                "multivariate_anomaly",
                workflow,
                task,
                title=(
                    f"{workflow}/{task}: {len(found)} of {runs} task runs "
                    f"unlike the others; worst {worst.flow_run_id} (score {worst.score:.2f}): {features}"
                ),
                evidence={
                    "flagged": len(found),
                    "worst_flow_run_id": worst.flow_run_id,
                    "worst_score": num(worst.score, 4),
                    "features": [f.name for f in worst.features],
                    "model": {
                        "kind": worst.model.kind,
                        "key": worst.model.key,
                        "revision": worst.model.revision,
                    },
                },
                severity="medium",
            )
        )
    return out
