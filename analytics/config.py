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

    # Failure families (analytics.families): normalised messages embedded with TF-IDF (word 1-2
    # grams and character 3-5 grams), clustered by average linkage on cosine distance; clusters
    # closer than the threshold merge. At most ``family_max_messages`` distinct messages (the most
    # frequent) are clustered per report; the rest join their nearest cluster or stand alone.
    family_distance_threshold: float = 0.5
    family_max_messages: int = 2000
    family_max_known: int = 1000
    family_max_exemplars: int = 8
    family_max_listed_runs: int = 500

    # Multivariate anomalies (analytics.multivariate): an isolation forest per task, trained on a
    # bounded uniform sample of its recent task runs. A task run is reported when its anomaly score
    # reaches ``mv_min_score`` and at least one feature is ``mv_feature_z`` robust z and
    # ``mv_min_ratio`` times away from the task's median.
    mv_sample_size: int = 256
    mv_sample_days: float = 30.0
    mv_trees: int = 100
    mv_min_history: int = 30
    mv_min_score: float = 0.6
    mv_feature_z: float = 4.0
    mv_min_ratio: float = 2.0
    mv_max_listed: int = 200

    # SLO forecasts (analytics.forecasts): a robust (Huber) line through per-period values of each
    # success metric; a breach counts when the line crosses the target within the horizon and
    # Kendall's test finds the drift at ``forecast_alpha``.
    forecast_horizon_days: float = 14.0
    forecast_min_points: int = 6
    forecast_min_runs_per_point: int = 3
    forecast_alpha: float = 0.05
    forecast_band_z: float = 1.645

    # Alerts (analytics.alerts): only about runs that ended this recently, at most this many per
    # report, and the same SLO alert at most once per ``alert_repeat_hours``.
    alert_max_age_hours: float = 24.0
    alert_repeat_hours: float = 24.0
    alert_max_events: int = 50

    # False: the report without families, multivariate anomalies, forecasts and alerts.
    learn: bool = True

    # Seed for any sampling, so a report is reproducible.
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as a plain dict (reports embed it)."""
        return asdict(self)
