"""Waits behind ``concurrency.max_parallel_tasks``.

A task run is *held by the limit* when it started noticeably after it became ready (its upstreams
had all finished) and, just before it started, the run already had ``max_parallel_tasks`` task runs
going: it started the moment a slot freed up. Counting running task runs uses one global sweep:
times are laid out run after run on one axis so a single ``searchsorted`` answers every run at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.config import AnalysisConfig
from analytics.critical_path import RunMatrix
from analytics.report_model import Parallelism

FloatArray = npt.NDArray[np.float64]


@dataclass
class RowTimes:
    """Task-run times relative to their run's start, for the rows of one workflow in the matrix."""

    index: pd.Index
    run_row: npt.NDArray[np.int64]
    task_id: npt.NDArray[np.object_]
    start: FloatArray
    end: FloatArray
    ready: FloatArray

    @property
    def wait(self) -> FloatArray:
        return np.maximum(self.start - self.ready, 0.0)


def row_times(tasks: pd.DataFrame, matrix: RunMatrix, ready: npt.NDArray[np.float64]) -> RowTimes:
    """Relative start/end/ready times of the task runs whose run is in ``matrix``."""
    codes = tasks["run_code"].to_numpy()
    pos = np.searchsorted(matrix.run_codes, codes)
    pos_clipped = np.minimum(pos, matrix.run_codes.size - 1)
    inside = (matrix.run_codes[pos_clipped] == codes) & np.isfinite(tasks["t_start"].to_numpy())
    inside &= np.isfinite(tasks["t_end"].to_numpy())
    sub = tasks[inside]
    rows = pos_clipped[inside]
    node_index = {n: i for i, n in enumerate(matrix.nodes)}
    cols = sub["task_id"].map(node_index).to_numpy(dtype=np.int64)
    offset = matrix.run_start[rows]
    return RowTimes(
        index=sub.index,
        run_row=rows.astype(np.int64),
        task_id=sub["task_id"].to_numpy(dtype=object),
        start=sub["t_start"].to_numpy() - offset,
        end=sub["t_end"].to_numpy() - offset,
        ready=ready[rows, cols],
    )


def _lay_out(times: RowTimes) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """Start, end and ready times on one axis where run ``k`` occupies [k*block, (k+1)*block)."""
    span = (
        float(np.nanmax(np.concatenate([times.end, times.start, times.ready]))) if times.start.size else 0.0
    )
    block = max(span, 0.0) + 2.0
    base = times.run_row.astype(np.float64) * block
    return base + times.start, base + times.end, base + times.ready, block


def analyse_parallelism(times: RowTimes, *, limit: int, config: AnalysisConfig) -> Parallelism | None:
    """How often task runs of one workflow waited for a free slot under ``limit``."""
    n = times.start.size
    if n == 0:
        return None
    start, end, ready, _ = _lay_out(times)
    sorted_start, sorted_end, sorted_ready = np.sort(start), np.sort(end), np.sort(ready)
    wait = times.wait
    # A slot freed "just before" a start: the executor needs a moment to hand it on.
    tolerance = np.minimum(1.0, 0.5 * wait)
    running_before = np.searchsorted(sorted_start, start, side="left") - np.searchsorted(
        sorted_end, start - tolerance, side="left"
    )
    delayed = (wait >= config.parallel_min_wait_seconds) & (running_before >= limit)
    # Demand: task runs ready or running, measured whenever a task becomes ready.
    demand = np.searchsorted(sorted_ready, ready, side="right") - np.searchsorted(
        sorted_end, ready, side="right"
    )
    peaks = pd.Series(demand).groupby(times.run_row).max().to_numpy()

    delayed_waits = wait[delayed]
    per_run = pd.Series(delayed_waits).groupby(times.run_row[delayed]).sum()
    by_task = pd.Series(times.task_id[delayed]).value_counts()
    return Parallelism(
        max_parallel_tasks=limit,
        task_runs_checked=n,
        delayed_task_runs=int(delayed.sum()),
        delayed_share=float(delayed.mean()),
        delayed_wait_mean_seconds=float(delayed_waits.mean()) if delayed_waits.size else None,
        delayed_wait_p95_seconds=float(np.percentile(delayed_waits, 95)) if delayed_waits.size else None,
        runs_affected=int(per_run.size),
        wait_per_affected_run_mean_seconds=float(per_run.mean()) if per_run.size else None,
        peak_demand_p95=float(np.percentile(peaks, 95)) if peaks.size else None,
        peak_demand_max=int(peaks.max()) if peaks.size else None,
        delayed_by_task={str(k): int(v) for k, v in by_task.items()},
    )
