"""SLO forecasts: when will a success metric be breached if its trend continues?

For every metric a specification's ``success_metrics`` sets (``duration_p95_seconds``,
``success_rate_min``, ``max_queue_wait_seconds``), the window's runs are cut into periods -- days
when the data spans at least ``forecast_min_points`` of them, else hours, else minutes -- and
the metric is measured per period (p95 of completed run durations, completed share of finished
runs, longest queue wait) over periods with at least ``forecast_min_runs_per_point`` runs.

A Huber regression (robust to the odd bad period) fits a line through those points. The line's
value at the end of the window is ``current``; where it crosses the target is when the breach is
expected, if Kendall's test finds the drift at ``forecast_alpha`` and the crossing lies within
``forecast_horizon_days``. ``low`` and ``high`` are where the line plus and minus
``forecast_band_z`` times the points' robust scatter (1.4826 MAD of the residuals) cross it: the
earliest and latest breach the scatter around the trend allows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import HuberRegressor

from analytics.config import AnalysisConfig
from analytics.frames import FAILED_STATES, epoch_to_timestamp
from analytics.learning_model import SLO, Forecast, LearnedModels, SloState

FloatArray = npt.NDArray[np.float64]
METRICS = ("duration_p95_seconds", "success_rate_min", "max_queue_wait_seconds")
# Metrics breached by falling below the target; the others by rising above it.
FALLING_IS_BAD = frozenset({"success_rate_min"})
PERIODS = (86_400.0, 3_600.0, 60.0)
METHOD = "Huber regression on per-period values, Kendall's tau for the drift"
DAY = 86_400.0


def _values(runs: pd.DataFrame, metric: str, width: float, min_runs: int) -> tuple[FloatArray, FloatArray]:
    """(period middles, metric per period) for the periods with enough runs."""
    period = np.floor(runs["t_ref"].to_numpy(dtype=np.float64) / width)
    state = runs["state"].to_numpy(dtype=object)
    if metric == "duration_p95_seconds":
        frame = pd.DataFrame({"p": period, "v": runs["duration"].to_numpy(dtype=np.float64)})
        frame = frame[(state == "COMPLETED") & np.isfinite(frame["v"].to_numpy())]
        grouped = frame.groupby("p")["v"]
        value, count = grouped.quantile(0.95), grouped.size()
    elif metric == "success_rate_min":
        done = np.isin(state, ["COMPLETED", *FAILED_STATES])
        frame = pd.DataFrame({"p": period[done], "ok": state[done] == "COMPLETED"})
        grouped = frame.groupby("p")["ok"]
        value, count = grouped.mean(), grouped.size()
    else:
        frame = pd.DataFrame({"p": period, "v": runs["queue_wait"].to_numpy(dtype=np.float64)})
        frame = frame[np.isfinite(frame["v"].to_numpy())]
        grouped = frame.groupby("p")["v"]
        value, count = grouped.max(), grouped.size()
    keep = count[count >= min_runs].index
    return (keep.to_numpy(dtype=np.float64) + 0.5) * width, value.loc[keep].to_numpy(dtype=np.float64)


def _series(
    runs: pd.DataFrame, metric: str, config: AnalysisConfig
) -> tuple[FloatArray, FloatArray, float | None]:
    for width in PERIODS:
        x, y = _values(runs, metric, width, config.forecast_min_runs_per_point)
        if x.size >= config.forecast_min_points:
            return x, y, width
    return np.zeros(0), np.zeros(0), None


def _fit(days: FloatArray, y: FloatArray) -> tuple[float, float, float]:
    """Slope per day, value at day 0, and the robust scatter of the points around the line."""
    with warnings.catch_warnings():
        # Huber's scale iteration may stop short on perfectly linear points; the fit is still fine.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = HuberRegressor(alpha=0.0, max_iter=500).fit(days.reshape(-1, 1), y)
    slope, intercept = float(model.coef_[0]), float(model.intercept_)
    residuals = y - (intercept + slope * days)
    scale = 1.4826 * float(np.median(np.abs(residuals - np.median(residuals))))
    return slope, intercept, scale


def _crossing(level: float, slope: float, target: float) -> float | None:
    """Days from now until ``level + slope * t`` reaches ``target`` (None: never, going away)."""
    if slope == 0:
        return None
    days = (target - level) / slope
    return days if days >= 0 else None


def _drifts(days: FloatArray, y: FloatArray, bad_sign: float, alpha: float) -> bool:
    from scipy import stats as sps  # imported on use, like the trends

    if np.ptp(y) <= 0:
        return False
    result = sps.kendalltau(days, y)
    return bool(
        math.isfinite(result.pvalue) and result.pvalue < alpha and np.sign(result.statistic) == bad_sign
    )


def _forecast(
    workflow: str,
    metric: str,
    target: float,
    runs: pd.DataFrame,
    as_of: float,
    models: LearnedModels,
    config: AnalysisConfig,
) -> Forecast:
    key = LearnedModels.slo_key(workflow, metric)
    prior = models.slos.get(key)
    x, y, width = _series(runs, metric, config)
    horizon = config.forecast_horizon_days

    def done(status: str, **found: Any) -> Forecast:
        state = SloState(
            workflow=workflow,
            metric=metric,
            status=status,
            slope_per_day=found.get("slope_per_day"),
            intercept=found.get("current"),
            fitted_at=as_of if "current" in found else None,
            scale=found.pop("scale", None),
            alerted=dict(prior.alerted) if prior else {},
        )
        ref = models.update(SLO, key, state)
        base = {"current": None, "breach_expected_at": None, "low": None, "high": None, "slope_per_day": None}
        return Forecast(
            workflow=workflow,
            metric=metric,
            target=target,
            status=status,
            points=int(x.size),
            bucket_seconds=width,
            horizon_days=horizon,
            method=METHOD,
            model=ref,
            **{**base, **found},
        )

    if width is None:
        return done("insufficient_data")
    days = (x - as_of) / DAY
    slope, current, scale = _fit(days, y)
    bad = -1.0 if metric in FALLING_IS_BAD else 1.0
    found: dict[str, Any] = {"current": current, "slope_per_day": slope, "scale": scale}
    if (current - target) * bad > 0:
        return done("breached", **found, breach_expected_at=epoch_to_timestamp(as_of))
    expected = _crossing(current, slope, target)
    if expected is None or expected > horizon or not _drifts(days, y, bad, config.forecast_alpha):
        return done("no_breach", **found)
    band = config.forecast_band_z * scale * bad
    early, late = _crossing(current + band, slope, target), _crossing(current - band, slope, target)
    return done(
        "breach_expected",
        **found,
        breach_expected_at=epoch_to_timestamp(as_of + expected * DAY),
        low=epoch_to_timestamp(as_of + (early or 0.0) * DAY),
        high=None if late is None else epoch_to_timestamp(as_of + late * DAY),
    )


def forecast_slos(
    runs_by_workflow: Mapping[str, pd.DataFrame],
    success_metrics: Mapping[str, Mapping[str, Any]],
    models: LearnedModels,
    *,
    as_of: float,
    config: AnalysisConfig,
) -> list[Forecast]:
    """One forecast per success metric of every workflow with runs in the window; ``as_of`` (epoch
    seconds) is the moment the forecasts start from. ``models`` is updated in place."""
    out: list[Forecast] = []
    for workflow in sorted(success_metrics):
        runs = runs_by_workflow.get(workflow)
        if runs is None or runs.empty:
            continue
        for metric in METRICS:
            target = success_metrics[workflow].get(metric)
            if isinstance(target, int | float) and not isinstance(target, bool):
                out.append(_forecast(workflow, metric, float(target), runs, as_of, models, config))
    return out
