"""Usage patterns: when workflows run (UTC hour/weekday), how they are triggered, which actions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
import pandas as pd

from analytics.report_model import UsagePatterns
from analytics.stats import SECONDS_PER_DAY
from analytics.workflow_doc import DocInfo


def max_overlap(starts: np.ndarray, ends: np.ndarray) -> int:
    """Largest number of intervals open at once (an interval ending when another starts does not overlap)."""
    ok = np.isfinite(starts) & np.isfinite(ends)
    s, e = np.sort(starts[ok]), np.sort(ends[ok])
    if s.size == 0:
        return 0
    open_at_start = np.arange(1, s.size + 1) - np.searchsorted(e, s, side="right")
    return int(open_at_start.max())


def _arrival(times: np.ndarray) -> dict[str, float | None]:
    t = np.sort(times[np.isfinite(times)])
    if t.size < 2:
        return {"median_interval_seconds": None, "interval_cv": None, "runs_per_day": None}
    gaps = np.diff(t)
    span_days = max(float(t[-1] - t[0]) / SECONDS_PER_DAY, 1e-9)
    mean = float(gaps.mean())
    return {
        "median_interval_seconds": float(np.median(gaps)),
        "interval_cv": float(gaps.std() / mean) if mean > 0 else None,
        "runs_per_day": float(t.size / span_days),
    }


def usage_patterns(runs: pd.DataFrame, tasks: pd.DataFrame, docs: Mapping[str, DocInfo]) -> UsagePatterns:
    """Usage of the prepared frames plus the actions of each workflow document."""
    stamps = pd.to_datetime(runs["t_ref"].to_numpy(), unit="s", utc=True)
    hours = np.asarray(stamps.hour, dtype=np.int64)
    weekdays = np.asarray(stamps.day_of_week, dtype=np.int64)
    grid = np.zeros((7, 24), dtype=np.int64)
    np.add.at(grid, (weekdays, hours), 1)
    by_wf = runs.groupby("workflow", sort=True)
    triggers = {str(wf): {str(k): int(v) for k, v in g["trigger"].value_counts().items()} for wf, g in by_wf}
    arrival = {str(wf): _arrival(g["t_ref"].to_numpy(dtype=np.float64)) for wf, g in by_wf}
    concurrent = {
        str(wf): max_overlap(g["t_start"].to_numpy(dtype=np.float64), g["t_end"].to_numpy(dtype=np.float64))
        for wf, g in by_wf
    }
    actions = {
        name: dict(Counter(ts.uses or "<unknown>" for ts in doc.tasks.values()))
        for name, doc in sorted(docs.items())
    }
    uses_of = {
        (name, tid): ts.uses or "<unknown>" for name, doc in docs.items() for tid, ts in doc.tasks.items()
    }
    per_task = tasks.groupby(["workflow", "task_id"], sort=True).size()
    action_runs: Counter[str] = Counter()
    for (wf, tid), count in per_task.items():
        action_runs[uses_of.get((str(wf), str(tid)), "<unknown>")] += int(count)
    return UsagePatterns(
        runs_by_workflow={str(k): int(v) for k, v in runs["workflow"].value_counts().sort_index().items()},
        by_hour=grid.sum(axis=0).tolist(),
        by_weekday=grid.sum(axis=1).tolist(),
        weekday_hour=grid.tolist(),
        triggers=triggers,
        arrival=arrival,
        max_concurrent_runs=concurrent,
        actions=actions,
        action_task_runs=dict(sorted(action_runs.items())),
        task_actions={
            name: {tid: ts.uses or "<unknown>" for tid, ts in doc.tasks.items()}
            for name, doc in sorted(docs.items())
        },
    )
