"""Runs and task runs far outside their own history.

Score: robust z of log-duration, ``0.6745 * (log d - median) / MAD``, against the *completed*
history of the same workflow (runs) or the same workflow task (task runs). Logs make a 3x slowdown
count the same for a 2 s and a 2 h task. A point is flagged when |z| passes ``anomaly_z`` and it is
also practically far: at least ``anomaly_min_ratio`` times slower (or faster) than the median and
``anomaly_min_abs_seconds`` apart. Fast outliers are only flagged for completed work (failing
fast is a failure, reported elsewhere). Task runs are scored on single-attempt runs, and runs on
those without retried task runs, since retry waits inflate their wall time.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.config import AnalysisConfig
from analytics.frames import epoch_to_timestamp
from analytics.report_model import Anomaly, AnomalyCount, AnomalySection
from analytics.stats import robust_z

FloatArray = npt.NDArray[np.float64]


def _scores(
    groups: npt.NDArray[np.int64], log_d: FloatArray, baseline: npt.NDArray[np.bool_], min_history: int
) -> tuple[FloatArray, FloatArray]:
    """Robust z per point and the group's median log-duration (NaN for groups with thin history)."""
    base = pd.Series(log_d[baseline])
    keys = groups[baseline]
    grouped = base.groupby(keys)
    median = grouped.median()
    count = grouped.size()
    median = median[count >= min_history]
    deviation = (base - median.reindex(keys).to_numpy()).abs()
    mad = deviation.groupby(keys).median()
    med_all = median.reindex(groups).to_numpy(dtype=np.float64)
    mad_all = mad.reindex(groups).to_numpy(dtype=np.float64)
    return robust_z(log_d, med_all, mad_all), med_all


def _flags(
    duration: FloatArray,
    z: FloatArray,
    med_log: FloatArray,
    completed: npt.NDArray[np.bool_],
    config: AnalysisConfig,
) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    median = np.exp(med_log)
    ratio = duration / median
    far = np.abs(duration - median) >= config.anomaly_min_abs_seconds
    slow = (z > config.anomaly_z) & (ratio >= config.anomaly_min_ratio)
    fast = (z < -config.anomaly_z) & (ratio <= 1 / config.anomaly_min_ratio) & completed
    return np.nan_to_num((slow | fast) & far, nan=0).astype(bool), ratio


def detect_anomalies(
    runs: pd.DataFrame, tasks: pd.DataFrame, flow_run_ids: npt.NDArray[np.object_], *, config: AnalysisConfig
) -> AnomalySection:
    """Anomalous runs and task runs of all workflows (prepared frames)."""
    # Runs with retried task runs are left out: their extra time is the retries', which the
    # failure analysis reports.
    max_attempts = tasks.groupby("run_code")["attempts"].max().reindex(runs["run_code"]).fillna(1).to_numpy()
    run_part = _detect(
        runs[max_attempts <= 1].assign(task_id=None, task_run_name=None),
        keys=["workflow"],
        flow_run_ids=flow_run_ids,
        config=config,
    )
    single = tasks[
        (tasks["attempts"].to_numpy() == 1) & ~tasks["skipped"].to_numpy() & ~tasks["cached"].to_numpy()
    ]
    task_part = _detect(single, keys=["workflow", "task_id"], flow_run_ids=flow_run_ids, config=config)
    return AnomalySection(
        threshold_z=config.anomaly_z,
        runs=run_part[0],
        tasks=task_part[0],
        counts=run_part[1] + task_part[1],
    )


def _detect(
    frame: pd.DataFrame, *, keys: list[str], flow_run_ids: npt.NDArray[np.object_], config: AnalysisConfig
) -> tuple[list[Anomaly], list[AnomalyCount]]:
    duration = frame["duration"].to_numpy(dtype=np.float64)
    usable = np.isfinite(duration) & (duration > 0)
    frame, duration = frame[usable], duration[usable]
    if frame.empty:
        return [], []
    groups = frame.groupby(keys, sort=False).ngroup().to_numpy(dtype=np.int64)
    first_rows = pd.Series(np.arange(len(frame))).groupby(groups).first().to_numpy()
    uniques = [tuple(row) for row in frame[keys].iloc[first_rows].itertuples(index=False)]
    completed = (frame["state"] == "COMPLETED").to_numpy()
    log_d = np.log(duration)
    z, med_log = _scores(groups, log_d, completed, config.anomaly_min_history)
    flagged, ratio = _flags(duration, z, med_log, completed, config)

    scored = np.isfinite(z)
    counts_frame = (
        pd.DataFrame(
            {"g": groups, "checked": scored, "flagged": flagged, "slow_ok": flagged & completed & (z > 0)}
        )
        .groupby("g")[["checked", "flagged", "slow_ok"]]
        .sum()
    )
    counts: list[AnomalyCount] = []
    for g, row in counts_frame.iterrows():
        if int(row["checked"]) == 0:
            continue
        key = uniques[int(g)]
        counts.append(
            AnomalyCount(
                workflow=str(key[0]),
                task_id=str(key[1]) if len(keys) > 1 else None,
                checked=int(row["checked"]),
                flagged=int(row["flagged"]),
                slow_completed=int(row["slow_ok"]),
            )
        )

    picked = np.flatnonzero(flagged)
    picked = picked[np.argsort(-np.abs(z[picked]), kind="stable")][: config.anomaly_max_listed]
    sub = frame.iloc[picked]
    t_start = sub["t_start"].to_numpy()
    listed = [
        Anomaly(
            workflow=str(wf),
            task_id=None if task is None else str(task),
            flow_run_id=str(flow_run_ids[code]),
            task_run_name=None if name is None else str(name),
            state=str(state),
            start_time=epoch_to_timestamp(t) if np.isfinite(t) else None,
            duration_seconds=float(duration[i]),
            baseline_median_seconds=float(np.exp(med_log[i])),
            ratio=float(ratio[i]),
            robust_z=float(z[i]),
            direction="slow" if z[i] > 0 else "fast",
        )
        for i, wf, task, name, state, code, t in zip(
            picked,
            sub["workflow"],
            sub["task_id"],
            sub["task_run_name"],
            sub["state"],
            sub["run_code"],
            t_start,
            strict=True,
        )
    ]
    return listed, counts
