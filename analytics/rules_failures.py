"""Rules about failures: retries where they help, none where they cannot, jitter where failures
come in bursts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analytics.config import AnalysisConfig
from analytics.proposals import Proposal, num, pct, secs
from analytics.report_model import RetryProfile
from analytics.stats import nice_ceil, plain
from analytics.workflow_doc import DocInfo, TaskSettings
from analytics.yaml_diff import REMOVE, Edit

MAX_DELAY_SECONDS = 24 * 3600.0


def failure_proposals(
    workflow: str,
    doc: DocInfo,
    profiles: list[RetryProfile],
    tasks: pd.DataFrame,
    *,
    config: AnalysisConfig,
) -> list[Proposal]:
    """Retry-related proposals for the failing tasks of one workflow."""
    out: list[Proposal] = []
    positions = tasks.groupby("task_id", sort=True).indices
    for profile in profiles:
        settings = doc.tasks.get(profile.task_id)
        if settings is None:
            continue
        proposal: Proposal | None = None
        if profile.classification == "clustered":
            proposal = _jitter(workflow, settings, profile, config)
        elif profile.classification == "transient":
            proposal = _more_retries(workflow, settings, profile, config)
        elif profile.classification == "deterministic" and settings.retries > 0:
            rows = tasks.iloc[positions[profile.task_id]]
            proposal = _no_retries(workflow, settings, profile, rows)
        if proposal is not None:
            out.append(proposal)
    return out


def retry_success_chance(profile: RetryProfile) -> tuple[float | None, str]:
    """Chance that a retry succeeds, and where the estimate comes from."""
    later = [a for a in profile.attempts if a.attempt > 1]
    reached = sum(a.reached for a in later)
    if reached:
        return sum(a.succeeded for a in later) / reached, "observed on retries"
    elsewhere = profile.failed_inputs_succeeded_elsewhere
    if elsewhere is not None and elsewhere >= 0.5 and profile.attempts:
        return profile.attempts[
            0
        ].chance, "first-attempt success rate (failed inputs succeeded in other runs)"
    return None, "no retry data"


def _more_retries(
    workflow: str, settings: TaskSettings, profile: RetryProfile, config: AnalysisConfig
) -> Proposal | None:
    q, basis = retry_success_chance(profile)
    if q is None or q <= 0 or not profile.attempts:
        return None
    if (
        profile.failed_final < config.retry_min_failures
        or profile.failure_rate <= config.retry_target_failure_rate
    ):
        return None
    first_fail = 1.0 - profile.attempts[0].chance
    target = config.retry_target_failure_rate
    needed = 1 if q >= 1 else max(1, math.ceil(math.log(target / first_fail) / math.log(1.0 - q)))
    retries = min(max(needed, settings.retries + 1), config.retry_max_recommended)
    if retries <= settings.retries:
        return None
    projected = first_fail * (1.0 - q) ** retries
    expected_attempts = 1.0 + first_fail * sum((1.0 - q) ** i for i in range(retries))
    return Proposal(
        workflow=workflow,
        task_id=settings.task_id,
        kind="retries",
        title=(
            f"Raise retries of {settings.task_id} from {settings.retries} to {retries}: "
            "failures are transient"
        ),
        evidence={
            "task_runs": profile.task_runs,
            "failed_final": profile.failed_final,
            "failure_rate": num(profile.failure_rate, 5),
            "first_attempt_failure_rate": num(first_fail, 5),
            "retry_success_chance": num(q, 5),
            "retry_success_basis": basis,
            "succeeded_on_retry": profile.succeeded_on_retry,
            "attempt_success": {str(a.attempt): num(a.chance, 5) for a in profile.attempts},
            "current_retries": settings.retries,
            "proposed_retries": retries,
            "projected_failure_rate": num(projected, 6),
            "expected_attempts_per_run": num(expected_attempts),
        },
        expected_effect=(
            f"{profile.failed_final} of {profile.task_runs} task runs ({pct(profile.failure_rate)}) "
            f"failed for good; the first attempt fails {pct(first_fail)} of the time and a retry "
            f"succeeds {pct(q)} ({basis}), so "
            f"{retries} retries bring the final failure rate to about {pct(projected)} at "
            f"{expected_attempts:.2f} attempts per run."
        ),
        severity="high" if profile.failure_rate >= 0.05 else "medium",
        edits=[Edit(settings.task_id, ("retries",), retries)],
    )


def _no_retries(workflow: str, settings: TaskSettings, profile: RetryProfile, rows: pd.DataFrame) -> Proposal:
    failed = rows[rows["failed"].to_numpy() & (rows["attempts"].to_numpy() > 1)]
    attempts = failed["attempts"].to_numpy()
    durations = failed["duration"].to_numpy(dtype=np.float64)
    wasted_attempts = int((attempts - 1).sum())
    wasted_seconds = float(np.nansum(durations * (attempts - 1) / attempts))
    sooner = wasted_seconds / max(len(failed), 1)
    return Proposal(
        workflow=workflow,
        task_id=settings.task_id,
        kind="no_retries",
        title=f"Set retries of {settings.task_id} to 0: its failures repeat on every attempt",
        evidence={
            "task_runs": profile.task_runs,
            "failed_final": profile.failed_final,
            "failed_after_retries": profile.failed_after_retries,
            "succeeded_on_retry": profile.succeeded_on_retry,
            "signatures": profile.signatures,
            "top_signature_share": num(profile.top_signature_share, 5),
            "current_retries": settings.retries,
            "wasted_attempts": wasted_attempts,
            "wasted_seconds_estimate": num(wasted_seconds),
        },
        expected_effect=(
            f"None of the {profile.failed_after_retries} retried failures succeeded and "
            f"{pct(profile.top_signature_share)} share one error signature; without retries this window "
            f"saves {wasted_attempts} attempts (about {secs(wasted_seconds)}) and each failing run "
            f"reports {secs(sooner)} sooner."
        ),
        severity="medium",
        edits=[Edit(settings.task_id, ("retries",), 0)],
    )


def _jitter(workflow: str, settings: TaskSettings, profile: RetryProfile, config: AnalysisConfig) -> Proposal:
    c = profile.clustering
    span = c.cluster_span_p50_seconds or 0.0
    cover = min(max(2.0 * span, c.window_seconds), MAX_DELAY_SECONDS)
    retries = min(max(settings.retries, 3), config.retry_max_recommended)
    base = min(nice_ceil(cover / (2**retries - 1)), MAX_DELAY_SECONDS)
    cap = min(nice_ceil(base * 2 ** (retries - 1)), MAX_DELAY_SECONDS)
    backoff = {"base_seconds": plain(base), "factor": 2, "cap_seconds": plain(cap), "jitter": 0.5}
    total = sum(min(cap, base * 2**i) for i in range(retries))
    edits = [
        Edit(settings.task_id, ("retry_backoff",), backoff),
        Edit(settings.task_id, ("retry_delay_seconds",), REMOVE),
    ]
    if retries != settings.retries:
        edits.insert(0, Edit(settings.task_id, ("retries",), retries))
    return Proposal(
        workflow=workflow,
        task_id=settings.task_id,
        kind="jitter",
        title=(
            f"Spread retries of {settings.task_id} with exponential backoff and jitter: "
            "failures come in bursts"
        ),
        evidence={
            "task_runs": profile.task_runs,
            "failures": c.failures,
            "clustered_failures": c.clustered_failures,
            "clusters": c.clusters,
            "window_seconds": c.window_seconds,
            "concentration_ratio": num(c.concentration_ratio),
            "cluster_span_p50_seconds": num(c.cluster_span_p50_seconds),
            "cluster_span_max_seconds": num(c.cluster_span_max_seconds),
            "succeeded_on_retry": profile.succeeded_on_retry,
            "current_retries": settings.retries,
            "current_retry_delay_seconds": settings.retry_delay_seconds,
            "proposed_retries": retries,
            "proposed_retry_backoff": backoff,
            "retry_window_seconds": num(total),
        },
        expected_effect=(
            f"{c.clustered_failures} of {c.failures} failures came in {c.clusters} bursts of at least "
            f"{config.cluster_min_runs} runs within {secs(c.window_seconds)}, "
            f"{c.concentration_ratio or 0:.1f}x more bunched than the task's run rate explains, and "
            f"{profile.succeeded_on_retry} retries succeeded; "
            f"{retries} retries with 50% jitter spread over about {secs(total)}, past the median burst "
            f"of {secs(span)}."
        ),
        severity="high" if profile.failure_rate >= 0.05 else "medium",
        edits=edits,
    )
