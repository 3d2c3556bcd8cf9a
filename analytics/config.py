"""Thresholds of the analysis, in one place so that reports can quote them.

Every threshold decides whether something is *flagged*; the numbers behind a flag are always
reported as measured. Defaults are chosen so that a healthy history (log-normal durations,
independent rare failures) produces no recommendations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class AnalysisConfig:
    """Tunable thresholds; ``AnalysisConfig()`` gives the defaults used by the scheduled reports."""

    # Trends: Mann-Kendall p-value below this AND a change over the window of at least
    # ``trend_min_relative_change`` of the median duration.
    trend_alpha: float = 0.001
    trend_min_relative_change: float = 0.10
    trend_min_points: int = 10
    # Theil-Sen is quadratic in the number of points: longer series are thinned evenly in time.
    trend_max_points_slope: int = 1000
    trend_max_points_test: int = 20_000

    # Anomalies: robust z-score of log-duration against the group's completed history.
    anomaly_z: float = 4.5
    anomaly_min_ratio: float = 1.5
    anomaly_min_abs_seconds: float = 1.0
    anomaly_min_history: int = 20
    anomaly_max_listed: int = 200

    # Critical path: bounded work per workflow (runs x DAG nodes); beyond it runs are sampled.
    critical_path_max_cells: int = 4_000_000
    bottleneck_min_share: float = 0.5
    bottleneck_min_critical_share: float = 0.8

    # Timeouts.
    timeout_tail_factor: float = 1.5
    timeout_long_tail_ratio: float = 3.0
    timeout_min_runs: int = 20
    timeout_tight_close: float = 0.8
    timeout_max_tail_share: float = 0.1

    # Failures and retries.
    retry_target_failure_rate: float = 0.01
    retry_min_failures: int = 3
    retry_max_recommended: int = 10
    deterministic_signature_share: float = 0.9
    cluster_window_seconds: float = 300.0
    cluster_min_ratio: float = 5.0
    cluster_min_failures: int = 5
    cluster_min_runs: int = 3

    # Parallelism: a task run counts as held by max_parallel_tasks when it waited this long after
    # its upstreams finished while the limit was reached.
    parallel_min_wait_seconds: float = 0.5
    parallel_min_share: float = 0.05

    # Caching.
    cache_min_repeat_share: float = 0.3
    cache_min_consistency: float = 0.99
    cache_min_saved_seconds: float = 60.0
    cache_min_runs: int = 10

    # Seed for any sampling, so a report is reproducible.
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as a plain dict (reports embed it)."""
        return asdict(self)
