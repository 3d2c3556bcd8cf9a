"""Every planted fact of the synthetic history is reported, on the right task, with sensible numbers."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
import yaml

from analytics import Report, build_report
from analytics.report_model import Finding, Recommendation
from analytics.yaml_diff import apply_edits, apply_unified_diff, dump_yaml
from specs.models import Workflow
from tests.analytics.synthetic import (
    BAD_BATCH_RATE,
    BOTTLENECK_TASK,
    BREACH_FAIL_RATE,
    BREACH_SUCCESS_TARGET,
    BREACH_TASK,
    CACHE_TASK,
    CLUSTERED_TASK,
    DETERMINISTIC_TASK,
    ETL,
    FANOUT,
    FANOUT_ITEMS,
    FLAKY_FAIL_RATE,
    FLAKY_TASK,
    INGEST,
    LONG_TAIL_TASK,
    PARALLEL_TASK,
    SLOW_TASK,
    TIGHT_TASK,
    Facts,
    SyntheticHistory,
    generate_history,
)

SLOPE = 2.0
DAYS = 30.0
# Every task a fact is planted on; the others (extract, finalize, list_parts, merge) are clean.
PLANTED_TASKS = {
    (ETL, SLOW_TASK),
    (ETL, BOTTLENECK_TASK),
    (ETL, LONG_TAIL_TASK),
    (ETL, CACHE_TASK),
    (ETL, TIGHT_TASK),
    (INGEST, FLAKY_TASK),
    (INGEST, DETERMINISTIC_TASK),
    (INGEST, CLUSTERED_TASK),
    (FANOUT, PARALLEL_TASK),
    (FANOUT, BREACH_TASK),
}

EXPECTED_RECOMMENDATIONS = {
    f"timeout:{ETL}:{LONG_TAIL_TASK}",
    f"timeout:{ETL}:{TIGHT_TASK}",
    f"cache:{ETL}:{CACHE_TASK}",
    f"retries:{INGEST}:{FLAKY_TASK}",
    f"no_retries:{INGEST}:{DETERMINISTIC_TASK}",
    f"jitter:{INGEST}:{CLUSTERED_TASK}",
    f"parallelism:{FANOUT}:-",
}


@pytest.fixture(scope="module")
def history() -> SyntheticHistory:
    return generate_history(n_runs=800, seed=11, days=DAYS, slowdown_seconds_per_day=SLOPE)


@pytest.fixture(scope="module")
def report(history: SyntheticHistory) -> Report:
    return build_report(runs=history.runs, tasks=history.tasks, context=history.context)


def _rec(report: Report, rec_id: str) -> Recommendation:
    matches = [r for r in report.recommendations if r.id == rec_id]
    assert matches, f"{rec_id} not in {[r.id for r in report.recommendations]}"
    return matches[0]


def _finding(report: Report, finding_id: str) -> Finding:
    matches = [f for f in report.findings if f.id == finding_id]
    assert matches, f"{finding_id} not in {[f.id for f in report.findings]}"
    return matches[0]


def test_exactly_the_planted_recommendations(report: Report) -> None:
    assert {r.id for r in report.recommendations} == EXPECTED_RECOMMENDATIONS


def test_slowing_task_trend_matches_the_planted_slope(report: Report) -> None:
    finding = _finding(report, f"trend:{ETL}:{SLOW_TASK}")
    assert finding.evidence["slope_seconds_per_day"] == pytest.approx(SLOPE, rel=0.3)
    # The runs span the whole history, so the change over the window is the planted slope times it.
    assert finding.evidence["change_over_window_seconds"] == pytest.approx(SLOPE * DAYS, rel=0.1)
    assert finding.evidence["p_value"] < 0.001
    perf = next(t for t in report.performance.tasks if (t.workflow, t.task_id) == (ETL, SLOW_TASK))
    assert perf.trend.direction == "slower"
    steady = [
        t for t in report.performance.tasks if t.workflow == ETL and t.task_id in ("extract", "finalize")
    ]
    assert all(not t.trend.significant for t in steady)


def _flagged(report: Report, kind: str) -> set[tuple[str, str | None]]:
    return {(f.workflow, f.task_id) for f in report.findings if f.kind == kind}


def test_findings_name_only_planted_tasks(report: Report, history: SyntheticHistory) -> None:
    every_task = set(history.tasks[["workflow", "task_id"]].itertuples(index=False, name=None))
    clean = every_task - PLANTED_TASKS
    assert {task for _, task in clean} >= {"extract", "finalize", "list_parts", "merge"}
    kinds = {"trend", "bottleneck", "spec_breach", "failures", "anomaly", "multivariate_anomaly"}
    assert {f.kind for f in report.findings} == kinds
    for kind in kinds:
        on_tasks = {pair for pair in _flagged(report, kind) if pair[1] is not None}
        assert on_tasks <= PLANTED_TASKS, (kind, on_tasks & clean)
    # The whole-workflow trend is transform's slowdown showing through; nothing else trends.
    assert _flagged(report, "trend") == {(ETL, SLOW_TASK), (ETL, None)}
    assert _flagged(report, "spec_breach") == {(FANOUT, None)}
    # Final failures exactly where failures were planted (quality's are its tight timeout).
    assert _flagged(report, "failures") == {
        (ETL, TIGHT_TASK),
        (INGEST, FLAKY_TASK),
        (INGEST, DETERMINISTIC_TASK),
        (INGEST, CLUSTERED_TASK),
        (FANOUT, BREACH_TASK),
    }
    assert (ETL, BOTTLENECK_TASK) in _flagged(report, "bottleneck")
    assert {(ETL, LONG_TAIL_TASK), (ETL, None)} <= _flagged(report, "anomaly")
    whole_workflow = {(f.kind, f.workflow) for f in report.findings if f.task_id is None}
    assert whole_workflow == {("trend", ETL), ("anomaly", ETL), ("spec_breach", FANOUT)}


def test_flaky_task_gets_more_retries(report: Report) -> None:
    rec = _rec(report, f"retries:{INGEST}:{FLAKY_TASK}")
    ev = rec.evidence
    assert ev["retry_success_chance"] == pytest.approx(1 - FLAKY_FAIL_RATE, abs=0.1)
    assert ev["first_attempt_failure_rate"] == pytest.approx(FLAKY_FAIL_RATE, abs=0.06)
    assert ev["proposed_retries"] > ev["current_retries"] == 1
    assert ev["projected_failure_rate"] < ev["failure_rate"]
    assert rec.changes == {f"tasks.{FLAKY_TASK}.retries": ev["proposed_retries"]}


def test_deterministic_failure_loses_its_retries(report: Report) -> None:
    rec = _rec(report, f"no_retries:{INGEST}:{DETERMINISTIC_TASK}")
    assert rec.evidence["succeeded_on_retry"] == 0
    assert rec.evidence["top_signature_share"] == 1.0
    assert rec.evidence["wasted_attempts"] == 2 * rec.evidence["failed_after_retries"]
    assert "+  retries: 0\n" in rec.yaml_diff
    group = next(g for g in report.failures.groups if g.task_id == DETERMINISTIC_TASK)
    assert group.signature == "ValueError: column <str> missing in <path> (row <n>)"
    # Bad batches fail every attempt: the task's failure rate is the planted bad-batch rate
    # (within ~2 binomial standard deviations of ~300 runs).
    rate = rec.evidence["failed_final"] / rec.evidence["task_runs"]
    assert rate == pytest.approx(BAD_BATCH_RATE, abs=0.03)
    finding = _finding(report, f"failures:{INGEST}:{DETERMINISTIC_TASK}")
    assert finding.evidence["failure_rate"] == pytest.approx(rate, abs=1e-4)
    assert finding.evidence["classification"] == "deterministic"


def test_bottleneck_is_on_the_critical_path(report: Report) -> None:
    finding = _finding(report, f"bottleneck:{ETL}:{BOTTLENECK_TASK}")
    assert finding.evidence["critical_share"] == 1.0
    # aggregate takes ~240 s: halving it saves ~120 s, dropping it saves at most its own time.
    assert finding.evidence["reduction_if_halved_seconds"] == pytest.approx(120, rel=0.1)
    section = next(b for b in report.bottlenecks if b.workflow == ETL)
    assert section.tasks[0].task_id == BOTTLENECK_TASK
    off_path = next(t for t in section.tasks if t.task_id == TIGHT_TASK)
    assert off_path.critical_share == 0.0
    assert off_path.reduction_if_zero_seconds == 0.0
    assert off_path.slack_mean_seconds > 200


def test_long_tail_without_timeout_gets_one(report: Report, history: SyntheticHistory) -> None:
    rec = _rec(report, f"timeout:{ETL}:{LONG_TAIL_TASK}")
    ev = rec.evidence
    assert ev["current_timeout_seconds"] is None
    # export's median is ~20 s; the proposal sits above its normal spread, far below the hangs.
    assert 25 <= ev["proposed_timeout_seconds"] <= 60
    assert 0.015 <= ev["share_over_proposed"] <= 0.08
    assert rec.changes == {f"tasks.{LONG_TAIL_TASK}.timeout_seconds": ev["proposed_timeout_seconds"]}
    tail = [a for a in report.anomalies.tasks if a.task_id == LONG_TAIL_TASK]
    assert tail
    assert all(a.direction == "slow" and a.ratio >= 5 for a in tail)
    assert any(
        a.workflow == ETL and a.state == "COMPLETED" and a.direction == "slow" for a in report.anomalies.runs
    )


def test_tight_timeout_is_raised(report: Report) -> None:
    rec = _rec(report, f"timeout:{ETL}:{TIGHT_TASK}")
    assert rec.evidence["current_timeout_seconds"] == 40
    assert rec.evidence["proposed_timeout_seconds"] >= 50
    assert rec.evidence["completed_p99_seconds"] >= 0.8 * 40


def test_success_rate_breach_is_checked(report: Report, history: SyntheticHistory) -> None:
    check = next(c for c in report.spec_checks if (c.workflow, c.metric) == (FANOUT, "success_rate_min"))
    assert check.breached
    assert check.target == BREACH_SUCCESS_TARGET
    assert check.n == int((history.runs["workflow"] == FANOUT).sum())
    # notify is the only task of fanout-report that fails: runs succeed at 1 - its failure rate
    # (within ~1.2 binomial standard deviations of 160 runs).
    planted_success = 1 - BREACH_FAIL_RATE
    assert check.observed == pytest.approx(planted_success, abs=0.03)
    assert check.delta == pytest.approx(planted_success - BREACH_SUCCESS_TARGET, abs=0.03)
    assert check.delta < 0
    assert _finding(report, f"spec_breach:{FANOUT}:-:success_rate_min").severity == "high"
    assert [c for c in report.spec_checks if c.breached] == [check]


def test_clustered_failures_get_jitter(report: Report) -> None:
    rec = _rec(report, f"jitter:{INGEST}:{CLUSTERED_TASK}")
    assert rec.evidence["clusters"] >= 3
    assert rec.evidence["concentration_ratio"] >= 5
    backoff = rec.changes[f"tasks.{CLUSTERED_TASK}.retry_backoff"]
    assert backoff["jitter"] == 0.5
    assert rec.changes[f"tasks.{CLUSTERED_TASK}.retry_delay_seconds"] is None
    assert rec.evidence["retry_window_seconds"] >= rec.evidence["cluster_span_p50_seconds"]


def test_parallelism_limit_is_raised_to_the_demand(report: Report) -> None:
    rec = _rec(report, f"parallelism:{FANOUT}:-")
    assert rec.evidence["max_parallel_tasks"] == 2
    assert rec.evidence["proposed_max_parallel_tasks"] == FANOUT_ITEMS
    # 6 of the 8 items of every run wait for a slot.
    assert rec.evidence["delayed_by_task"]["process"] == pytest.approx(
        0.75 * rec.evidence["runs_affected"] * 8, rel=0.05
    )


def test_cacheable_task_gets_a_cache(report: Report) -> None:
    rec = _rec(report, f"cache:{ETL}:{CACHE_TASK}")
    assert rec.evidence["distinct_inputs"] == 4
    assert rec.evidence["same_output_share"] == 1.0
    assert rec.evidence["seconds_saved"] > 0
    assert rec.changes[f"tasks.{CACHE_TASK}.cache"]["enabled"] is True


def test_every_diff_applies_and_validates(report: Report, history: SyntheticHistory) -> None:
    for rec in report.recommendations:
        before = history.context[rec.workflow].document
        patched = apply_unified_diff(dump_yaml(before), rec.yaml_diff)
        Workflow.model_validate(yaml.safe_load(patched))
    for workflow, diff in report.combined_diffs.items():
        patched = yaml.safe_load(apply_unified_diff(dump_yaml(history.context[workflow].document), diff))
        model = Workflow.model_validate(patched)
        assert model.name == workflow
    assert set(report.combined_diffs) == {ETL, INGEST, FANOUT}


def test_combined_diff_holds_every_change(report: Report, history: SyntheticHistory) -> None:
    before = history.context[INGEST].document
    after = yaml.safe_load(apply_unified_diff(dump_yaml(before), report.combined_diffs[INGEST]))
    tasks = {t["id"]: t for t in after["tasks"]}
    assert tasks[DETERMINISTIC_TASK]["retries"] == 0
    assert tasks[FLAKY_TASK]["retries"] >= 2
    assert "retry_backoff" in tasks[CLUSTERED_TASK]
    assert after == apply_edits(before, []) | {"tasks": after["tasks"]}


def test_report_is_plain_json(report: Report) -> None:
    text = json.dumps(report.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["totals"]["runs"] == 800
    assert {"performance", "bottlenecks", "anomalies", "failures", "spec_checks", "recommendations"} <= set(
        data
    )


SINGLE_FACT_RECOMMENDATIONS = {
    "slowdown": set(),
    "bottleneck": set(),
    "long_tail": {f"timeout:{ETL}:{LONG_TAIL_TASK}"},
    "cacheable": {f"cache:{ETL}:{CACHE_TASK}"},
    "tight_timeout": {f"timeout:{ETL}:{TIGHT_TASK}"},
    "flaky": {f"retries:{INGEST}:{FLAKY_TASK}"},
    "deterministic": {f"no_retries:{INGEST}:{DETERMINISTIC_TASK}"},
    "clustered": {f"jitter:{INGEST}:{CLUSTERED_TASK}"},
    "parallel_wait": {f"parallelism:{FANOUT}:-"},
    "success_breach": set(),
}
SINGLE_FACT_FINDINGS = {
    "slowdown": f"trend:{ETL}:{SLOW_TASK}",
    "bottleneck": f"bottleneck:{ETL}:{BOTTLENECK_TASK}",
    "success_breach": f"spec_breach:{FANOUT}:-:success_rate_min",
}


def test_single_fact_table_covers_every_fact() -> None:
    assert set(SINGLE_FACT_RECOMMENDATIONS) == {f.name for f in fields(Facts)}


@pytest.mark.parametrize("fact", sorted(SINGLE_FACT_RECOMMENDATIONS))
def test_each_fact_alone_yields_only_its_recommendation(fact: str) -> None:
    history = generate_history(n_runs=500, seed=5, facts=Facts.only(fact))
    report = build_report(runs=history.runs, tasks=history.tasks, context=history.context)
    assert {r.id for r in report.recommendations} == SINGLE_FACT_RECOMMENDATIONS[fact]
    if fact in SINGLE_FACT_FINDINGS:
        _finding(report, SINGLE_FACT_FINDINGS[fact])
