"""Finding texts state their numbers on the scale of the data."""

from __future__ import annotations

from analytics import build_report
from tests.analytics.factories import frames, run_row, task_row


def test_a_one_minute_window_states_its_trend_per_run_not_per_day() -> None:
    # 15 runs within one minute, each 0.1 s slower than the one before.
    runs, tasks = [], []
    for i in range(15):
        start, duration = 4.0 * i, 1.0 + 0.1 * i
        runs.append(run_row(f"r{i}", start=start, end=start + duration + 0.2))
        tasks.append(task_row(f"r{i}", "slow", start + 0.1, start + 0.1 + duration))
    report = build_report(runs=frames(runs, tasks)[0], tasks=frames(runs, tasks)[1], context={})

    (trend,) = [f for f in report.findings if f.kind == "trend" and f.task_id == "slow"]
    assert "+0.1 s per run" in trend.title
    assert "per day" not in trend.title
    assert trend.evidence["slope_unit"] == "run"
    assert trend.evidence["slope_seconds"] == 0.1


def test_a_month_of_runs_states_its_trend_per_day() -> None:
    runs, tasks = [], []
    for i in range(30):
        start, duration = 86_400.0 * i, 10.0 + 2.0 * i
        runs.append(run_row(f"r{i}", start=start, end=start + duration + 1))
        tasks.append(task_row(f"r{i}", "slow", start, start + duration))
    report = build_report(runs=frames(runs, tasks)[0], tasks=frames(runs, tasks)[1], context={})
    (trend,) = [f for f in report.findings if f.kind == "trend" and f.task_id == "slow"]
    assert "+2 s per day" in trend.title
