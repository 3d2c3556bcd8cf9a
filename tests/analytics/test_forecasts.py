"""SLO forecasts on planted histories: a drift reaches its target when the plant says it will."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics import Report, WorkflowContext, build_report, render_logs_tree
from tests.analytics.factories import T0, frames, run_row, task, workflow_doc

NAME = "nightly-ingest"
TARGET = 600.0
SIGMA = 0.05
P95_FACTOR = math.exp(1.6449 * SIGMA)  # p95 of a log-normal over its median
FORECAST_KEYS = ["workflow", "metric", "target", "current", "breach_expected_at", "low", "high"]


def _context(**metrics: float) -> dict[str, WorkflowContext]:
    spec = {"kind": "Specification", "name": NAME, "version": "1.0.0", "success_metrics": metrics}
    return {NAME: WorkflowContext(document=workflow_doc([task("only")], name=NAME), specification=spec)}


def _history(
    median: Callable[[float], float],
    *,
    days: float = 20.0,
    every: float = 1800.0,
    fails: Callable[[float], float] = lambda day: 0.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs every ``every`` seconds; durations log-normal around ``median(day)``; a share
    ``fails(day)`` of the runs fails, spread evenly."""
    rng = np.random.default_rng(seed)
    runs: list[dict[str, Any]] = []
    failed_so_far = 0.0
    for i in range(int(days * 86_400 / every)):
        t = i * every
        day = t / 86_400
        failed_so_far += fails(day)
        state = "FAILED" if failed_so_far >= 1 else "COMPLETED"
        failed_so_far -= 1 if state == "FAILED" else 0
        runs.append(
            run_row(
                f"r{i}", workflow=NAME, state=state, start=t, end=t + median(day) * rng.lognormal(0, SIGMA)
            )
        )
    return frames(runs, [])


def _report(history: tuple[pd.DataFrame, pd.DataFrame], **metrics: float) -> Report:
    runs, tasks = history
    return build_report(runs=runs, tasks=tasks, context=_context(**metrics))


def _as_of(report: Report) -> pd.Timestamp:
    return min(report.window_end, report.generated_at)


def test_a_linear_drift_is_forecast_to_breach_when_planted() -> None:
    slope = 10.0  # seconds of median per day
    # Every ten minutes: 144 runs a day make a steady daily p95.
    report = _report(_history(lambda day: 300 + slope * day, every=600), duration_p95_seconds=TARGET)
    (forecast,) = report.forecasts
    assert forecast.status == "breach_expected"
    assert forecast.bucket_seconds == 86_400
    planted_day = (TARGET / P95_FACTOR - 300) / slope
    planted = T0 + pd.Timedelta(days=planted_day)
    assert forecast.breach_expected_at is not None
    ahead = (planted - _as_of(report)).total_seconds()
    error = (forecast.breach_expected_at - planted).total_seconds()
    assert abs(error) <= 0.2 * ahead
    assert forecast.slope_per_day == pytest.approx(slope * P95_FACTOR, rel=0.2)
    assert forecast.low is not None
    assert forecast.high is not None
    assert forecast.low <= forecast.breach_expected_at <= forecast.high
    (finding,) = [f for f in report.findings if f.kind == "forecast"]
    assert finding.title.startswith(f"At this rate {NAME} duration_p95_seconds passes 600 in ~")


def test_a_flat_history_forecasts_no_breach() -> None:
    report = _report(_history(lambda day: 300.0), duration_p95_seconds=TARGET)
    (forecast,) = report.forecasts
    assert forecast.status == "no_breach"
    assert (forecast.breach_expected_at, forecast.low, forecast.high) == (None, None, None)
    assert forecast.current == pytest.approx(300 * P95_FACTOR, rel=0.05)
    assert not [f for f in report.findings if f.kind == "forecast"]


def test_a_drift_beyond_the_horizon_is_no_breach_yet() -> None:
    # 1 s a day from ~326 s: 600 s is months away, past the 14-day horizon.
    (forecast,) = _report(_history(lambda day: 300 + day), duration_p95_seconds=TARGET).forecasts
    assert forecast.status == "no_breach"
    assert forecast.breach_expected_at is None
    assert forecast.slope_per_day is not None
    assert forecast.slope_per_day > 0


def test_a_metric_already_past_its_target_is_breached() -> None:
    report = _report(_history(lambda day: 700.0), duration_p95_seconds=TARGET)
    (forecast,) = report.forecasts
    assert forecast.status == "breached"
    assert forecast.breach_expected_at == _as_of(report)


def test_a_falling_success_rate_is_forecast_and_a_rising_one_is_not() -> None:
    falling = _history(lambda day: 60.0, days=10, fails=lambda day: 0.002 + 0.004 * day)
    (forecast,) = _report(falling, success_rate_min=0.95).forecasts
    assert forecast.status == "breach_expected"
    planted = T0 + pd.Timedelta(days=(1 - 0.95 - 0.002) / 0.004)
    assert forecast.breach_expected_at is not None
    ahead = (planted - forecast.breach_expected_at).total_seconds()
    assert abs(ahead) <= 0.3 * (planted - T0 - pd.Timedelta(days=10)).total_seconds()

    rising = _history(lambda day: 60.0, days=10, fails=lambda day: 0.045 - 0.004 * day)
    (forecast,) = _report(rising, success_rate_min=0.95).forecasts
    assert forecast.status == "no_breach"


def test_a_window_of_hours_is_measured_per_hour() -> None:
    history = _history(lambda day: 300 + 240 * day, days=0.5, every=120)
    (forecast,) = _report(history, duration_p95_seconds=TARGET).forecasts
    assert forecast.bucket_seconds == 3600
    assert forecast.status == "breach_expected"


def test_too_little_history_is_said_so() -> None:
    (forecast,) = _report(
        _history(lambda day: 300.0, days=0.01, every=300), duration_p95_seconds=TARGET
    ).forecasts
    assert forecast.status == "insufficient_data"
    assert forecast.current is None


def test_forecasts_file_follows_the_contract() -> None:
    report = _report(
        _history(lambda day: 300 + 10 * day), duration_p95_seconds=TARGET, max_queue_wait_seconds=60
    )
    data = json.loads(render_logs_tree(report)["performance/forecasts.json"])
    assert [list(f)[: len(FORECAST_KEYS)] for f in data["forecasts"]] == [FORECAST_KEYS, FORECAST_KEYS]
    duration = next(f for f in data["forecasts"] if f["metric"] == "duration_p95_seconds")
    assert duration["breach_expected_at"].startswith("2025-")
    waits = next(f for f in data["forecasts"] if f["metric"] == "max_queue_wait_seconds")
    assert waits["breach_expected_at"] is None
