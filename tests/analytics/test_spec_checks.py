"""Specification success metrics checked against a hand-made history with known numbers."""

from __future__ import annotations

import pytest

from analytics import Report, WorkflowContext, build_report
from tests.analytics.factories import T0, frames, run_row, task, task_row, workflow_doc

P95_TARGET = 120.0
WAIT_TARGET = 60.0


def _history() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """20 completed runs: 19 of 100 s and one of 1000 s; 19 waited 2 s and one 90 s. One failed
    run of 5000 s that did not wait."""
    runs, tasks = [], []
    for i in range(20):
        start = i * 3600.0
        duration = 1000.0 if i == 7 else 100.0
        wait = 90.0 if i == 11 else 2.0
        runs.append(run_row(f"r{i}", start=start, end=start + duration, expected=start - wait))
        tasks.append(task_row(f"r{i}", "only", start + 1, start + duration - 1))
    start = 20 * 3600.0
    runs.append(run_row("bad", state="FAILED", start=start, end=start + 5000.0))
    tasks.append(task_row("bad", "only", start + 1, start + 4999.0, state="FAILED", error="boom"))
    return runs, tasks


def _report_against(success_metrics: dict[str, float]) -> Report:
    """The report of :func:`_history` for workflow ``wf`` whose specification sets ``success_metrics``."""
    runs, tasks = frames(*_history())
    spec = {"kind": "Specification", "name": "wf", "version": "1.0.0", "success_metrics": success_metrics}
    context = {"wf": WorkflowContext(workflow_doc([task("only")]), spec)}
    return build_report(runs=runs, tasks=tasks, context=context, now=T0)


def test_duration_and_queue_wait_breaches() -> None:
    report = _report_against({"duration_p95_seconds": P95_TARGET, "max_queue_wait_seconds": WAIT_TARGET})

    checks = {c.metric: c for c in report.spec_checks}
    assert set(checks) == {"duration_p95_seconds", "max_queue_wait_seconds"}
    # p95 of the completed runs only (linear interpolation): sorted values 19 x 100 then 1000,
    # position 0.95 * 19 = 18.05, so 100 + 0.05 * 900 = 145. The failed 5000 s run is left out.
    duration = checks["duration_p95_seconds"]
    assert duration.breached
    assert duration.observed == pytest.approx(145.0)
    assert duration.delta == pytest.approx(145.0 - P95_TARGET)
    assert duration.delta_relative == pytest.approx((145.0 - P95_TARGET) / P95_TARGET)
    assert duration.n == 20
    # Queue waits count every run, the failed one too; only one waited longer than the target.
    wait = checks["max_queue_wait_seconds"]
    assert wait.breached
    assert wait.observed == pytest.approx(90.0)
    assert wait.delta == pytest.approx(90.0 - WAIT_TARGET)
    assert wait.n == 21
    assert "1 run(s) waited longer than the target" in wait.basis
    breaches = {f.id: f for f in report.findings if f.kind == "spec_breach"}
    assert set(breaches) == {
        "spec_breach:wf:-:duration_p95_seconds",
        "spec_breach:wf:-:max_queue_wait_seconds",
    }
    assert breaches["spec_breach:wf:-:max_queue_wait_seconds"].evidence["delta"] == pytest.approx(30.0)


def test_metrics_within_target_are_not_breached() -> None:
    report = _report_against({"duration_p95_seconds": 150.0, "max_queue_wait_seconds": 90.0})

    checks = {c.metric: c for c in report.spec_checks}
    assert not checks["duration_p95_seconds"].breached
    assert checks["duration_p95_seconds"].delta == pytest.approx(-5.0)
    # Equal to the target is not over it.
    assert not checks["max_queue_wait_seconds"].breached
    assert checks["max_queue_wait_seconds"].delta == pytest.approx(0.0)
    assert not [f for f in report.findings if f.kind == "spec_breach"]
