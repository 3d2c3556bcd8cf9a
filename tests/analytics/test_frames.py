"""The input contract: validation, coercion, windowing."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.frames import FrameError, prepare_frames, validate_frames
from tests.analytics.factories import T0, frames, run_row, task_row


def _history() -> tuple[pd.DataFrame, pd.DataFrame]:
    return frames(
        [run_row("r1", start=0, end=10), run_row("r2", start=100, end=130, expected=90)],
        [task_row("r1", "a", 0, 10), task_row("r2", "a", 100, 130), task_row("ghost", "a", 0, 1)],
    )


def test_validate_frames_names_every_missing_column() -> None:
    runs, tasks = _history()
    with pytest.raises(FrameError, match=r"tasks frame is missing column\(s\) attempts, output_hash"):
        validate_frames(runs, tasks.drop(columns=["attempts", "output_hash"]))


def test_validate_frames_rejects_other_types() -> None:
    runs, _ = _history()
    with pytest.raises(FrameError, match="tasks: expected a pandas DataFrame, got list"):
        validate_frames(runs, [])  # type: ignore[arg-type]


def test_unreadable_numbers_name_the_column() -> None:
    runs, tasks = _history()
    runs["duration_seconds"] = ["ten", "20"]
    with pytest.raises(FrameError, match=r"runs\.duration_seconds: expected numbers"):
        prepare_frames(runs, tasks, window_start=None, window_end=None)


def test_naive_datetimes_are_read_as_utc() -> None:
    runs, tasks = _history()
    naive = runs.copy()
    for column in ("expected_start_time", "start_time", "end_time"):
        naive[column] = naive[column].dt.tz_localize(None)
    aware_p = prepare_frames(runs, tasks, window_start=None, window_end=None)
    naive_p = prepare_frames(naive, tasks, window_start=None, window_end=None)
    assert naive_p.runs["t_start"].tolist() == aware_p.runs["t_start"].tolist()


def test_tasks_of_unknown_runs_are_dropped_and_codes_shared() -> None:
    runs, tasks = _history()
    prepared = prepare_frames(runs, tasks, window_start=None, window_end=None)
    assert len(prepared.tasks) == 2
    ids = dict(zip(prepared.runs["run_code"], prepared.runs["flow_run_id"], strict=True))
    assert sorted(ids[c] for c in prepared.tasks["run_code"]) == ["r1", "r2"]


def test_window_keeps_runs_by_expected_start_and_their_tasks() -> None:
    runs, tasks = _history()
    start = pd.Timestamp(T0) + pd.Timedelta(seconds=50)
    prepared = prepare_frames(runs, tasks, window_start=start, window_end=None)
    assert prepared.runs["flow_run_id"].tolist() == ["r2"]
    assert len(prepared.tasks) == 1
    assert prepared.window_start == start


def test_missing_durations_come_from_timestamps() -> None:
    runs, tasks = _history()
    runs["duration_seconds"] = None
    runs["queue_wait_seconds"] = None
    prepared = prepare_frames(runs, tasks, window_start=None, window_end=None)
    assert prepared.runs["duration"].tolist() == [10.0, 30.0]
    assert prepared.runs["queue_wait"].tolist() == [0.0, 10.0]


def test_state_names_mark_skipped_and_cached() -> None:
    runs, _ = _history()
    _, tasks = frames(
        [],
        [task_row("r1", "a", 0, 1, state_name="Cached"), task_row("r2", "a", 100, 100, state_name="Skipped")],
    )
    prepared = prepare_frames(runs, tasks, window_start=None, window_end=None)
    assert prepared.tasks["cached"].tolist() == [True, False]
    assert prepared.tasks["skipped"].tolist() == [False, True]


def test_duplicate_runs_are_noted() -> None:
    runs, tasks = _history()
    prepared = prepare_frames(pd.concat([runs, runs.iloc[:1]]), tasks, window_start=None, window_end=None)
    assert len(prepared.runs) == 2
    assert prepared.notes == ["1 duplicate flow run row(s) were left out (first kept)."]
