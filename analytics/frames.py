"""The input contract of the analytics: two pandas frames and a per-workflow context.

The harvest (a Prefect flow reading run history) produces these; everything in ``analytics`` reads
only them.

``runs`` -- one row per flow run:

=====================  ==========================================================================
flow_run_id            str, unique
workflow               str, the workflow name
workflow_version       str
state                  Prefect state type: COMPLETED, FAILED, CRASHED, CANCELLED, ...
expected_start_time    tz-aware UTC datetime (scheduled start), may be NaT
start_time             tz-aware UTC datetime, may be NaT
end_time               tz-aware UTC datetime, may be NaT
duration_seconds       float, end - start (NaN when unknown)
queue_wait_seconds     float, start - expected start (NaN when unknown)
trigger                optional str: "schedule", "manual", "automation", ... (trigger patterns)
=====================  ==========================================================================

``tasks`` -- one row per task run:

=====================  ==========================================================================
flow_run_id            str, the flow run it belongs to
workflow               str
task_id                str, the spec task id (fan-out items share it)
task_run_name          str, "id" or "id[3]" for fan-out item 3
state                  Prefect state type (COMPLETED, FAILED, CRASHED, ...)
state_name             str, e.g. "Completed", "Failed", "Skipped", "Cached"
start_time, end_time   tz-aware UTC datetimes (wall time including retry waits), may be NaT
duration_seconds       float
attempts               int, how many times it ran (1 = no retry)
cpu_seconds            float, may be NaN
peak_memory_bytes      float, may be NaN
error_message          str or None: the final error
inputs_hash            str or None
output_hash            str or None
=====================  ==========================================================================

Naive datetimes are read as UTC. Missing columns raise :class:`FrameError` naming them.

Where the values come from: run state, times and ``expected_start_time`` are Prefect's flow run
fields (``state.type``, ``start_time``, ``end_time``, ``expected_start_time``); ``trigger`` can be
derived from ``auto_scheduled`` and ``created_by``. Task ``state``/``state_name`` are the task
run's ``state.type``/``state.name``, ``attempts`` its ``run_count``. ``cpu_seconds``,
``peak_memory_bytes``, ``inputs_hash``, ``output_hash`` and ``error_message`` are in the
``metrics["tasks"]`` entries the executor writes to ``execution_logs``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

RUN_COLUMNS: tuple[str, ...] = (
    "flow_run_id",
    "workflow",
    "workflow_version",
    "state",
    "expected_start_time",
    "start_time",
    "end_time",
    "duration_seconds",
    "queue_wait_seconds",
)
RUN_OPTIONAL_COLUMNS: tuple[str, ...] = ("trigger",)
# Derived from the run's times by the analysis; a reader may leave them NaN.
RUN_DERIVED_COLUMNS: tuple[str, ...] = ("duration_seconds", "queue_wait_seconds")
TASK_COLUMNS: tuple[str, ...] = (
    "flow_run_id",
    "workflow",
    "task_id",
    "task_run_name",
    "state",
    "state_name",
    "start_time",
    "end_time",
    "duration_seconds",
    "attempts",
    "cpu_seconds",
    "peak_memory_bytes",
    "error_message",
    "inputs_hash",
    "output_hash",
)
RUN_TIME_COLUMNS: tuple[str, ...] = ("expected_start_time", "start_time", "end_time")
FAILED_STATES: frozenset[str] = frozenset({"FAILED", "CRASHED"})
TERMINAL_STATES: frozenset[str] = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})

_EPOCH = pd.Timestamp(0, tz="UTC")


class FrameError(ValueError):
    """An input frame does not follow the contract (missing columns, unreadable values)."""


@dataclass(frozen=True)
class WorkflowContext:
    """What the analysis knows about one workflow besides its history.

    ``document`` is the workflow document as a plain dict, as the user wrote it (``with``/``if``
    keys, not ``with_``). ``specification`` is the specification document dict when known; its
    ``success_metrics`` are checked.
    """

    document: Mapping[str, Any]
    specification: Mapping[str, Any] | None = None

    @classmethod
    def from_models(cls, workflow: Any, specification: Any | None = None) -> WorkflowContext:
        """Build a context from ``specs.models`` objects (dumped by alias, without unset values)."""
        document = workflow.model_dump(by_alias=True, exclude_none=True)
        spec = None if specification is None else specification.model_dump(by_alias=True, exclude_none=True)
        return cls(document=document, specification=spec)

    def success_metrics(self) -> dict[str, Any]:
        """The specification's success metrics (empty when unknown)."""
        if not self.specification:
            return {}
        metrics = self.specification.get("success_metrics") or {}
        return dict(metrics) if isinstance(metrics, Mapping) else {}


@dataclass
class PreparedFrames:
    """Frames after validation, coercion and windowing.

    Times are float epoch seconds (``t_expected``, ``t_start``, ``t_end``) so that the analysis is
    plain numpy; ``run_code`` is a dense integer per flow run shared by both frames.
    """

    runs: pd.DataFrame
    tasks: pd.DataFrame
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    notes: list[str] = field(default_factory=list)


def validate_frames(runs: pd.DataFrame, tasks: pd.DataFrame) -> None:
    """Raise :class:`FrameError` when a frame is not a DataFrame or lacks a contract column."""
    problems: list[str] = []
    for name, frame, columns in (("runs", runs, RUN_COLUMNS), ("tasks", tasks, TASK_COLUMNS)):
        if not isinstance(frame, pd.DataFrame):
            problems.append(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
            continue
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            problems.append(
                f"{name} frame is missing column(s) {', '.join(missing)} (expected {', '.join(columns)})"
            )
    if problems:
        raise FrameError("; ".join(problems))


def to_epoch_seconds(values: pd.Series, *, frame: str, column: str) -> pd.Series:
    """Datetimes (tz-aware, naive = UTC, or ISO strings) as float epoch seconds, NaT as NaN."""
    try:
        stamps = pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise FrameError(f"{frame}.{column}: expected datetimes ({exc})") from exc
    return (stamps - _EPOCH).dt.total_seconds().astype("float64")


def as_utc(value: Any) -> pd.Timestamp | None:
    """A datetime (naive = UTC) as a UTC timestamp with microsecond precision; None stays None."""
    if value is None:
        return None
    stamp = pd.Timestamp(value).round("us")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def epoch_to_timestamp(seconds: float) -> pd.Timestamp:
    """A float epoch second as a UTC timestamp (microsecond precision, like Python datetimes)."""
    return (_EPOCH + pd.Timedelta(seconds=float(seconds))).round("us")


def _numeric(frame: pd.DataFrame, column: str, name: str) -> pd.Series:
    try:
        return pd.to_numeric(frame[column], errors="raise").astype("float64")
    except (ValueError, TypeError) as exc:
        raise FrameError(f"{name}.{column}: expected numbers ({exc})") from exc


def _mapped_strings(values: pd.Series, transform: Callable[[str], str] = str) -> npt.NDArray[np.object_]:
    """``transform(str(v))`` for every value, computed once per distinct value (states, names and
    ids repeat a lot, so this is much cheaper than a row-wise string operation)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.array([transform(str(u)) for u in uniques] + [transform("")], dtype=object)
    return table[np.where(codes < 0, len(uniques), codes)]


def _optional_str(values: pd.Series) -> pd.Series:
    """Strings with missing values as None (object dtype, so None survives)."""
    out = values.astype(object)
    return out.where(out.notna(), None)


def prepare_frames(
    runs: pd.DataFrame,
    tasks: pd.DataFrame,
    *,
    window_start: datetime | None,
    window_end: datetime | None,
) -> PreparedFrames:
    """Validate, coerce types, derive missing durations and keep the runs inside the window.

    A run belongs to the window by its expected start (else its start, else its end); tasks follow
    their run. Without bounds the window spans the data.
    """
    validate_frames(runs, tasks)
    window_start, window_end = as_utc(window_start), as_utc(window_end)
    notes: list[str] = []
    r = pd.DataFrame(
        {
            "flow_run_id": runs["flow_run_id"].astype(str).to_numpy(),
            "workflow": _mapped_strings(runs["workflow"]),
            "workflow_version": _mapped_strings(runs["workflow_version"]),
            "state": _mapped_strings(runs["state"], str.upper),
        }
    )
    for column, short in zip(RUN_TIME_COLUMNS, ("t_expected", "t_start", "t_end"), strict=True):
        r[short] = to_epoch_seconds(runs[column], frame="runs", column=column).to_numpy()
    r["duration"] = _numeric(runs, "duration_seconds", "runs").to_numpy()
    r["duration"] = r["duration"].fillna(r["t_end"] - r["t_start"])
    r["queue_wait"] = _numeric(runs, "queue_wait_seconds", "runs").to_numpy()
    r["queue_wait"] = r["queue_wait"].fillna(r["t_start"] - r["t_expected"])
    trigger = _mapped_strings(runs["trigger"]) if "trigger" in runs.columns else None
    r["trigger"] = trigger if trigger is not None else "unknown"
    r["t_ref"] = r["t_expected"].fillna(r["t_start"]).fillna(r["t_end"])

    undated = int(r["t_ref"].isna().sum())
    if undated:
        notes.append(f"{undated} run(s) without any timestamp were left out.")
        r = r[r["t_ref"].notna()]
    duplicated = int(r["flow_run_id"].duplicated().sum())
    if duplicated:
        notes.append(f"{duplicated} duplicate flow run row(s) were left out (first kept).")
        r = r[~r["flow_run_id"].duplicated()]

    lo = float("-inf") if window_start is None else (window_start - _EPOCH).total_seconds()
    hi = float("inf") if window_end is None else (window_end - _EPOCH).total_seconds()
    r = r[(r["t_ref"] >= lo) & (r["t_ref"] <= hi)].reset_index(drop=True)
    r["run_code"] = range(len(r))

    t = _prepare_tasks(tasks, r)
    start = window_start if window_start is not None else _bound(r["t_ref"], "min")
    end = window_end if window_end is not None else _bound(r[["t_ref", "t_end"]].max(axis=1), "max")
    return PreparedFrames(runs=r, tasks=t, window_start=start, window_end=end, notes=notes)


def _bound(values: pd.Series, how: str) -> pd.Timestamp:
    clean = values.dropna()
    if clean.empty:
        return _EPOCH
    return epoch_to_timestamp(float(clean.min() if how == "min" else clean.max()))


def _prepare_tasks(tasks: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    # run_code is the run's row number in the (already windowed) runs frame.
    run_code = pd.Index(runs["flow_run_id"]).get_indexer(tasks["flow_run_id"].astype(str))
    keep = run_code >= 0
    src = tasks.loc[keep]
    t = pd.DataFrame(
        {
            "run_code": run_code[keep].astype("int64"),
            "workflow": _mapped_strings(src["workflow"]),
            "task_id": _mapped_strings(src["task_id"]),
            "task_run_name": _mapped_strings(src["task_run_name"]),
            "state": _mapped_strings(src["state"], str.upper),
            "state_name": _mapped_strings(src["state_name"]),
        }
    )
    t["t_start"] = to_epoch_seconds(src["start_time"], frame="tasks", column="start_time").to_numpy()
    t["t_end"] = to_epoch_seconds(src["end_time"], frame="tasks", column="end_time").to_numpy()
    t["duration"] = _numeric(src, "duration_seconds", "tasks").to_numpy()
    t["duration"] = t["duration"].fillna(t["t_end"] - t["t_start"])
    t["attempts"] = _numeric(src, "attempts", "tasks").fillna(1).clip(lower=1).astype("int64").to_numpy()
    t["cpu"] = _numeric(src, "cpu_seconds", "tasks").to_numpy()
    t["memory"] = _numeric(src, "peak_memory_bytes", "tasks").to_numpy()
    for column in ("error_message", "inputs_hash", "output_hash"):
        t[column] = _optional_str(src[column]).to_numpy()
    lowered = _mapped_strings(src["state_name"], str.lower)
    t["skipped"] = lowered == "skipped"
    t["cached"] = lowered == "cached"
    t["failed"] = t["state"].isin(FAILED_STATES).to_numpy()
    t["completed"] = (t["state"] == "COMPLETED").to_numpy()
    return t
