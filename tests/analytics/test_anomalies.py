"""Runs and task runs far outside their own history."""

from __future__ import annotations

import numpy as np

from analytics.anomalies import detect_anomalies
from analytics.config import AnalysisConfig
from analytics.frames import prepare_frames
from tests.analytics.factories import frames, run_row, task_row


def _history(extra: list[tuple[str, float, int]]) -> tuple[object, object]:
    """40 ordinary runs of ~100 s plus ``extra`` (state, duration, attempts) runs."""
    rng = np.random.default_rng(0)
    runs, tasks = [], []
    plan = [("COMPLETED", float(100 * rng.lognormal(0, 0.05)), 1) for _ in range(40)] + extra
    for i, (state, duration, attempts) in enumerate(plan):
        rid, base = f"r{i}", i * 3600.0
        runs.append(run_row(rid, state=state, start=base, end=base + duration))
        tasks.append(task_row(rid, "work", base, base + duration, state=state, attempts=attempts))
    run_frame, task_frame = frames(runs, tasks)
    prepared = prepare_frames(run_frame, task_frame, window_start=None, window_end=None)
    return prepared, prepared.runs["flow_run_id"].to_numpy(dtype=object)


def test_slow_completed_and_fast_completed_runs_are_flagged() -> None:
    prepared, ids = _history([("COMPLETED", 400.0, 1), ("COMPLETED", 20.0, 1)])
    section = detect_anomalies(prepared.runs, prepared.tasks, ids, config=AnalysisConfig())
    flagged = {(a.flow_run_id, a.direction) for a in section.runs}
    assert flagged == {("r40", "slow"), ("r41", "fast")}
    slow = next(a for a in section.runs if a.direction == "slow")
    assert slow.ratio == slow.duration_seconds / slow.baseline_median_seconds
    assert slow.ratio > 3.5
    run_count = next(c for c in section.counts if c.task_id is None)
    assert (run_count.checked, run_count.flagged, run_count.slow_completed) == (42, 2, 1)
    assert {(a.task_id, a.flow_run_id) for a in section.tasks} == {("work", "r40"), ("work", "r41")}


def test_fast_failures_and_retried_runs_are_left_alone() -> None:
    prepared, ids = _history([("FAILED", 5.0, 1), ("COMPLETED", 400.0, 3)])
    section = detect_anomalies(prepared.runs, prepared.tasks, ids, config=AnalysisConfig())
    assert section.runs == []
    assert section.tasks == []


def test_thin_history_is_not_scored() -> None:
    prepared, ids = _history([("COMPLETED", 400.0, 1)])
    section = detect_anomalies(
        prepared.runs, prepared.tasks, ids, config=AnalysisConfig(anomaly_min_history=50)
    )
    assert section.runs == []
    assert all(c.checked == 0 for c in section.counts) or section.counts == []
