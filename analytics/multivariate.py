"""Multivariate anomalies: an isolation forest per workflow task, explained by the task's baseline.

Features of a task run (whichever the history has; a feature most of a task's runs lack is left
out for that task):

* ``duration_seconds`` -- wall time of the task run;
* ``queue_wait_seconds`` -- from when the task run could start to when it started: for a task
  without upstreams, from its run's expected start; for the others, from when their last upstream
  finished. Without the workflow's DAG, the run's own wait (expected start to start);
* ``cpu_seconds`` and ``peak_memory_bytes`` -- as the executor measured them;
* ``attempts`` -- how many times it ran.

Output size is not recorded by the executor (only a hash of the output), so it is not a feature.

The model of a task (:class:`~analytics.learning_model.TaskModel`) is a bounded, uniform sample of
its recent task runs: each task run gets a fixed pseudo-random priority from its ids, and the
sample keeps the ``mv_sample_size`` lowest priorities among the runs of its last
``mv_sample_days`` days. Updating it with a window only looks at the task runs newer than the
last one folded in, so a window that adds a few runs changes a few rows of the sample at most.
The baseline is the sample's median and MAD of ``log1p`` of each feature. The forest
(``mv_trees`` trees) is fitted on the sample; it is only built for a task that has a candidate
to judge.

A task run is reported when its isolation-forest anomaly score reaches ``mv_min_score`` (0.5 is
an ordinary point) and at least one feature deviates from the baseline by ``mv_feature_z``
robust z and ``mv_min_ratio`` times the median, up or down (and, for times, at least
``anomaly_min_abs_seconds`` apart): those features are the explanation.
Only task runs with such a feature can be reported, so only they are scored.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.ensemble import IsolationForest

from analytics.config import AnalysisConfig
from analytics.frames import epoch_to_timestamp
from analytics.learning_model import (
    TASK_BASELINE,
    FeatureValue,
    LearnedModels,
    MultivariateAnomaly,
    MultivariateSection,
    TaskCheck,
    TaskModel,
)
from analytics.stats import MAD_FLOOR

FloatArray = npt.NDArray[np.float64]
FEATURES = ("duration_seconds", "queue_wait_seconds", "cpu_seconds", "peak_memory_bytes", "attempts")
_SECONDS = frozenset({"duration_seconds", "queue_wait_seconds", "cpu_seconds"})
UNAVAILABLE_FEATURES = ("output_size_bytes",)
_MAD_SCALE = 0.6745
_MIN_PRESENT = 0.5  # share of a task's runs that must have a feature for it to be used


def queue_waits(tasks: pd.DataFrame, run_queue_wait: FloatArray, roots: set[str] | None) -> FloatArray:
    """Each task run's wait (see the module docs); ``roots`` are the tasks without upstreams, None
    when the DAG is unknown."""
    run_wait = run_queue_wait[tasks["run_code"].to_numpy(dtype=np.int64)]
    if roots is None or "ready_wait" not in tasks:
        fallback: FloatArray = np.maximum(run_wait, 0.0)
        return fallback
    ready = tasks["ready_wait"].to_numpy(dtype=np.float64)
    root = tasks["task_id"].isin(roots).to_numpy()
    # A root's ready wait runs from its run's start; its run's own wait comes before that.
    wait: FloatArray = np.where(
        root, np.where(np.isnan(run_wait), np.nan, np.nan_to_num(run_wait) + ready), ready
    )
    return np.maximum(wait, 0.0)


def feature_frame(tasks: pd.DataFrame, run_queue_wait: FloatArray, roots: set[str] | None) -> pd.DataFrame:
    """The features of every task run of ``tasks`` (prepared rows of one workflow, with
    ``ready_wait`` when the DAG analysis ran); ``run_queue_wait`` is indexed by ``run_code``."""
    wait = queue_waits(tasks, run_queue_wait, roots)
    return pd.DataFrame(
        {
            "duration_seconds": tasks["duration"].to_numpy(dtype=np.float64),
            "queue_wait_seconds": wait,
            "cpu_seconds": tasks["cpu"].to_numpy(dtype=np.float64),
            "peak_memory_bytes": tasks["memory"].to_numpy(dtype=np.float64),
            "attempts": tasks["attempts"].to_numpy(dtype=np.float64),
        },
        index=tasks.index,
    )


def run_hashes(flow_run_ids: npt.NDArray[np.object_]) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each flow run id (the same in every report)."""
    hashed: npt.NDArray[np.uint64] = pd.util.hash_array(flow_run_ids.astype(str).astype(object))
    return hashed


def priorities(runs: npt.NDArray[np.uint64], codes: npt.NDArray[np.int64], names: pd.Series) -> FloatArray:
    """A fixed pseudo-random number in [0, 1) per task run, from its flow run's hash (``runs``,
    indexed by ``codes``) and its name: the same task run gets the same number in every report."""
    name_codes, name_values = pd.factorize(names.astype(str))
    name_hash = pd.util.hash_array(np.asarray(name_values, dtype=object))
    mixed = pd.util.hash_array(runs[codes] ^ (name_hash[name_codes] * np.uint64(0x9E3779B97F4A7C15)))
    uniform: FloatArray = (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return uniform


def _logs(values: FloatArray) -> FloatArray:
    return np.log1p(np.maximum(values, 0.0))


def _baseline(sample: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Median and MAD of log1p of each feature (a feature the sample lacks: 0 and the floor)."""
    logs = pd.DataFrame(_logs(sample))
    median = logs.median().fillna(0.0).to_numpy(dtype=np.float64)
    mad = (logs - median).abs().median().fillna(0.0).to_numpy(dtype=np.float64)
    return median, np.maximum(mad, MAD_FLOOR)


def _update(
    prior: TaskModel | None,
    features: list[str],
    values: FloatArray,
    keys: FloatArray,
    times: FloatArray,
    config: AnalysisConfig,
) -> tuple[TaskModel | None, FloatArray, bool]:
    """Fold the task runs newer than the model's into its sample; returns the new sample (values)
    and whether anything changed. ``prior`` is ignored when its features differ."""
    if prior is not None and prior.features != features:
        prior = None
    seen = prior.seen_until if prior is not None and prior.seen_until is not None else -math.inf
    fresh = np.isfinite(times) & (times > seen)
    old_values = np.array(prior.sample, dtype=np.float64).reshape(-1, len(features)) if prior else None
    old_keys = np.asarray(prior.keys if prior else [], dtype=np.float64)
    old_times = np.asarray(prior.times if prior else [], dtype=np.float64)
    if not fresh.any():
        return prior, old_values if old_values is not None else np.zeros((0, len(features))), False
    pool_values = np.vstack([v for v in (old_values, values[fresh]) if v is not None])
    pool_keys = np.concatenate([old_keys, keys[fresh]])
    pool_times = np.concatenate([old_times, times[fresh]])
    newest = float(np.nanmax(pool_times))
    recent = pool_times >= newest - config.mv_sample_days * 86_400.0
    order = np.flatnonzero(recent)[np.argsort(pool_keys[recent], kind="stable")][: config.mv_sample_size]
    order = np.sort(order)
    sample = pool_values[order]
    median, mad = _baseline(sample)
    model = TaskModel(
        workflow="",
        task_id="",
        features=features,
        sample=[[None if not math.isfinite(x) else float(x) for x in row] for row in sample],
        keys=[float(k) for k in pool_keys[order]],
        times=[float(t) for t in pool_times[order]],
        seen_until=max(newest, seen),
        median=dict(zip(features, map(float, median), strict=True)),
        mad=dict(zip(features, map(float, mad), strict=True)),
    )
    return model, sample, True


def _groups(
    tasks_by_workflow: Mapping[str, pd.DataFrame], run_queue_wait: FloatArray, roots: Mapping[str, set[str]]
) -> Iterator[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    for workflow, frame in sorted(tasks_by_workflow.items()):
        usable = frame[~frame["skipped"].to_numpy() & ~frame["cached"].to_numpy()]
        features = feature_frame(usable, run_queue_wait, roots.get(workflow))
        for task_id, positions in sorted(usable.groupby("task_id", sort=True).indices.items()):
            yield workflow, str(task_id), usable.iloc[positions], features.iloc[positions]


def _explain(
    row: FloatArray, features: list[str], median: FloatArray, mad: FloatArray, config: AnalysisConfig
) -> list[FeatureValue]:
    logs = _logs(row)
    z = _MAD_SCALE * (logs - median) / mad
    base = np.expm1(median)
    out = []
    for name, value, b, score in zip(features, row, base, z, strict=True):
        if not (math.isfinite(value) and math.isfinite(score)):
            continue
        ratio = value / b if b > 0 else math.inf
        far = ratio >= config.mv_min_ratio or ratio <= 1 / config.mv_min_ratio
        if name in _SECONDS:
            far = far and abs(value - b) >= config.anomaly_min_abs_seconds
        if abs(score) >= config.mv_feature_z and far:
            out.append(
                FeatureValue(
                    name, float(value), float(b), float(score), float(ratio) if math.isfinite(ratio) else None
                )
            )
    out.sort(key=lambda f: -abs(f.robust_z or 0.0))
    return out


def detect_multivariate(
    tasks_by_workflow: Mapping[str, pd.DataFrame],
    run_queue_wait: FloatArray,
    flow_run_ids: npt.NDArray[np.object_],
    models: LearnedModels,
    *,
    roots: Mapping[str, set[str]],
    config: AnalysisConfig,
) -> MultivariateSection:
    """Multivariate anomalies of every task with enough history; ``roots`` maps a workflow to its
    tasks without upstreams (workflows without a known DAG are absent). ``models`` is updated in
    place."""
    anomalies: list[MultivariateAnomaly] = []
    checks: list[TaskCheck] = []
    hashes = run_hashes(flow_run_ids)
    for workflow, task_id, rows, frame in _groups(tasks_by_workflow, run_queue_wait, roots):
        found, check = _task(workflow, task_id, rows, frame, (flow_run_ids, hashes), models, config)
        anomalies += found
        if check is not None:
            checks.append(check)
    anomalies.sort(key=lambda a: (-a.score, a.workflow, a.task, a.flow_run_id))
    return MultivariateSection(
        anomalies=anomalies[: config.mv_max_listed],
        checks=checks,
        min_score=config.mv_min_score,
        feature_z=config.mv_feature_z,
        unavailable_features=list(UNAVAILABLE_FEATURES),
    )


def _task(
    workflow: str,
    task_id: str,
    rows: pd.DataFrame,
    frame: pd.DataFrame,
    runs: tuple[npt.NDArray[np.object_], npt.NDArray[np.uint64]],
    models: LearnedModels,
    config: AnalysisConfig,
) -> tuple[list[MultivariateAnomaly], TaskCheck | None]:
    flow_run_ids, hashes = runs
    present = frame.notna().mean()
    features = [f for f in FEATURES if present[f] >= _MIN_PRESENT]
    key = LearnedModels.task_key(workflow, task_id)
    if not features:
        return [], None
    values = frame[features].to_numpy(dtype=np.float64)
    codes = rows["run_code"].to_numpy(dtype=np.int64)
    times = rows["t_start"].fillna(rows["t_end"]).to_numpy(dtype=np.float64)
    prior = models.tasks.get(key)
    keys = priorities(hashes, codes, rows["task_run_name"])
    model, sample, changed = _update(prior, features, values, keys, times, config)
    if model is None:
        return [], None
    if changed:
        model.workflow, model.task_id = workflow, task_id
        models.update(TASK_BASELINE, key, model)
    ref = models.ref(TASK_BASELINE, key)
    if len(sample) < config.mv_min_history:
        return [], TaskCheck(workflow, task_id, len(rows), features, len(sample), 0)
    median = np.array([model.median[f] for f in features])
    mad = np.array([model.mad[f] for f in features])
    logs = _logs(values)
    z = _MAD_SCALE * (logs - median) / mad
    ratio = np.exp(logs - median)
    far = (ratio >= config.mv_min_ratio) | (ratio <= 1 / config.mv_min_ratio)
    seconds = np.array([f in _SECONDS for f in features])
    far &= ~seconds | (np.abs(values - np.expm1(median)) >= config.anomaly_min_abs_seconds)
    candidates = np.flatnonzero(np.nan_to_num((np.abs(z) >= config.mv_feature_z) & far).any(axis=1))
    if candidates.size == 0:
        return [], TaskCheck(workflow, task_id, len(rows), features, len(sample), 0)
    training = np.where(np.isnan(_logs(sample)), median, _logs(sample))
    forest = IsolationForest(
        n_estimators=config.mv_trees, max_samples=min(256, len(sample)), random_state=config.seed
    ).fit(training)
    judged = np.where(np.isnan(logs[candidates]), median, logs[candidates])
    scores = -forest.score_samples(judged)
    found: list[MultivariateAnomaly] = []
    for i, score in zip(candidates, scores, strict=True):
        explanation = _explain(values[i], features, median, mad, config)
        if score < config.mv_min_score or not explanation:
            continue
        row = rows.iloc[i]
        found.append(
            MultivariateAnomaly(
                workflow=workflow,
                task=task_id,
                flow_run_id=str(flow_run_ids[codes[i]]),
                score=float(score),
                features=explanation,
                task_run_name=str(row["task_run_name"]),
                state=str(row["state"]),
                start_time=epoch_to_timestamp(times[i]) if math.isfinite(times[i]) else None,
                model=ref,
                new=bool(prior is None or prior.seen_until is None or times[i] > prior.seen_until),
            )
        )
    return found, TaskCheck(workflow, task_id, len(rows), features, len(sample), len(found))
