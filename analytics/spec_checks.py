"""The specification's success metrics against what happened in the window."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from analytics.report_model import SpecCheck, WorkflowPerformance

_METRICS = ("duration_p95_seconds", "success_rate_min", "max_queue_wait_seconds")


def _check(
    workflow: str, metric: str, target: float, perf: WorkflowPerformance | None, waits: Any
) -> SpecCheck:
    observed: float | None
    if metric == "duration_p95_seconds":
        observed = perf.duration.p95 if perf else None
        n = perf.duration.count if perf else 0
        basis = f"p95 of {n} completed run(s)"
        breached = observed is not None and observed > target
    elif metric == "success_rate_min":
        observed = perf.success_rate if perf else None
        n = sum(v for k, v in perf.states.items() if k in ("COMPLETED", "FAILED", "CRASHED")) if perf else 0
        basis = f"completed share of {n} finished run(s) (cancelled runs excluded)"
        breached = observed is not None and observed < target
    else:
        observed = perf.queue_wait.max if perf else None
        n = perf.queue_wait.count if perf else 0
        over = int((np.asarray(waits, dtype=np.float64) > target).sum()) if n else 0
        basis = f"longest wait of {n} run(s); {over} run(s) waited longer than the target"
        breached = observed is not None and observed > target
    delta = None if observed is None else observed - target
    return SpecCheck(
        workflow=workflow,
        metric=metric,
        target=target,
        observed=observed,
        breached=breached,
        delta=delta,
        delta_relative=None if delta is None or target == 0 else delta / target,
        basis=basis,
        n=n,
    )


def check_specs(
    metrics: Mapping[str, Mapping[str, Any]],
    performance: Mapping[str, WorkflowPerformance],
    queue_waits: Mapping[str, Any],
) -> list[SpecCheck]:
    """One check per (workflow, metric) the specification sets.

    ``metrics`` maps workflow -> success_metrics dict, ``performance`` workflow -> its performance,
    ``queue_waits`` workflow -> array of run queue waits (seconds).
    """
    checks: list[SpecCheck] = []
    for workflow in sorted(metrics):
        for metric in _METRICS:
            target = metrics[workflow].get(metric)
            if isinstance(target, int | float) and not isinstance(target, bool):
                perf = performance.get(workflow)
                waits = queue_waits.get(workflow, [])
                checks.append(_check(workflow, metric, float(target), perf, waits))
    return checks
