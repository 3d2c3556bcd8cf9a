"""A healthy history is not flagged: no recommendations, trends, breaches, forecast breaches or
failure families, almost no anomalies."""

from __future__ import annotations

import pytest

from analytics import build_report
from tests.analytics.synthetic import Facts, generate_history

# Robust z above 4.5 on log-normal durations: a handful of chance hits in thousands of rows at most.
ANOMALY_BUDGET = 0.002


@pytest.mark.parametrize(("seed", "n_runs", "n_tasks"), [(0, 600, 7), (1, 600, 7), (2, 900, 12), (3, 400, 7)])
def test_clean_history_yields_no_recommendations(seed: int, n_runs: int, n_tasks: int) -> None:
    history = generate_history(n_runs=n_runs, n_tasks=n_tasks, seed=seed, facts=Facts.none())
    report = build_report(runs=history.runs, tasks=history.tasks, context=history.context)

    assert report.recommendations == []
    assert report.combined_diffs == {}
    assert not [c for c in report.spec_checks if c.breached]
    kinds = {f.kind for f in report.findings}
    assert kinds <= {"anomaly", "multivariate_anomaly"}, [f.title for f in report.findings]
    assert report.failures.groups == []
    assert report.failures.retry_profiles == []

    checked = sum(c.checked for c in report.anomalies.counts)
    flagged = len(report.anomalies.runs) + len(report.anomalies.tasks)
    assert flagged <= ANOMALY_BUDGET * checked
    # Nothing is drifting towards a target, and no failure makes a family.
    assert all(f.status == "no_breach" for f in report.forecasts)
    assert report.families.families == []
    # The isolation forest only confirms chance outliers of one feature, as rarely.
    task_runs = sum(c.task_runs for c in report.multivariate.checks)
    assert len(report.multivariate.anomalies) <= ANOMALY_BUDGET * task_runs
    assert all(not w.trend.significant for w in report.performance.workflows)
    assert all(not t.trend.significant for t in report.performance.tasks)
    assert all(b.parallelism is None or b.parallelism.delayed_task_runs == 0 for b in report.bottlenecks)
