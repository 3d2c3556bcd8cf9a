"""Failure groups, retry success chances, bunching in time and classification."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.config import AnalysisConfig
from analytics.failures import analyse_failures, attempt_chances, temporal_clustering
from analytics.frames import prepare_frames
from analytics.workflow_doc import read_document
from tests.analytics.factories import frames, run_row, task, task_row, workflow_doc


def test_attempt_chances_read_attempts_from_the_final_state() -> None:
    # completed on 1, on 1, on 2, on 3; failed after 3.
    attempts = np.array([1, 1, 2, 3, 3])
    completed = np.array([True, True, True, True, False])
    chances = attempt_chances(attempts, completed)
    assert [(c.attempt, c.reached, c.succeeded) for c in chances] == [(1, 5, 2), (2, 3, 1), (3, 2, 1)]
    assert chances[0].chance == pytest.approx(0.4)


def test_random_failures_are_not_bunched_but_bursts_are() -> None:
    rng = np.random.default_rng(1)
    times = np.sort(rng.uniform(0, 2 * 86400, 3000))
    codes = np.arange(times.size)
    random_fail = rng.random(times.size) < 0.05
    config = AnalysisConfig()
    calm = temporal_clustering(times, random_fail, codes, config=config)
    assert calm.concentration_ratio is not None
    assert 0.6 < calm.concentration_ratio < 1.5

    burst_times = np.concatenate(
        [times, np.repeat([10_000.0, 50_000.0, 90_000.0], 8) + np.tile(np.arange(8), 3)]
    )
    burst_fail = np.concatenate([np.zeros(times.size, dtype=bool), np.ones(24, dtype=bool)])
    bursty = temporal_clustering(burst_times, burst_fail, np.arange(burst_times.size), config=config)
    assert bursty.clusters == 3
    assert bursty.clustered_failures == 24
    assert bursty.concentration_ratio is not None
    assert bursty.concentration_ratio > 20
    assert bursty.cluster_span_p50_seconds == pytest.approx(7.0)


def _failing_history(kind: str) -> tuple[object, object]:
    doc = workflow_doc([task("t", retries=2)])
    runs, tasks = [], []
    for i in range(60):
        rid, base = f"r{i}", i * 7200.0
        if kind == "transient" and i % 5 == 0:
            row = task_row(rid, "t", base, base + 30, attempts=2, error=None)
        elif kind == "deterministic" and i % 6 == 0:
            row = task_row(
                rid,
                "t",
                base,
                base + 30,
                state="FAILED",
                attempts=3,
                error=f"ValueError: bad row {i} in /data/file_{i}.csv",
            )
        else:
            row = task_row(rid, "t", base, base + 10)
        state = "FAILED" if row["state"] == "FAILED" else "COMPLETED"
        runs.append(run_row(rid, state=state, start=base, end=base + 31))
        tasks.append(row)
    runs.append(run_row("crashed", state="CRASHED", start=999_999, end=1_000_000))
    run_frame, task_frame = frames(runs, tasks)
    return prepare_frames(run_frame, task_frame, window_start=None, window_end=None), read_document(doc)


def test_deterministic_failures_are_grouped_and_classified() -> None:
    prepared, doc = _failing_history("deterministic")
    section = analyse_failures(prepared.runs, prepared.tasks, {"wf": doc}, config=AnalysisConfig())
    assert len(section.groups) == 1
    group = section.groups[0]
    assert (group.signature, group.count, group.flow_runs) == ("ValueError: bad row <n> in <path>", 10, 10)
    assert group.share_of_task_failures == 1.0
    (profile,) = section.retry_profiles
    assert profile.classification == "deterministic"
    assert (profile.failed_after_retries, profile.succeeded_on_retry, profile.configured_retries) == (
        10,
        0,
        2,
    )
    assert section.failed_runs_without_task_error == {"wf": 1}


def test_success_on_retry_means_transient() -> None:
    prepared, doc = _failing_history("transient")
    section = analyse_failures(prepared.runs, prepared.tasks, {"wf": doc}, config=AnalysisConfig())
    assert section.groups == []
    (profile,) = section.retry_profiles
    assert profile.classification == "transient"
    assert profile.succeeded_on_retry == 12
    assert [a.chance for a in profile.attempts] == [pytest.approx(48 / 60), 1.0]


def test_clean_tasks_have_no_profile() -> None:
    prepared, doc = _failing_history("none")
    section = analyse_failures(prepared.runs, prepared.tasks, {"wf": doc}, config=AnalysisConfig())
    assert section.groups == []
    assert section.retry_profiles == []
