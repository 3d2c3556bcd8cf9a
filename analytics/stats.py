"""Small statistics used across the analysis: percentiles, robust z-scores, trends, rounding."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analytics.config import AnalysisConfig

FloatArray = npt.NDArray[np.float64]
SECONDS_PER_DAY = 86_400.0
# 0.6745 is the 75th percentile of the standard normal: it makes MAD comparable to a std. deviation.
_MAD_SCALE = 0.6745
# Smallest MAD used on log-durations (a 2 % spread): a perfectly steady task is not "anomalous"
# for wobbling by a few percent.
MAD_FLOOR = 0.02


@dataclass(frozen=True)
class Summary:
    """Count, mean and tail percentiles of a sample (None when the sample is empty)."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


def clean(values: npt.ArrayLike) -> FloatArray:
    """Finite values of an array as float64."""
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def percentile(values: npt.ArrayLike, q: float) -> float | None:
    """The ``q``-th percentile (0..100, linear interpolation) of the finite values, None if none."""
    arr = clean(values)
    if arr.size == 0:
        return None
    return float(np.percentile(arr, q))


def summarize(values: npt.ArrayLike) -> Summary:
    """Count, mean, p50, p95, p99 and max of the finite values."""
    arr = clean(values)
    if arr.size == 0:
        return Summary(0, None, None, None, None, None)
    p50, p95, p99 = (float(x) for x in np.percentile(arr, [50, 95, 99]))
    return Summary(int(arr.size), float(arr.mean()), p50, p95, p99, float(arr.max()))


def robust_z(values: FloatArray, median: FloatArray, mad: FloatArray) -> FloatArray:
    """Robust z-score (Iglewicz & Hoaglin): 0.6745 * (x - median) / max(MAD, floor)."""
    return _MAD_SCALE * (values - median) / np.maximum(mad, MAD_FLOOR)


@dataclass(frozen=True)
class Trend:
    """Theil-Sen slope of a duration over time, tested with Mann-Kendall (Kendall's tau vs time)."""

    n: int
    slope_seconds_per_day: float | None
    slope_low: float | None
    slope_high: float | None
    slope_seconds_per_run: float | None
    relative_change_per_day: float | None
    change_over_window_seconds: float | None
    p_value: float | None
    significant: bool
    direction: str  # "slower", "faster", "not significant", "insufficient data"
    thinned_to: int | None
    span_seconds: float | None = None  # time from the first point to the last


SECONDS_PER_HOUR = 3_600.0
# A trend is stated per day when its points span at least two days, per hour when they span at
# least two hours, and per run otherwise: "+601 s per day" from one minute of runs says nothing.
_PER_DAY_FROM, _PER_HOUR_FROM = 2 * SECONDS_PER_DAY, 2 * SECONDS_PER_HOUR


def trend_rate(t: Trend) -> tuple[float, float | None, str]:
    """The trend on the scale of its data: (seconds per unit, relative change per unit, unit),
    the unit being ``"day"``, ``"hour"`` or ``"run"``."""
    per_day = t.slope_seconds_per_day or 0.0
    relative = t.relative_change_per_day
    span = t.span_seconds or 0.0
    if span >= _PER_DAY_FROM:
        rate, unit = per_day, "day"
    elif span >= _PER_HOUR_FROM:
        rate, unit = per_day * SECONDS_PER_HOUR / SECONDS_PER_DAY, "hour"
    else:
        rate, unit = t.slope_seconds_per_run or 0.0, "run"
    if relative is None or per_day == 0:
        return rate, relative, unit
    return rate, relative * rate / per_day, unit


def _insufficient(n: int) -> Trend:
    return Trend(n, None, None, None, None, None, None, None, False, "insufficient data", None)


def _thin(order: npt.NDArray[np.int64], limit: int) -> npt.NDArray[np.int64]:
    if order.size <= limit:
        return order
    return order[np.linspace(0, order.size - 1, limit).round().astype(np.int64)]


def trend(times: FloatArray, values: FloatArray, *, config: AnalysisConfig) -> Trend:
    """Is ``values`` (seconds) drifting over ``times`` (epoch seconds)?

    The slope is Theil-Sen (median of pairwise slopes, robust to the odd slow run) in seconds per
    day, with its 95 % interval; significance is Mann-Kendall's test (Kendall's tau of value against
    time) at ``config.trend_alpha``, and the change over the window must also reach
    ``config.trend_min_relative_change`` of the median to count.
    """
    from scipy import stats as sps  # imported on use: it is slow to import and only trends need it

    ok = np.isfinite(times) & np.isfinite(values)
    t, y = times[ok], values[ok]
    n = int(t.size)
    if n < config.trend_min_points or np.ptp(t) <= 0:
        return _insufficient(n)
    order = np.argsort(t, kind="stable")
    median = float(np.median(y))
    span_days = float(np.ptp(t)) / SECONDS_PER_DAY
    per_run_days = span_days / max(n - 1, 1)
    if np.ptp(y) <= 0:
        return Trend(n, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, False, "not significant", None, float(np.ptp(t)))

    test_idx = _thin(order, config.trend_max_points_test)
    p_value = float(sps.kendalltau(t[test_idx], y[test_idx]).pvalue)
    slope_idx = _thin(order, config.trend_max_points_slope)
    days = (t[slope_idx] - t[slope_idx].min()) / SECONDS_PER_DAY
    fit = sps.theilslopes(y[slope_idx], days, alpha=0.95)
    slope, low, high = float(fit[0]), float(fit[2]), float(fit[3])
    change = slope * span_days
    relative = slope / median if median > 0 else None
    big_enough = median > 0 and abs(change) >= config.trend_min_relative_change * median
    significant = bool(math.isfinite(p_value) and p_value < config.trend_alpha and big_enough)
    direction = ("slower" if slope > 0 else "faster") if significant else "not significant"
    thinned = int(slope_idx.size) if slope_idx.size < n else None
    return Trend(
        n=n,
        slope_seconds_per_day=slope,
        slope_low=low,
        slope_high=high,
        slope_seconds_per_run=slope * per_run_days,
        relative_change_per_day=relative,
        change_over_window_seconds=change,
        p_value=p_value if math.isfinite(p_value) else None,
        significant=significant,
        direction=direction,
        thinned_to=thinned,
        span_seconds=float(np.ptp(t)),
    )


def nice_ceil(seconds: float) -> float:
    """Round a duration up to a value people write: 1 s steps to 10 s, 5 s to 1 min, 30 s to 10 min,
    1 min to 1 h, 5 min beyond."""
    if seconds <= 0:
        return 1.0
    for limit, step in ((10, 1), (60, 5), (600, 30), (3600, 60)):
        if seconds <= limit:
            return float(math.ceil(seconds / step) * step)
    return float(math.ceil(seconds / 300) * 300)


def plain(value: float) -> int | float:
    """A whole float as an int, so documents read ``timeout_seconds: 45`` rather than ``45.0``."""
    return int(value) if float(value).is_integer() else float(value)
