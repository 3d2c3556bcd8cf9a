"""The report: plain dataclasses, JSON-serialisable through :meth:`Report.to_dict`.

Durations are seconds, memory is bytes, shares are fractions (0..1), times are UTC ISO-8601 strings
in ``to_dict`` output. Missing numbers are None, never NaN.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics.learning_model import Alert, FamilySection, Forecast, LearnedModels, MultivariateSection
from analytics.stats import Summary, Trend


def jsonable(value: Any) -> Any:
    """Convert dataclasses, numpy scalars, timestamps and NaN into plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp | datetime):
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


@dataclasses.dataclass
class DailyPoint:
    """Per-day run counts and completed-run duration percentiles of one workflow."""

    date: str
    runs: int
    failed: int
    p50_seconds: float | None
    p95_seconds: float | None


@dataclasses.dataclass
class WorkflowPerformance:
    """Run-level performance of one workflow in the window."""

    workflow: str
    runs: int
    states: dict[str, int]
    success_rate: float | None
    duration: Summary
    queue_wait: Summary
    task_runs: int
    retried_task_runs: int
    attempts_mean: float | None
    cpu_seconds_total: float | None
    cpu_seconds_per_run: float | None
    peak_memory_bytes_max: float | None
    trend: Trend
    daily: list[DailyPoint]


@dataclasses.dataclass
class TaskPerformance:
    """Performance of one spec task (all its task runs, fan-out items included)."""

    workflow: str
    task_id: str
    task_runs: int
    flow_runs: int
    completed: int
    failed: int
    skipped: int
    cached: int
    success_rate: float | None
    duration: Summary
    ready_wait: Summary
    attempts_mean: float | None
    attempts_max: int
    retried: int
    cpu_seconds_mean: float | None
    cpu_seconds_total: float | None
    peak_memory_bytes_p95: float | None
    peak_memory_bytes_max: float | None
    trend: Trend


@dataclasses.dataclass
class PerformanceSection:
    workflows: list[WorkflowPerformance]
    tasks: list[TaskPerformance]


@dataclasses.dataclass
class TaskBottleneck:
    """How one task shapes the critical path (means over the analysed runs where it ran)."""

    task_id: str
    runs: int
    critical_share: float
    duration_mean_seconds: float
    slack_mean_seconds: float
    share_of_critical_path: float | None
    reduction_if_halved_seconds: float
    reduction_if_zero_seconds: float


@dataclasses.dataclass
class GanttBar:
    task_id: str
    start_offset_seconds: float
    end_offset_seconds: float
    critical: bool


@dataclasses.dataclass
class Parallelism:
    """Task runs that were ready (all upstreams done) but started late while the run already had
    ``max_parallel_tasks`` task runs going."""

    max_parallel_tasks: int
    task_runs_checked: int
    delayed_task_runs: int
    delayed_share: float
    delayed_wait_mean_seconds: float | None
    delayed_wait_p95_seconds: float | None
    runs_affected: int
    wait_per_affected_run_mean_seconds: float | None
    peak_demand_p95: float | None
    peak_demand_max: int | None
    delayed_by_task: dict[str, int]


@dataclasses.dataclass
class WorkflowBottlenecks:
    """Critical-path analysis of one workflow's completed runs."""

    workflow: str
    runs_analysed: int
    runs_completed: int
    sampled: bool
    critical_path_mean_seconds: float | None
    run_duration_mean_seconds: float | None
    overhead_mean_seconds: float | None
    most_common_path: list[str]
    most_common_path_share: float | None
    tasks: list[TaskBottleneck]
    example_run_id: str | None
    example_bars: list[GanttBar]
    parallelism: Parallelism | None = None
    note: str | None = None


@dataclasses.dataclass
class Anomaly:
    """A run or task run far outside its own history (robust z of log-duration)."""

    workflow: str
    task_id: str | None
    flow_run_id: str
    task_run_name: str | None
    state: str
    start_time: pd.Timestamp | None
    duration_seconds: float
    baseline_median_seconds: float
    ratio: float
    robust_z: float
    direction: str


@dataclasses.dataclass
class AnomalyCount:
    workflow: str
    task_id: str | None
    checked: int
    flagged: int
    slow_completed: int


@dataclasses.dataclass
class AnomalySection:
    threshold_z: float
    runs: list[Anomaly]
    tasks: list[Anomaly]
    counts: list[AnomalyCount]


@dataclasses.dataclass
class AttemptChance:
    """Of the task runs that reached attempt ``attempt``, how many succeeded on it."""

    attempt: int
    reached: int
    succeeded: int
    chance: float


@dataclasses.dataclass
class FailureGroup:
    """Final task-run failures sharing an error signature."""

    workflow: str
    task_id: str
    signature: str
    count: int
    flow_runs: int
    share_of_task_failures: float
    first_seen: pd.Timestamp | None
    last_seen: pd.Timestamp | None
    example: str


@dataclasses.dataclass
class TemporalClustering:
    """Do a task's failures bunch up in time more than its run rate explains?"""

    window_seconds: float
    failures: int
    clustered_failures: int
    clusters: int
    concentration_ratio: float | None
    cluster_span_p50_seconds: float | None
    cluster_span_max_seconds: float | None


@dataclasses.dataclass
class RetryProfile:
    """Failures and retries of one task."""

    workflow: str
    task_id: str
    task_runs: int
    failed_final: int
    failure_rate: float
    retried: int
    succeeded_on_retry: int
    failed_after_retries: int
    configured_retries: int
    signatures: int
    top_signature_share: float | None
    failed_inputs_succeeded_elsewhere: float | None
    attempts: list[AttemptChance]
    clustering: TemporalClustering
    classification: str  # "transient", "deterministic", "clustered", "unclear"


@dataclasses.dataclass
class FailureSection:
    groups: list[FailureGroup]
    retry_profiles: list[RetryProfile]
    failed_runs_without_task_error: dict[str, int]


@dataclasses.dataclass
class SpecCheck:
    """One success metric of a specification against the window's history."""

    workflow: str
    metric: str
    target: float
    observed: float | None
    breached: bool
    delta: float | None
    delta_relative: float | None
    basis: str
    n: int


def observed_id(kind: str, workflow: str, task_id: str | None, extra: str = "") -> str:
    """The stable id of a finding or recommendation: ``kind:workflow:task`` (``-`` for no task)."""
    return f"{kind}:{workflow}:{task_id or '-'}{':' + extra if extra else ''}"


@dataclasses.dataclass
class Observed:
    """What a recommendation and a finding both say: which workflow (and task), what, and the numbers."""

    id: str
    workflow: str
    task_id: str | None
    kind: str
    title: str
    evidence: dict[str, Any]


@dataclasses.dataclass
class Recommendation(Observed):
    """A proposed change to a workflow document, with the numbers that justify it."""

    expected_effect: str
    yaml_diff: str
    severity: str
    changes: dict[str, Any]


@dataclasses.dataclass
class Finding(Observed):
    """An observation worth attention that is not itself a document change."""

    severity: str


@dataclasses.dataclass
class UsagePatterns:
    """When and how workflows run, and which actions they use."""

    runs_by_workflow: dict[str, int]
    by_hour: list[int]
    by_weekday: list[int]
    weekday_hour: list[list[int]]
    triggers: dict[str, dict[str, int]]
    arrival: dict[str, dict[str, float | None]]
    max_concurrent_runs: dict[str, int]
    actions: dict[str, dict[str, int]]
    action_task_runs: dict[str, int]
    task_actions: dict[str, dict[str, str]]


@dataclasses.dataclass
class Report:
    """The full analysis of one window of run history."""

    window_start: pd.Timestamp
    window_end: pd.Timestamp
    generated_at: pd.Timestamp
    workflows: list[str]
    totals: dict[str, int]
    performance: PerformanceSection
    bottlenecks: list[WorkflowBottlenecks]
    anomalies: AnomalySection
    failures: FailureSection
    spec_checks: list[SpecCheck]
    recommendations: list[Recommendation]
    findings: list[Finding]
    usage: UsagePatterns
    combined_diffs: dict[str, str]
    config: dict[str, Any]
    notes: list[str]
    families: FamilySection
    multivariate: MultivariateSection
    forecasts: list[Forecast]
    alerts: list[Alert]
    # The learnt state after this report (stored by the caller), not part of the report itself.
    models: LearnedModels = dataclasses.field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON types (str, int, float, bool, None, list, dict), without the
        learnt models."""
        return {
            f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "models"
        }
