"""Vectorised simulation of workflow runs for :mod:`tests.analytics.synthetic`.

All runs of a workflow are simulated together: tasks in topological order, fan-out items one after
another, each step a numpy operation over every run. Task runs take a slot from a per-run pool of
``max_parallel_tasks`` slots, so a tight limit produces the waits the analysis looks for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Messages = Callable[[np.random.Generator, int], list[str]]


@dataclass
class SimTask:
    """One task of a simulated workflow and how it behaves."""

    id: str
    needs: list[str] = field(default_factory=list)
    items: int = 1
    median: float = 10.0
    sigma: float = 0.15
    retries: int = 0
    delay: float = 0.0
    timeout: float | None = None
    slope_per_day: float = 0.0
    tail_share: float = 0.0
    tail_factor: tuple[float, float] = (8.0, 20.0)
    fail_p: float = 0.0
    fail_runs: BoolArray | None = None
    messages: Messages | None = None
    inputs_pool: int | None = None
    memory_mb: float = 200.0


@dataclass
class SimRuns:
    """When the runs of one workflow were due, and how they were triggered."""

    workflow: str
    version: str
    expected: FloatArray
    trigger: str
    max_parallel: int = 16


def _hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.integers(0, 2**63 - 1, size=(n, 2), dtype=np.int64)
    return [f"{a:016x}{b:016x}" for a, b in raw]


def _uuid_like(rng: np.random.Generator, n: int) -> list[str]:
    return [f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}" for h in _hex_ids(rng, n)]


def _attempts(
    task: SimTask, rng: np.random.Generator, n: int, day: FloatArray
) -> tuple[FloatArray, npt.NDArray[np.int64], BoolArray, BoolArray]:
    """(wall duration, attempts, succeeded, last attempt timed out) for one item of every run."""
    a = task.retries + 1
    noise = rng.lognormal(0.0, task.sigma, size=(n, a))
    durations = task.median * noise + task.slope_per_day * day[:, None]
    if task.tail_share:
        tail = rng.random(n) < task.tail_share
        durations[tail, 0] *= rng.uniform(*task.tail_factor, size=int(tail.sum()))
    fails = rng.random((n, a)) < task.fail_p
    if task.fail_runs is not None:
        fails |= task.fail_runs[:, None]
    timed_out = np.zeros((n, a), dtype=bool)
    if task.timeout is not None:
        timed_out = durations > task.timeout
        durations = np.minimum(durations, task.timeout)
        fails |= timed_out
    ok = ~fails
    succeeded = ok.any(axis=1)
    attempts = np.where(succeeded, ok.argmax(axis=1) + 1, a).astype(np.int64)
    used = np.arange(a)[None, :] < attempts[:, None]
    wall = (durations * used).sum(axis=1) + task.delay * (attempts - 1)
    last_timed_out: BoolArray = timed_out[np.arange(n), attempts - 1] & ~succeeded
    return np.asarray(wall, dtype=np.float64), attempts, np.asarray(succeeded, dtype=bool), last_timed_out


def simulate(
    tasks: list[SimTask], runs: SimRuns, rng: np.random.Generator, t0: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate every run of one workflow; returns (runs frame, tasks frame) in the input contract."""
    n = runs.expected.size
    queue = rng.lognormal(np.log(1.5), 0.5, size=n)
    run_start = runs.expected + queue
    day = (runs.expected - t0) / 86_400.0
    slots = np.repeat(run_start[:, None], runs.max_parallel, axis=1)
    rows_idx = np.arange(n)
    ok: dict[str, BoolArray] = {}  # task id -> runs where it succeeded
    ends: dict[str, FloatArray] = {}
    run_ok = np.ones(n, dtype=bool)
    run_ids = _uuid_like(rng, n)
    chunks: list[pd.DataFrame] = []
    for task in tasks:
        alive = np.ones(n, dtype=bool)
        ready = run_start.copy()
        for up in task.needs:
            alive &= ok[up]
            ready = np.maximum(ready, np.where(np.isfinite(ends[up]), ends[up], ready))
        task_ok = alive.copy()
        task_end = np.full(n, np.nan)
        for k in range(task.items):
            wall, attempts, succeeded, timed_out = _attempts(task, rng, n, day)
            slot = slots.argmin(axis=1)
            start = np.maximum(ready, slots[rows_idx, slot]) + rng.uniform(0.05, 0.3, size=n)
            end = start + wall
            slots[rows_idx[alive], slot[alive]] = end[alive]
            task_ok &= succeeded
            task_end = np.fmax(task_end, np.where(alive, end, np.nan))
            chunks.append(
                _task_rows(
                    task, k, runs, run_ids, alive, start, end, wall, attempts, succeeded, timed_out, rng
                )
            )
        ok[task.id] = task_ok
        ends[task.id] = task_end
        run_ok &= ~alive | task_ok
    last_end = np.nanmax(np.vstack(list(ends.values())), axis=0)
    run_end = np.where(np.isfinite(last_end), last_end, run_start) + rng.uniform(0.2, 1.0, size=n)
    run_frame = pd.DataFrame(
        {
            "flow_run_id": run_ids,
            "workflow": runs.workflow,
            "workflow_version": runs.version,
            "state": np.where(run_ok, "COMPLETED", "FAILED"),
            "expected_start_time": pd.to_datetime(runs.expected, unit="s", utc=True),
            "start_time": pd.to_datetime(run_start, unit="s", utc=True),
            "end_time": pd.to_datetime(run_end, unit="s", utc=True),
            "duration_seconds": run_end - run_start,
            "queue_wait_seconds": queue,
            "trigger": runs.trigger,
        }
    )
    return run_frame, pd.concat(chunks, ignore_index=True)


def _task_rows(
    task: SimTask,
    item: int,
    runs: SimRuns,
    run_ids: list[str],
    alive: BoolArray,
    start: FloatArray,
    end: FloatArray,
    wall: FloatArray,
    attempts: npt.NDArray[np.int64],
    succeeded: BoolArray,
    timed_out: BoolArray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    idx = np.flatnonzero(alive)
    m = idx.size
    good = succeeded[idx]
    errors: list[str | None] = [None] * m
    bad = np.flatnonzero(~good)
    if bad.size:
        texts = task.messages(rng, bad.size) if task.messages else ["RuntimeError: failed"] * bad.size
        for j, pos in enumerate(bad):
            limit = task.timeout or 0.0
            errors[pos] = (
                f"TimeoutError: Task run exceeded timeout of {limit} seconds"
                if timed_out[idx[pos]]
                else texts[j]
            )
    if task.inputs_pool:
        keys = rng.integers(0, task.inputs_pool, size=m)
        inputs = [f"{task.id}-in-{k:04d}" for k in keys]
        outputs = [f"{task.id}-out-{k:04d}" if g else None for k, g in zip(keys, good, strict=True)]
    else:
        hexes = _hex_ids(rng, m)
        inputs = hexes
        outputs = [f"o{h[1:]}" if g else None for h, g in zip(hexes, good, strict=True)]
    name = f"{task.id}[{item}]" if task.items > 1 else task.id
    return pd.DataFrame(
        {
            "flow_run_id": [run_ids[i] for i in idx],
            "workflow": runs.workflow,
            "task_id": task.id,
            "task_run_name": name,
            "state": np.where(good, "COMPLETED", "FAILED"),
            "state_name": np.where(good, "Completed", "Failed"),
            "start_time": pd.to_datetime(start[idx], unit="s", utc=True),
            "end_time": pd.to_datetime(end[idx], unit="s", utc=True),
            "duration_seconds": end[idx] - start[idx],
            "attempts": attempts[idx],
            "cpu_seconds": wall[idx] * rng.uniform(0.3, 0.9, size=m),
            "peak_memory_bytes": task.memory_mb * 2**20 * rng.lognormal(0.0, 0.1, size=m),
            "error_message": errors,
            "inputs_hash": inputs,
            "output_hash": outputs,
        }
    )
