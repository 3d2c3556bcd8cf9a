"""Markdown renderings of a report: the summary (Prefect artifacts, terminal) and the LOGS tree's
optimization/ and insights/ documents. Every sentence is built from the report's numbers."""

from __future__ import annotations

from analytics.render._format import header, pct, recommendation_block, secs, table
from analytics.render.learning_md import families_md, forecasts_md, multivariate_md, summary_md
from analytics.report_model import Finding, Recommendation, Report
from analytics.stats import trend_rate

PERFORMANCE_KINDS = ("timeout", "cache", "parallelism")
RELIABILITY_KINDS = ("retries", "no_retries", "jitter")
MAX_LISTED = 20


def _where(workflow: str, task_id: str | None) -> str:
    return f"{workflow}/{task_id}" if task_id else workflow


def _findings_table(findings: list[Finding]) -> str:
    return table(
        ["severity", "kind", "where", "finding"],
        ((f.severity, f.kind, _where(f.workflow, f.task_id), f.title) for f in findings),
    )


def _recs_table(recs: list[Recommendation]) -> str:
    return table(
        ["severity", "kind", "where", "proposal", "expected effect"],
        ((r.severity, r.kind, _where(r.workflow, r.task_id), r.title, r.expected_effect) for r in recs),
    )


def _workflow_table(report: Report) -> str:
    rows = []
    for w in report.performance.workflows:
        trend = w.trend.direction
        if w.trend.significant and w.trend.slope_seconds_per_day is not None:
            rate, _, unit = trend_rate(w.trend)
            trend += f" ({rate:+.3g} s/{unit})"
        rows.append(
            (
                w.workflow,
                w.runs,
                pct(w.success_rate),
                secs(w.duration.p50),
                secs(w.duration.p95),
                secs(w.queue_wait.p95),
                trend,
            )
        )
    return table(["workflow", "runs", "success", "p50", "p95", "queue wait p95", "trend"], rows)


def render_markdown_summary(report: Report) -> str:
    """A compact Markdown summary: workflows, breaches, recommendations, findings, combined diffs."""
    parts = [header(report, "Trinity run analysis"), "## Workflows\n\n", _workflow_table(report), "\n"]
    breaches = [c for c in report.spec_checks if c.breached]
    if breaches:
        parts.append("## Specification breaches\n\n")
        parts.append(
            table(
                ["workflow", "metric", "target", "observed", "basis"],
                ((c.workflow, c.metric, f"{c.target:g}", f"{c.observed:.4g}", c.basis) for c in breaches),
            )
        )
        parts.append("\n")
    parts.append(summary_md(report))
    parts.append(f"## Recommendations ({len(report.recommendations)})\n\n")
    parts.append(
        _recs_table(report.recommendations[:MAX_LISTED])
        if report.recommendations
        else "No recommendations in this window.\n"
    )
    parts.append(f"\n## Findings ({len(report.findings)})\n\n")
    parts.append(
        _findings_table(report.findings[:MAX_LISTED]) if report.findings else "No findings in this window.\n"
    )
    if len(report.findings) > MAX_LISTED:
        parts.append(f"\n{len(report.findings) - MAX_LISTED} more findings are in the full report.\n")
    for workflow, diff in report.combined_diffs.items():
        parts.append(f"\n## All proposed changes to {workflow}\n\n```diff\n{diff}```\n")
    if report.notes:
        parts.append("\n## Notes\n\n" + "".join(f"- {n}\n" for n in report.notes))
    return "".join(parts)


def suggestions_md(report: Report) -> str:
    """optimization/suggestions.md: every recommendation with evidence and diff."""
    parts = [header(report, "Suggestions")]
    if not report.recommendations:
        parts.append("No recommendations in this window.\n")
    for rec in report.recommendations:
        parts.append(recommendation_block(rec, level=2))
    for workflow, diff in report.combined_diffs.items():
        parts.append(f"## All proposed changes to {workflow}\n\n```diff\n{diff}```\n\n")
    return "".join(parts)


def performance_improvements_md(report: Report) -> str:
    """optimization/performance_improvements.md: time-saving proposals, critical-path gains, trends."""
    parts = [header(report, "Performance improvements")]
    recs = [r for r in report.recommendations if r.kind in PERFORMANCE_KINDS]
    parts.append(f"## Proposals ({len(recs)})\n\n")
    parts.append(
        "".join(recommendation_block(r) for r in recs)
        if recs
        else "No timeout, caching or parallelism proposals in this window.\n\n"
    )
    parts.append("## Where time goes: critical path\n\n")
    for b in report.bottlenecks:
        if b.critical_path_mean_seconds is None:
            continue
        parts.append(
            f"### {b.workflow}\n\nMean critical path {secs(b.critical_path_mean_seconds)} over "
            f"{b.runs_analysed} completed runs; mean run {secs(b.run_duration_mean_seconds)}.\n\n"
        )
        parts.append(
            table(
                [
                    "task",
                    "on critical path",
                    "mean duration",
                    "mean slack",
                    "gain if 50% faster",
                    "gain if instant",
                ],
                (
                    (
                        t.task_id,
                        pct(t.critical_share),
                        secs(t.duration_mean_seconds),
                        secs(t.slack_mean_seconds),
                        secs(t.reduction_if_halved_seconds),
                        secs(t.reduction_if_zero_seconds),
                    )
                    for t in b.tasks
                ),
            )
        )
        parts.append("\n")
    trends = [f for f in report.findings if f.kind == "trend"]
    parts.append("## Duration trends\n\n")
    parts.append(_findings_table(trends) if trends else "No significant duration trend in this window.\n")
    return "".join(parts)


def architecture_md(report: Report) -> str:
    """optimization/architecture_recommendations.md: DAG shape, concurrency, retry policy."""
    parts = [header(report, "Architecture recommendations"), "## DAG shape\n\n"]
    rows = []
    for b in report.bottlenecks:
        if b.critical_path_mean_seconds is None:
            continue
        overhead = secs(b.overhead_mean_seconds)
        rows.append(
            (
                b.workflow,
                " -> ".join(b.most_common_path),
                pct(b.most_common_path_share),
                secs(b.critical_path_mean_seconds),
                overhead,
            )
        )
    parts.append(
        table(
            [
                "workflow",
                "most common critical path",
                "share of runs",
                "mean critical path",
                "mean run time beyond it",
            ],
            rows,
        )
        if rows
        else "No run could be placed on its DAG.\n"
    )
    parts.append("\n## Concurrency\n\n")
    par = [(b.workflow, b.parallelism) for b in report.bottlenecks if b.parallelism is not None]
    parts.append(
        table(
            ["workflow", "max_parallel_tasks", "task runs held by the limit", "mean wait", "peak demand p95"],
            (
                (
                    wf,
                    p.max_parallel_tasks,
                    f"{p.delayed_task_runs} ({pct(p.delayed_share)})",
                    secs(p.delayed_wait_mean_seconds),
                    p.peak_demand_p95,
                )
                for wf, p in par
            ),
        )
        if par
        else "No task timings to check against the limits.\n"
    )
    recs = [r for r in report.recommendations if r.kind in RELIABILITY_KINDS or r.kind == "parallelism"]
    parts.append(f"\n## Retry and concurrency proposals ({len(recs)})\n\n")
    parts.append(
        "".join(recommendation_block(r) for r in recs)
        if recs
        else "No retry or concurrency proposals in this window.\n"
    )
    return "".join(parts)


def business_impact_md(report: Report) -> str:
    """insights/business_impact.md: targets met or missed, reliability, recoverable time."""
    parts = [header(report, "Business impact"), "## Success metrics\n\n"]
    parts.append(
        table(
            ["workflow", "metric", "target", "observed", "breached", "basis"],
            (
                (
                    c.workflow,
                    c.metric,
                    f"{c.target:g}",
                    "n/a" if c.observed is None else f"{c.observed:.4g}",
                    "yes" if c.breached else "no",
                    c.basis,
                )
                for c in report.spec_checks
            ),
        )
        if report.spec_checks
        else "No specification sets success metrics for these workflows.\n"
    )
    parts.append("\n## Reliability\n\n")
    parts.append(
        table(
            ["workflow", "runs", "success rate", "states"],
            (
                (w.workflow, w.runs, pct(w.success_rate), ", ".join(f"{k} {v}" for k, v in w.states.items()))
                for w in report.performance.workflows
            ),
        )
    )
    parts.append("\n" + forecasts_md(report))
    saved = _recoverable(report)
    parts.append("\n## Recoverable time\n\n")
    parts.append(
        table(["proposal", "seconds in this window"], saved)
        if saved
        else "No proposal in this window quantifies recoverable time.\n"
    )
    return "".join(parts)


def _recoverable(report: Report) -> list[tuple[str, str]]:
    keys = ("seconds_saved", "seconds_past_proposed", "wasted_seconds_estimate")
    rows = []
    for r in report.recommendations:
        for key in keys:
            value = r.evidence.get(key)
            if isinstance(value, int | float):
                rows.append((r.title, f"{value:,.0f} ({key})"))
    return rows


def technical_learnings_md(report: Report) -> str:
    """insights/technical_learnings.md: failure families, error signatures, retry odds, anomalies."""
    parts = [header(report, "Technical learnings"), families_md(report), "\n## Error signatures\n\n"]
    groups = report.failures.groups[:MAX_LISTED]
    parts.append(
        table(
            ["where", "signature", "failures", "flow runs", "share of task failures"],
            (
                (
                    _where(g.workflow, g.task_id),
                    g.signature,
                    g.count,
                    g.flow_runs,
                    pct(g.share_of_task_failures),
                )
                for g in groups
            ),
        )
        if groups
        else "No task run failed in this window.\n"
    )
    parts.append("\n## Retries\n\n")
    profiles = report.failures.retry_profiles
    parts.append(
        table(
            ["where", "classification", "failure rate", "succeeded on retry", "success by attempt"],
            (
                (
                    _where(p.workflow, p.task_id),
                    p.classification,
                    pct(p.failure_rate),
                    p.succeeded_on_retry,
                    ", ".join(f"#{a.attempt}: {pct(a.chance)} of {a.reached}" for a in p.attempts),
                )
                for p in profiles
            ),
        )
        if profiles
        else "No task failed or retried in this window.\n"
    )
    anomalies = [f for f in report.findings if f.kind == "anomaly"]
    parts.append(f"\n## Anomalies (robust z above {report.anomalies.threshold_z:g})\n\n")
    parts.append(
        _findings_table(anomalies) if anomalies else "No run or task run was far outside its history.\n"
    )
    parts.append("\n" + multivariate_md(report))
    return "".join(parts)


def future_opportunities_md(report: Report) -> str:
    """insights/future_opportunities.md: the largest what-if gains and open findings."""
    parts = [header(report, "Future opportunities"), "## Largest what-if gains\n\n"]
    gains = sorted(
        ((b.workflow, t) for b in report.bottlenecks for t in b.tasks if t.reduction_if_halved_seconds > 0),
        key=lambda x: -x[1].reduction_if_halved_seconds,
    )[:10]
    parts.append(
        table(
            ["where", "gain if 50% faster", "gain if instant", "on critical path"],
            (
                (
                    _where(wf, t.task_id),
                    secs(t.reduction_if_halved_seconds),
                    secs(t.reduction_if_zero_seconds),
                    pct(t.critical_share),
                )
                for wf, t in gains
            ),
        )
        if gains
        else "No task shortens the critical path in this window.\n"
    )
    open_findings = [
        f for f in report.findings if f.kind in ("bottleneck", "trend", "spec_breach", "forecast")
    ]
    parts.append("\n## Open findings\n\n")
    parts.append(
        _findings_table(open_findings) if open_findings else "No bottleneck, trend or breach findings.\n"
    )
    return "".join(parts)
