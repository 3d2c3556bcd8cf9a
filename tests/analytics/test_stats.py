"""Percentiles, robust z-scores, trends and rounding."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.config import AnalysisConfig
from analytics.stats import SECONDS_PER_DAY, nice_ceil, percentile, plain, robust_z, summarize, trend


def test_percentile_matches_numpy_and_ignores_nan() -> None:
    values = np.array([3.0, 1.0, np.nan, 10.0, 7.0, np.inf])
    assert percentile(values, 50) == pytest.approx(np.percentile([1, 3, 7, 10], 50))
    assert percentile(values, 95) == pytest.approx(np.percentile([1, 3, 7, 10], 95))
    assert percentile([np.nan], 50) is None


def test_summarize_reports_tail_and_count() -> None:
    values = np.arange(1, 101, dtype=float)
    s = summarize(values)
    assert (s.count, s.mean, s.max) == (100, 50.5, 100.0)
    assert s.p50 == pytest.approx(50.5)
    assert s.p95 == pytest.approx(95.05)
    assert s.p99 == pytest.approx(99.01)
    assert summarize([]).p95 is None


def test_robust_z_uses_median_and_mad_with_a_floor() -> None:
    z = robust_z(np.array([2.0, 0.0]), np.array([1.0, 1.0]), np.array([0.5, 0.0]))
    assert z[0] == pytest.approx(0.6745 * 1 / 0.5)
    assert z[1] == pytest.approx(0.6745 * -1 / 0.02)


def _series(slope_per_day: float, seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 30 * SECONDS_PER_DAY, n))
    y = 60 * rng.lognormal(0, 0.15, n) + slope_per_day * t / SECONDS_PER_DAY
    return t, y


def test_trend_recovers_a_planted_slope() -> None:
    t, y = _series(3.0, seed=1)
    result = trend(t, y, config=AnalysisConfig())
    assert result.significant
    assert result.direction == "slower"
    assert result.slope_seconds_per_day == pytest.approx(3.0, rel=0.15)
    assert result.slope_low is not None
    assert result.slope_high is not None
    assert result.slope_low < result.slope_seconds_per_day < result.slope_high
    assert result.p_value is not None
    assert result.p_value < 1e-6


@pytest.mark.parametrize("seed", range(5))
def test_trend_of_noise_is_not_significant(seed: int) -> None:
    t, y = _series(0.0, seed=seed)
    result = trend(t, y, config=AnalysisConfig())
    assert not result.significant
    assert result.direction == "not significant"


def test_trend_needs_enough_points_and_spread() -> None:
    config = AnalysisConfig()
    assert trend(np.arange(5.0), np.arange(5.0), config=config).direction == "insufficient data"
    flat = trend(np.arange(50.0) * 3600, np.full(50, 7.0), config=config)
    assert (flat.slope_seconds_per_day, flat.significant) == (0.0, False)


def test_trend_thins_long_series() -> None:
    t, y = _series(1.0, seed=3, n=5000)
    result = trend(t, y, config=AnalysisConfig(trend_max_points_slope=500))
    assert result.thinned_to == 500
    assert result.slope_seconds_per_day == pytest.approx(1.0, rel=0.25)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.2, 1.0), (7.3, 8.0), (42.8, 45.0), (61, 90.0), (601, 660.0), (3601, 3900.0)],
)
def test_nice_ceil_rounds_up_to_readable_values(seconds: float, expected: float) -> None:
    assert nice_ceil(seconds) == expected


def test_plain_turns_whole_floats_into_ints() -> None:
    assert plain(45.0) == 45
    assert isinstance(plain(45.0), int)
    assert plain(2.5) == 2.5
