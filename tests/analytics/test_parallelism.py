"""Waits behind max_parallel_tasks."""

from __future__ import annotations

import pytest

from analytics.config import AnalysisConfig
from analytics.critical_path import build_matrix
from analytics.frames import prepare_frames
from analytics.parallelism import analyse_parallelism, row_times
from analytics.workflow_doc import read_document
from tests.analytics.factories import frames, run_row, task, task_row, workflow_doc


def _run_with_waves(limit: int) -> tuple[object, object]:
    """Four independent 10 s tasks; the last two start only when the first two end."""
    doc = workflow_doc([task(t) for t in "abcd"], concurrency={"max_parallel_tasks": limit})
    runs = [run_row("r1", start=0, end=21)]
    tasks = [
        task_row("r1", "a", 0.1, 10.0),
        task_row("r1", "b", 0.1, 10.0),
        task_row("r1", "c", 10.2, 20.0),
        task_row("r1", "d", 10.2, 20.0),
    ]
    run_frame, task_frame = frames(runs, tasks)
    prepared = prepare_frames(run_frame, task_frame, window_start=None, window_end=None)
    info = read_document(doc)
    matrix = build_matrix(prepared.tasks, prepared.runs, info, max_cells=100, seed=0)
    assert matrix is not None
    return row_times(prepared.tasks, matrix, matrix.ready()), info


def test_tasks_started_when_a_slot_freed_are_counted() -> None:
    times, info = _run_with_waves(limit=2)
    stats = analyse_parallelism(times, limit=info.max_parallel_tasks, config=AnalysisConfig())
    assert stats is not None
    assert stats.delayed_task_runs == 2
    assert stats.delayed_by_task == {"c": 1, "d": 1}
    assert stats.delayed_wait_mean_seconds == pytest.approx(10.2)
    assert stats.wait_per_affected_run_mean_seconds == pytest.approx(20.4)
    assert stats.peak_demand_max == 4


def test_late_starts_below_the_limit_are_not_blamed_on_it() -> None:
    times, info = _run_with_waves(limit=4)
    stats = analyse_parallelism(times, limit=info.max_parallel_tasks, config=AnalysisConfig())
    assert stats is not None
    assert stats.delayed_task_runs == 0
