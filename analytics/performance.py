"""Performance per workflow (runs) and per task (task runs), with trends over the window.

Success rate = completed / (completed + failed + crashed); cancelled and still-running runs are
left out of it. Durations summarise completed work only (a failure's duration says little about
speed); cached and skipped task runs are left out of task durations.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.config import AnalysisConfig
from analytics.frames import FAILED_STATES
from analytics.report_model import DailyPoint, PerformanceSection, TaskPerformance, WorkflowPerformance
from analytics.stats import SECONDS_PER_DAY, summarize, trend


def success_rate(states: npt.NDArray[np.object_]) -> float | None:
    """Completed share of the runs that finished as completed, failed or crashed."""
    done = int(np.isin(states, ["COMPLETED", *FAILED_STATES]).sum())
    if done == 0:
        return None
    return float((states == "COMPLETED").sum() / done)


def _nansum(values: npt.NDArray[np.float64]) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.sum()) if finite.size else None


def _nanmax(values: npt.NDArray[np.float64]) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else None


def _daily(runs: pd.DataFrame) -> list[DailyPoint]:
    day = np.floor(runs["t_ref"].to_numpy() / SECONDS_PER_DAY)
    frame = pd.DataFrame(
        {
            "day": day,
            "failed": runs["state"].isin(FAILED_STATES).to_numpy(),
            "d": runs["duration"].where(runs["state"] == "COMPLETED").to_numpy(),
        }
    )
    grouped = frame.groupby("day", sort=True)
    agg = grouped.agg(runs=("failed", "size"), failed=("failed", "sum"))
    q = grouped["d"].quantile([0.5, 0.95]).unstack()
    points = []
    for d, row in agg.iterrows():
        p50 = q.loc[d, 0.5] if d in q.index else np.nan
        p95 = q.loc[d, 0.95] if d in q.index else np.nan
        points.append(
            DailyPoint(
                date=pd.Timestamp(float(d) * SECONDS_PER_DAY, unit="s", tz="UTC").date().isoformat(),
                runs=int(row["runs"]),
                failed=int(row["failed"]),
                p50_seconds=float(p50) if np.isfinite(p50) else None,
                p95_seconds=float(p95) if np.isfinite(p95) else None,
            )
        )
    return points


def workflow_performance(
    workflow: str, runs: pd.DataFrame, tasks: pd.DataFrame, *, config: AnalysisConfig
) -> WorkflowPerformance:
    """Run-level performance of one workflow (its rows of the prepared frames)."""
    states = runs["state"].to_numpy(dtype=object)
    completed = states == "COMPLETED"
    durations = runs["duration"].to_numpy(dtype=np.float64)
    attempts = tasks["attempts"].to_numpy()
    cpu_total = _nansum(tasks["cpu"].to_numpy(dtype=np.float64))
    return WorkflowPerformance(
        workflow=workflow,
        runs=len(runs),
        states={str(k): int(v) for k, v in runs["state"].value_counts().sort_index().items()},
        success_rate=success_rate(states),
        duration=summarize(durations[completed]),
        queue_wait=summarize(runs["queue_wait"].to_numpy(dtype=np.float64)),
        task_runs=len(tasks),
        retried_task_runs=int((attempts > 1).sum()),
        attempts_mean=float(attempts.mean()) if attempts.size else None,
        cpu_seconds_total=cpu_total,
        cpu_seconds_per_run=None if cpu_total is None or not len(runs) else cpu_total / len(runs),
        peak_memory_bytes_max=_nanmax(tasks["memory"].to_numpy(dtype=np.float64)),
        trend=trend(runs["t_start"].to_numpy()[completed], durations[completed], config=config),
        daily=_daily(runs),
    )


def task_performance(
    workflow: str, task_id: str, tasks: pd.DataFrame, *, config: AnalysisConfig
) -> TaskPerformance:
    """Performance of one workflow task from its task runs (prepared frame rows)."""
    skipped = tasks["skipped"].to_numpy()
    cached = tasks["cached"].to_numpy()
    completed = tasks["completed"].to_numpy()
    failed = tasks["failed"].to_numpy()
    measured = completed & ~skipped & ~cached
    durations = tasks["duration"].to_numpy(dtype=np.float64)
    attempts = tasks["attempts"].to_numpy()
    cpu = tasks["cpu"].to_numpy(dtype=np.float64)
    memory = tasks["memory"].to_numpy(dtype=np.float64)
    finite_cpu = cpu[np.isfinite(cpu)]
    finite_mem = memory[np.isfinite(memory)]
    done = int((completed & ~skipped).sum() + failed.sum())
    ready_wait = tasks["ready_wait"].to_numpy(dtype=np.float64) if "ready_wait" in tasks else np.array([])
    return TaskPerformance(
        workflow=workflow,
        task_id=task_id,
        task_runs=len(tasks),
        flow_runs=int(tasks["run_code"].nunique()),
        completed=int(completed.sum()),
        failed=int(failed.sum()),
        skipped=int(skipped.sum()),
        cached=int(cached.sum()),
        success_rate=float((completed & ~skipped).sum() / done) if done else None,
        duration=summarize(durations[measured]),
        ready_wait=summarize(ready_wait),
        attempts_mean=float(attempts.mean()) if attempts.size else None,
        attempts_max=int(attempts.max()) if attempts.size else 0,
        retried=int((attempts > 1).sum()),
        cpu_seconds_mean=float(finite_cpu.mean()) if finite_cpu.size else None,
        cpu_seconds_total=float(finite_cpu.sum()) if finite_cpu.size else None,
        peak_memory_bytes_p95=float(np.percentile(finite_mem, 95)) if finite_mem.size else None,
        peak_memory_bytes_max=float(finite_mem.max()) if finite_mem.size else None,
        trend=trend(tasks["t_start"].to_numpy()[measured], durations[measured], config=config),
    )


def analyse_performance(
    runs: Mapping[str, pd.DataFrame], tasks: Mapping[str, pd.DataFrame], *, config: AnalysisConfig
) -> PerformanceSection:
    """Per-workflow and per-task performance; both mappings are workflow -> its prepared rows."""
    workflows: list[WorkflowPerformance] = []
    task_rows: list[TaskPerformance] = []
    for wf in sorted(runs):
        wf_tasks = tasks.get(wf)
        if wf_tasks is None:
            wf_tasks = pd.DataFrame(columns=["attempts", "cpu", "memory"])
        workflows.append(workflow_performance(wf, runs[wf], wf_tasks, config=config))
        if len(wf_tasks):
            for tid, pos in wf_tasks.groupby("task_id", sort=True).indices.items():
                task_rows.append(task_performance(wf, str(tid), wf_tasks.iloc[pos], config=config))
    return PerformanceSection(workflows=workflows, tasks=task_rows)
