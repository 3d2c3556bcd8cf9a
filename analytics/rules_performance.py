"""Rules about time: timeouts from the duration tail, caching of repeated work, parallelism limits."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from analytics.config import AnalysisConfig
from analytics.proposals import Proposal, num, pct, secs
from analytics.report_model import Parallelism
from analytics.stats import MAD_FLOOR, nice_ceil, plain
from analytics.workflow_doc import DocInfo, TaskSettings
from analytics.yaml_diff import Edit

_TIMEOUT_WORDS = re.compile(r"time[d]?\s*-?out|timeout|deadline exceeded", re.IGNORECASE)
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
MAX_CACHE_EXPIRY_SECONDS = 366 * 24 * 3600.0


def _body_p99(durations: np.ndarray, config: AnalysisConfig) -> tuple[float, int]:
    """p99 of the durations without robust outliers (log-scale z above ``anomaly_z``)."""
    logs = np.log(np.maximum(durations, 1e-6))
    med = np.median(logs)
    mad = max(float(np.median(np.abs(logs - med))), MAD_FLOOR)
    body = durations[0.6745 * (logs - med) / mad <= config.anomaly_z]
    return float(np.percentile(body, 99)), int(durations.size - body.size)


def timeout_proposals(
    workflow: str, doc: DocInfo, tasks: pd.DataFrame, *, config: AnalysisConfig
) -> list[Proposal]:
    """Timeouts for tasks with a long tail and none set, or a limit that kills healthy runs."""
    out: list[Proposal] = []
    for task_id, pos in tasks.groupby("task_id", sort=True).indices.items():
        settings = doc.tasks.get(str(task_id))
        if settings is None:
            continue
        rows = tasks.iloc[pos]
        rows = rows[~rows["skipped"].to_numpy() & ~rows["cached"].to_numpy()]
        if settings.timeout_seconds is None:
            proposal = _missing_timeout(workflow, settings, rows, config)
        else:
            proposal = _tight_timeout(workflow, settings, rows, config)
        if proposal is not None:
            out.append(proposal)
    return out


def _missing_timeout(
    workflow: str, settings: TaskSettings, rows: pd.DataFrame, config: AnalysisConfig
) -> Proposal | None:
    single = rows[rows["attempts"].to_numpy() == 1]
    d = single["duration"].to_numpy(dtype=np.float64)
    usable = np.isfinite(d) & (d > 0)
    d, completed = d[usable], single["completed"].to_numpy()[usable]
    if d.size < config.timeout_min_runs:
        return None
    p50, p95, p99 = (float(x) for x in np.percentile(d, [50, 95, 99]))
    body_p99, outliers = _body_p99(d, config)
    limit = plain(min(nice_ceil(body_p99 * config.timeout_tail_factor), MAX_TIMEOUT_SECONDS))
    over_mask = d > limit
    over = d[over_mask]
    share = over.size / d.size
    # A slow mode that many runs share is a workload, not a tail to cut off.
    if (
        over.size < 2
        or share > config.timeout_max_tail_share
        or d.max() < config.timeout_long_tail_ratio * p50
    ):
        return None
    excess = float((over - limit).sum())
    over_completed = int(completed[over_mask].sum())
    return Proposal(
        workflow=workflow,
        task_id=settings.task_id,
        kind="timeout",
        title=(
            f"Set timeout_seconds: {limit:g} on {settings.task_id} "
            f"(no limit today; {over.size} runs ran past it)"
        ),
        evidence={
            "task_runs": int(d.size),
            "p50_seconds": num(p50),
            "p95_seconds": num(p95),
            "p99_seconds": num(p99),
            "max_seconds": num(float(d.max())),
            "p99_without_outliers_seconds": num(body_p99),
            "outliers": outliers,
            "current_timeout_seconds": None,
            "proposed_timeout_seconds": limit,
            "runs_over_proposed": int(over.size),
            "share_over_proposed": num(share, 5),
            "over_proposed_completed": over_completed,
            "seconds_past_proposed": num(excess),
        },
        expected_effect=(
            f"{over.size} of {d.size} task runs ({pct(share)}) ran longer than {secs(limit)}, up to "
            f"{secs(float(d.max()))} against a median of {secs(p50)}, and {over_completed} of them "
            f"completed in the end; stopping them at the limit frees {secs(excess)} of worker time "
            "in this window."
        ),
        severity="high" if share >= 0.02 else "medium",
        edits=[Edit(settings.task_id, ("timeout_seconds",), limit)],
    )


def _tight_timeout(
    workflow: str, settings: TaskSettings, rows: pd.DataFrame, config: AnalysisConfig
) -> Proposal | None:
    limit = float(settings.timeout_seconds or 0.0)
    per_attempt = rows["duration"].to_numpy(dtype=np.float64) / rows["attempts"].to_numpy()
    messages = rows["error_message"].fillna("").astype(str)
    failed = rows["failed"].to_numpy()
    timed_out = failed & ((per_attempt >= 0.95 * limit) | messages.str.contains(_TIMEOUT_WORDS).to_numpy())
    ok = rows["completed"].to_numpy() & (rows["attempts"].to_numpy() == 1)
    d = rows["duration"].to_numpy(dtype=np.float64)[ok]
    if int(timed_out.sum()) < config.retry_min_failures or d.size < config.timeout_min_runs:
        return None
    p95, p99 = (float(x) for x in np.percentile(d, [95, 99]))
    if p99 < config.timeout_tight_close * limit:
        return None
    proposed = plain(
        min(max(nice_ceil(p99 * config.timeout_tail_factor), nice_ceil(limit * 1.25)), MAX_TIMEOUT_SECONDS)
    )
    share = timed_out.sum() / len(rows)
    return Proposal(
        workflow=workflow,
        task_id=settings.task_id,
        kind="timeout",
        title=f"Raise timeout_seconds of {settings.task_id} from {limit:g} to {proposed:g}",
        evidence={
            "task_runs": len(rows),
            "timed_out": int(timed_out.sum()),
            "timed_out_share": num(float(share), 5),
            "current_timeout_seconds": limit,
            "completed_p95_seconds": num(p95),
            "completed_p99_seconds": num(p99),
            "p99_of_limit": num(p99 / limit),
            "proposed_timeout_seconds": proposed,
        },
        expected_effect=(
            f"{int(timed_out.sum())} of {len(rows)} task runs ({pct(float(share))}) failed at the "
            f"{secs(limit)} limit while completed runs reach {secs(p99)} at p99 "
            f"({pct(p99 / limit)} of the limit); "
            f"{secs(proposed)} leaves {config.timeout_tail_factor:g}x the completed p99."
        ),
        severity="high" if share >= 0.02 else "medium",
        edits=[Edit(settings.task_id, ("timeout_seconds",), proposed)],
    )


def cache_proposals(
    workflow: str, doc: DocInfo, tasks: pd.DataFrame, *, config: AnalysisConfig
) -> list[Proposal]:
    """Caching for tasks that keep repeating the same inputs with the same output."""
    out: list[Proposal] = []
    usable = tasks[
        tasks["completed"].to_numpy()
        & ~tasks["skipped"].to_numpy()
        & ~tasks["cached"].to_numpy()
        & tasks["inputs_hash"].notna().to_numpy()
        & tasks["output_hash"].notna().to_numpy()
    ]
    for task_id, pos in usable.groupby("task_id", sort=True).indices.items():
        settings = doc.tasks.get(str(task_id))
        if settings is None or settings.cache_enabled or len(pos) < config.cache_min_runs:
            continue
        proposal = _cache(workflow, settings, usable.iloc[pos].sort_values("t_start"), config)
        if proposal is not None:
            out.append(proposal)
    return out


def _cache(
    workflow: str, settings: TaskSettings, rows: pd.DataFrame, config: AnalysisConfig
) -> Proposal | None:
    n = len(rows)
    repeat = rows["inputs_hash"].duplicated().to_numpy()
    repeat_share = float(repeat.mean())
    if not repeat.any() or repeat_share < config.cache_min_repeat_share:
        return None
    outputs_per_input = rows.groupby("inputs_hash")["output_hash"].transform("nunique").to_numpy()
    repeated_inputs = rows["inputs_hash"].duplicated(keep=False).to_numpy()
    consistency = float((outputs_per_input[repeated_inputs] == 1).mean())
    if consistency < config.cache_min_consistency:
        return None
    # Time since the same inputs were last seen (NaN for first sightings).
    since_last = rows.groupby("inputs_hash")["t_start"].diff().to_numpy(dtype=np.float64)
    gaps = since_last[np.isfinite(since_last)]
    expiry = plain(min(max(nice_ceil(float(np.percentile(gaps, 90))), 60.0), MAX_CACHE_EXPIRY_SECONDS))
    hits = repeat & (np.nan_to_num(since_last, nan=math.inf) <= expiry)
    saved = float(np.nansum(rows["duration"].to_numpy(dtype=np.float64)[hits]))
    cpu = float(np.nansum(rows["cpu"].to_numpy(dtype=np.float64)[hits]))
    if saved < config.cache_min_saved_seconds:
        return None
    distinct = int(rows["inputs_hash"].nunique())
    return Proposal(
        workflow=workflow,
        task_id=settings.task_id,
        kind="cache",
        title=f"Cache {settings.task_id}: {pct(repeat_share)} of its runs repeat earlier inputs",
        evidence={
            "task_runs": n,
            "distinct_inputs": distinct,
            "repeats": int(repeat.sum()),
            "repeat_share": num(repeat_share, 5),
            "same_output_share": num(consistency, 5),
            "repeat_gap_p50_seconds": num(float(np.median(gaps))),
            "repeat_gap_p90_seconds": num(float(np.percentile(gaps, 90))),
            "proposed_expiry_seconds": expiry,
            "hits_within_expiry": int(hits.sum()),
            "seconds_saved": num(saved),
            "cpu_seconds_saved": num(cpu),
        },
        expected_effect=(
            f"{int(repeat.sum())} of {n} completed runs repeated one of {distinct} distinct inputs and "
            f"{pct(consistency)} of repeats gave the same output; with a {secs(expiry)} expiry, "
            f"{int(hits.sum())} runs ({secs(saved)}, {secs(cpu)} CPU) would have reused a cached result."
        ),
        severity="medium" if saved >= 3600 else "low",
        edits=[Edit(settings.task_id, ("cache",), {"enabled": True, "expiry_seconds": expiry})],
    )


def parallelism_proposal(
    workflow: str, stats: Parallelism | None, *, config: AnalysisConfig
) -> Proposal | None:
    """Raise ``max_parallel_tasks`` when task runs keep waiting for a slot."""
    if stats is None or stats.delayed_task_runs < 10 or stats.delayed_share < config.parallel_min_share:
        return None
    demand = stats.peak_demand_p95 or 0.0
    proposed = int(min(max(stats.max_parallel_tasks + 1, math.ceil(demand)), 10_000))
    top = sorted(stats.delayed_by_task.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return Proposal(
        workflow=workflow,
        task_id=None,
        kind="parallelism",
        title=f"Raise concurrency.max_parallel_tasks from {stats.max_parallel_tasks} to {proposed}",
        evidence={
            "max_parallel_tasks": stats.max_parallel_tasks,
            "task_runs_checked": stats.task_runs_checked,
            "delayed_task_runs": stats.delayed_task_runs,
            "delayed_share": num(stats.delayed_share, 5),
            "delayed_wait_mean_seconds": num(stats.delayed_wait_mean_seconds),
            "delayed_wait_p95_seconds": num(stats.delayed_wait_p95_seconds),
            "runs_affected": stats.runs_affected,
            "wait_per_affected_run_mean_seconds": num(stats.wait_per_affected_run_mean_seconds),
            "peak_demand_p95": num(stats.peak_demand_p95),
            "peak_demand_max": stats.peak_demand_max,
            "delayed_by_task": dict(top),
            "proposed_max_parallel_tasks": proposed,
        },
        expected_effect=(
            f"{stats.delayed_task_runs} of {stats.task_runs_checked} task runs ({pct(stats.delayed_share)}) "
            f"were ready but waited a mean {secs(stats.delayed_wait_mean_seconds)} for one of "
            f"{stats.max_parallel_tasks} slots; the {stats.runs_affected} affected runs waited "
            f"{secs(stats.wait_per_affected_run_mean_seconds)} each. "
            f"At p95, {demand:g} task runs were ready or running at once."
        ),
        severity="high" if stats.delayed_share >= 0.25 else "medium",
        edits=[Edit(None, ("concurrency", "max_parallel_tasks"), proposed)],
    )
