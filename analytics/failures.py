"""Failures: grouped by error signature, retry success chances, and bunching in time.

Attempts are read from the final state: a task run that completed with ``attempts=3`` failed
attempts 1 and 2 and succeeded on 3; one that failed with ``attempts=3`` failed all three. So the
chance of success on attempt *k* is (completed with attempts == k) / (task runs with attempts >= k).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.config import AnalysisConfig
from analytics.frames import FAILED_STATES, epoch_to_timestamp
from analytics.report_model import (
    AttemptChance,
    FailureGroup,
    FailureSection,
    RetryProfile,
    TemporalClustering,
)
from analytics.signatures import signatures
from analytics.workflow_doc import DocInfo

FloatArray = npt.NDArray[np.float64]


def attempt_chances(attempts: npt.NDArray[np.int64], completed: npt.NDArray[np.bool_]) -> list[AttemptChance]:
    """Chance of success on each attempt number, from final attempts counts and final states."""
    if attempts.size == 0:
        return []
    top = int(attempts.max())
    per_attempts = np.bincount(attempts, minlength=top + 1)
    reached = per_attempts[::-1].cumsum()[::-1]
    succeeded = np.bincount(attempts[completed], minlength=top + 1)
    return [
        AttemptChance(k, int(reached[k]), int(succeeded[k]), float(succeeded[k] / reached[k]))
        for k in range(1, top + 1)
        if reached[k] > 0
    ]


def temporal_clustering(
    all_times: FloatArray,
    failed: npt.NDArray[np.bool_],
    run_codes: npt.NDArray[np.int64],
    *,
    config: AnalysisConfig,
) -> TemporalClustering:
    """Compare failures near each failure with what the task's own run rate predicts.

    For every failure, count the other failures within +/- half a window, and the other task runs
    within it times the overall failure rate. The ratio of the sums is ~1 for failures that strike
    at random and large when many flows fail the same task together.
    """
    window = config.cluster_window_seconds
    ok = np.isfinite(all_times)
    times, fails, codes = all_times[ok], failed[ok], run_codes[ok]
    fail_times = np.sort(times[fails])
    n_fail = fail_times.size
    if n_fail == 0:
        return TemporalClustering(window, 0, 0, 0, None, None, None)
    sorted_all = np.sort(times)
    half = window / 2
    observed = np.searchsorted(fail_times, fail_times + half, "right") - np.searchsorted(
        fail_times, fail_times - half
    )
    nearby = np.searchsorted(sorted_all, fail_times + half, "right") - np.searchsorted(
        sorted_all, fail_times - half
    )
    rate = n_fail / max(times.size, 1)
    expected = float(((nearby - 1) * rate).sum())
    ratio = float((observed - 1).sum() / expected) if expected > 0 else None

    order = np.argsort(times[fails], kind="stable")
    frame = pd.DataFrame({"t": times[fails][order], "run": codes[fails][order]})
    frame["cluster"] = (frame["t"].diff() > window).cumsum()
    per = frame.groupby("cluster").agg(
        n=("t", "size"), runs=("run", "nunique"), lo=("t", "min"), hi=("t", "max")
    )
    big = per[per["runs"] >= config.cluster_min_runs]
    spans = (big["hi"] - big["lo"]).to_numpy(dtype=np.float64)
    return TemporalClustering(
        window_seconds=window,
        failures=int(n_fail),
        clustered_failures=int(big["n"].sum()),
        clusters=len(big),
        concentration_ratio=ratio,
        cluster_span_p50_seconds=float(np.median(spans)) if spans.size else None,
        cluster_span_max_seconds=float(spans.max()) if spans.size else None,
    )


def _classify(profile: RetryProfile, config: AnalysisConfig) -> str:
    c = profile.clustering
    if (
        c.concentration_ratio is not None
        and c.concentration_ratio >= config.cluster_min_ratio
        and c.clustered_failures >= config.cluster_min_failures
    ):
        return "clustered"
    later = [a for a in profile.attempts if a.attempt > 1]
    if profile.succeeded_on_retry > 0 and later:
        return "transient"
    elsewhere = profile.failed_inputs_succeeded_elsewhere
    if elsewhere is not None and elsewhere >= 0.5 and profile.failed_final >= config.retry_min_failures:
        return "transient"
    if (
        profile.failed_after_retries >= config.retry_min_failures
        and profile.succeeded_on_retry == 0
        and (profile.top_signature_share or 0.0) >= config.deterministic_signature_share
    ):
        return "deterministic"
    return "unclear"


def _inputs_elsewhere(group: pd.DataFrame) -> float | None:
    failed = group[group["failed"] & group["inputs_hash"].notna()]
    if failed.empty:
        return None
    good = set(group.loc[group["completed"] & group["inputs_hash"].notna(), "inputs_hash"])
    return float(failed["inputs_hash"].isin(good).mean())


def analyse_failures(
    runs: pd.DataFrame, tasks: pd.DataFrame, docs: Mapping[str, DocInfo], *, config: AnalysisConfig
) -> FailureSection:
    """Failure groups and retry profiles of every task that failed or retried (prepared frames)."""
    active = tasks[~tasks["skipped"].to_numpy()]
    moment = active["t_end"].fillna(active["t_start"])
    failed_rows = active[active["failed"].to_numpy()].copy()
    failed_rows["signature"] = signatures(failed_rows["error_message"])
    failed_rows["moment"] = moment[failed_rows.index]

    groups: list[FailureGroup] = []
    if not failed_rows.empty:
        agg = failed_rows.groupby(["workflow", "task_id", "signature"], sort=True).agg(
            count=("run_code", "size"),
            flow_runs=("run_code", "nunique"),
            first=("moment", "min"),
            last=("moment", "max"),
            example=("error_message", "first"),
        )
        task_totals = agg.groupby(level=[0, 1])["count"].transform("sum")
        for (wf, tid, sig), row in agg.iterrows():
            groups.append(
                FailureGroup(
                    workflow=str(wf),
                    task_id=str(tid),
                    signature=str(sig),
                    count=int(row["count"]),
                    flow_runs=int(row["flow_runs"]),
                    share_of_task_failures=float(row["count"] / task_totals[(wf, tid, sig)]),
                    first_seen=epoch_to_timestamp(row["first"]) if np.isfinite(row["first"]) else None,
                    last_seen=epoch_to_timestamp(row["last"]) if np.isfinite(row["last"]) else None,
                    example=str(row["example"]) if row["example"] is not None else "",
                )
            )
        groups.sort(key=lambda g: (-g.count, g.workflow, g.task_id, g.signature))

    by_task = active.groupby(["workflow", "task_id"], sort=True)
    interesting = by_task.agg(failed=("failed", "any"), retried=("attempts", "max"))
    positions = by_task.indices
    profiles: list[RetryProfile] = []
    for wf, tid in interesting.index[(interesting["failed"]) | (interesting["retried"] > 1)]:
        group = active.iloc[positions[(wf, tid)]]
        profiles.append(_profile(str(wf), str(tid), group, failed_rows, moment, docs, config))

    failing_runs = runs[runs["state"].isin(FAILED_STATES)]
    explained = set(failed_rows["run_code"].unique().tolist())
    silent = failing_runs[~failing_runs["run_code"].isin(explained)]
    return FailureSection(
        groups=groups,
        retry_profiles=profiles,
        failed_runs_without_task_error={str(k): int(v) for k, v in silent["workflow"].value_counts().items()},
    )


def _profile(
    wf: str,
    tid: str,
    group: pd.DataFrame,
    failed_rows: pd.DataFrame,
    moment: pd.Series,
    docs: Mapping[str, DocInfo],
    config: AnalysisConfig,
) -> RetryProfile:
    attempts = group["attempts"].to_numpy(dtype=np.int64)
    completed = group["completed"].to_numpy()
    failed = group["failed"].to_numpy()
    sigs = failed_rows.loc[group.index[failed], "signature"]
    sig_counts = sigs.value_counts()
    doc = docs.get(wf)
    settings = doc.tasks.get(tid) if doc is not None else None
    profile = RetryProfile(
        workflow=wf,
        task_id=tid,
        task_runs=len(group),
        failed_final=int(failed.sum()),
        failure_rate=float(failed.mean()),
        retried=int((attempts > 1).sum()),
        succeeded_on_retry=int((completed & (attempts > 1)).sum()),
        failed_after_retries=int((failed & (attempts > 1)).sum()),
        configured_retries=settings.retries if settings is not None else 0,
        signatures=int(sig_counts.size),
        top_signature_share=float(sig_counts.iloc[0] / sig_counts.sum()) if sig_counts.size else None,
        failed_inputs_succeeded_elsewhere=_inputs_elsewhere(group),
        attempts=attempt_chances(attempts, completed),
        clustering=temporal_clustering(
            moment[group.index].to_numpy(dtype=np.float64),
            failed,
            group["run_code"].to_numpy(dtype=np.int64),
            config=config,
        ),
        classification="unclear",
    )
    profile.classification = _classify(profile, config)
    return profile
