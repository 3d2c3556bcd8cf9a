"""Multivariate anomalies on planted histories: the features that make a run stand out are named."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics import Report, WorkflowContext, build_report, render_logs_tree
from analytics.alerts import ANOMALY
from analytics.learning_model import LearnedModels
from analytics.multivariate import UNAVAILABLE_FEATURES
from tests.analytics.factories import T0, frames, run_row, task, task_row, workflow_doc

CONTEXT = {
    "etl": WorkflowContext(document=workflow_doc([task("extract"), task("load", "extract")], name="etl"))
}
RUNS = 300
PLANTED = (97, 180, 251)  # runs where load waited 10x as long and used 10x the memory
ANOMALY_KEYS = ["workflow", "task", "flow_run_id", "score", "features"]


def _history(
    seed: int, *, runs: int = RUNS, planted: tuple[int, ...] = PLANTED, first: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``etl`` every ten minutes: extract (~20 s), then load (~30 s) after a ~5 s wait for a slot."""
    rng = np.random.default_rng(seed)
    run_rows, task_rows = [], []
    for i in range(first, first + runs):
        rid = f"00000000-0000-4000-8000-{i:012d}"
        t0 = 600.0 * i
        extract_end = t0 + 20 * rng.lognormal(0, 0.1)
        wait = 5 * rng.lognormal(0, 0.2) * (10 if i in planted else 1)
        memory = 200e6 * rng.lognormal(0, 0.1) * (10 if i in planted else 1)
        load_start = extract_end + wait
        load_end = load_start + 30 * rng.lognormal(0, 0.1)
        run_rows.append(run_row(rid, workflow="etl", start=t0, end=load_end + 1))
        cpu = 10 * rng.lognormal(0, 0.1)
        task_rows.append(task_row(rid, "extract", t0 + 0.1, extract_end, workflow="etl", cpu=cpu, memory=1e8))
        task_rows.append(task_row(rid, "load", load_start, load_end, workflow="etl", cpu=cpu, memory=memory))
    return frames(run_rows, task_rows)


def _report(
    history: tuple[pd.DataFrame, pd.DataFrame], models: LearnedModels | None = None, **kw: Any
) -> Report:
    runs, tasks = history
    return build_report(runs=runs, tasks=tasks, context=CONTEXT, models=models, **kw)


@pytest.fixture(scope="module")
def report() -> Report:
    return _report(_history(1))


def test_memory_and_queue_wait_outliers_are_flagged_with_those_features(report: Report) -> None:
    found = report.multivariate.anomalies
    planted_ids = {f"00000000-0000-4000-8000-{i:012d}" for i in PLANTED}
    assert {a.flow_run_id for a in found} == planted_ids
    for anomaly in found:
        assert anomaly.task == "load"
        assert {f.name for f in anomaly.features} == {"peak_memory_bytes", "queue_wait_seconds"}
        for feature in anomaly.features:
            assert 5 < (feature.ratio or 0) < 20  # 10x, give or take the noise
        assert anomaly.score >= report.multivariate.min_score
    (finding,) = [f for f in report.findings if f.kind == "multivariate_anomaly"]
    assert (finding.workflow, finding.task_id, finding.evidence["flagged"]) == ("etl", "load", 3)


def test_the_univariate_view_sees_nothing(report: Report) -> None:
    # Durations are ordinary: only the multivariate view catches these runs.
    assert not [a for a in report.anomalies.tasks if a.task_id == "load"]


def test_anomalies_file_follows_the_contract(report: Report) -> None:
    data = json.loads(render_logs_tree(report)["performance/anomalies.json"])
    first = data["anomalies"][0]
    assert list(first)[: len(ANOMALY_KEYS)] == ANOMALY_KEYS
    assert {tuple(f)[:3] for f in first["features"]} == {("name", "value", "baseline")}
    memory = next(f for f in first["features"] if f["name"] == "peak_memory_bytes")
    assert memory["value"] > 5 * memory["baseline"]
    assert data["unavailable_features"] == list(UNAVAILABLE_FEATURES)
    load = next(t for t in data["tasks"] if t["task"] == "load")
    assert load["features"] == [
        "duration_seconds",
        "queue_wait_seconds",
        "cpu_seconds",
        "peak_memory_bytes",
        "attempts",
    ]


def test_an_ordinary_history_has_no_multivariate_anomaly() -> None:
    clean = _report(_history(2, planted=()))
    assert clean.multivariate.anomalies == []
    assert [c.task_runs for c in clean.multivariate.checks] == [RUNS, RUNS]


def test_the_model_is_a_bounded_sample_updated_by_new_runs_only(report: Report) -> None:
    model = report.models.tasks["etl/load"]
    assert len(model.sample) == len(model.keys) == 256
    # A later window with ten more runs, one of them planted: the sample changes by few rows.
    later = _report(_history(3, runs=10, planted=(RUNS + 4,), first=RUNS), report.models, now=T0)
    updated = later.models.tasks["etl/load"]
    assert len(updated.sample) == 256
    assert len(set(updated.keys) - set(model.keys)) <= 10
    assert updated.seen_until is not None
    assert updated.seen_until > (model.seen_until or 0)
    (anomaly,) = later.multivariate.anomalies
    assert anomaly.new
    assert anomaly.flow_run_id.endswith(f"{RUNS + 4:012d}")
    assert anomaly.model.revision == 2
    # Scored again in a window that overlaps the first, old runs are not new any more.
    both = _report(_history(1), later.models)
    assert both.multivariate.anomalies
    assert not any(a.new for a in both.multivariate.anomalies)


def test_a_new_anomaly_is_an_alert_when_it_is_recent(report: Report) -> None:
    later_runs = _history(3, runs=10, planted=(RUNS + 4,), first=RUNS)
    end = T0 + pd.Timedelta(seconds=600 * (RUNS + 10))
    alerts = _report(later_runs, report.models, now=end).alerts
    (alert,) = [a for a in alerts if a.event == ANOMALY]
    assert alert.workflow == "etl"
    assert alert.payload["task"] == "load"
    assert {f["name"] for f in alert.payload["features"]} == {"peak_memory_bytes", "queue_wait_seconds"}
    # The same runs, judged long after: nothing to alert about any more.
    stale = _report(later_runs, report.models, now=end + pd.Timedelta(days=3)).alerts
    assert not [a for a in stale if a.event == ANOMALY]
