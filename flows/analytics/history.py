"""Read a window of run history from Trinity's tables into the frames of :mod:`analytics.frames`.

Only the columns the analysis needs are read, in chunks. PostgreSQL streams them with ``COPY ...
TO STDOUT`` (CSV parsed by pandas' C reader, times as epoch seconds): several times faster than
fetching rows through the driver, which matters at a million task runs. SQLite goes through
SQLAlchemy in chunks. Repeated strings (workflow, task id, state) are categoricals, and input/output
hashes are cut to their first 16 hex digits: the analysis only compares them for equality, and 64
bits of SHA-256 keep collisions out of reach while halving the frame's largest columns.

A run in the window whose task runs were never harvested (no Prefect API configured, say) still
gets task rows, from the per-task records the executor keeps in ``execution_logs.metrics``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pandas.api.types import union_categoricals

from analytics.frames import RUN_COLUMNS, RUN_DERIVED_COLUMNS, RUN_OPTIONAL_COLUMNS, TASK_COLUMNS
from flows.analytics.database import Tables
from flows.analytics.records import recorded_task_row, recorded_tasks

HASH_PREFIX = 16
CHUNK_ROWS = 200_000
_COPY_CHUNK_BYTES = 32 * 1024 * 1024

# What is read: the frames' columns, less those the analysis derives from the times.
RUN_FIELDS = (*(c for c in RUN_COLUMNS if c not in RUN_DERIVED_COLUMNS), *RUN_OPTIONAL_COLUMNS)
TASK_FIELDS = TASK_COLUMNS
_CATEGORIES = ("workflow", "workflow_version", "state", "trigger", "task_id", "task_run_name", "state_name")
_TIMES = ("expected_start_time", "start_time", "end_time")
_NUMBERS = ("duration_seconds", "attempts", "cpu_seconds", "peak_memory_bytes")


@dataclass(frozen=True)
class Window:
    """``start <= reference time < end`` (either bound may be open), optionally one workflow."""

    start: dt.datetime | None
    end: dt.datetime | None
    workflow: str | None = None


@dataclass
class History:
    """The frames ``analytics.build_report`` takes."""

    runs: pd.DataFrame
    tasks: pd.DataFrame


def read_history(engine: sa.Engine, tables: Tables, window: Window) -> History:
    """Runs whose reference time (expected start, else start, else end) is in ``window``, and
    their task runs."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            runs = _copy_frame(connection, _pg_runs_sql(window), _pg_params(window), RUN_FIELDS)
            tasks = _copy_frame(connection, _pg_tasks_sql(window), _pg_params(window), TASK_FIELDS)
        else:
            runs = _select_frame(connection, _runs_select(tables, window), RUN_FIELDS)
            tasks = _select_frame(connection, _tasks_select(tables, window), TASK_FIELDS)
        recorded = _recorded_only(connection, tables, window)
    if not recorded.empty:
        tasks = _concat([tasks, recorded])
    for column in RUN_DERIVED_COLUMNS:
        runs[column] = np.nan
    return History(runs=runs, tasks=tasks)


def _reference(logs: sa.Table) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(logs.c.expected_start_time, logs.c.started_at, logs.c.ended_at)


def _conditions(tables: Tables, window: Window) -> list[sa.ColumnElement[bool]]:
    logs = tables.execution_logs
    conditions: list[sa.ColumnElement[bool]] = [_reference(logs).is_not(None)]
    if window.start is not None:
        conditions.append(_reference(logs) >= window.start)
    if window.end is not None:
        conditions.append(_reference(logs) < window.end)
    if window.workflow is not None:
        conditions.append(logs.c.workflow_name == window.workflow)
    return conditions


def _runs_select(tables: Tables, window: Window) -> sa.Select[Any]:
    logs, harvested = tables.execution_logs, tables.harvested_runs
    return (
        sa.select(
            logs.c.flow_run_id,
            logs.c.workflow_name,
            logs.c.workflow_version,
            logs.c.status,
            logs.c.expected_start_time,
            logs.c.started_at,
            logs.c.ended_at,
            harvested.c.trigger,
        )
        .select_from(logs.outerjoin(harvested, harvested.c.flow_run_id == logs.c.flow_run_id))
        .where(logs.c.flow_run_id.is_not(None), *_conditions(tables, window))
    )


def _tasks_select(tables: Tables, window: Window) -> sa.Select[Any]:
    logs, t = tables.execution_logs, tables.task_runs
    return (
        sa.select(
            t.c.flow_run_id,
            t.c.workflow_name,
            t.c.task_id,
            t.c.task_run_name,
            t.c.state_type,
            t.c.state_name,
            t.c.start_time,
            t.c.end_time,
            t.c.duration_seconds,
            t.c.attempts,
            t.c.cpu_seconds,
            t.c.peak_memory_bytes,
            t.c.error_message,
            sa.func.substr(t.c.inputs_hash, 1, HASH_PREFIX),
            sa.func.substr(t.c.output_hash, 1, HASH_PREFIX),
        )
        .select_from(t.join(logs, logs.c.flow_run_id == t.c.flow_run_id))
        .where(*_conditions(tables, window))
    )


_PG_REFERENCE = "coalesce(e.expected_start_time, e.started_at, e.ended_at)"


def _pg_where(window: Window) -> str:
    parts = [f"{_PG_REFERENCE} IS NOT NULL"]
    if window.start is not None:
        parts.append(f"{_PG_REFERENCE} >= %(start)s")
    if window.end is not None:
        parts.append(f"{_PG_REFERENCE} < %(end)s")
    if window.workflow is not None:
        parts.append("e.workflow_name = %(workflow)s")
    return " AND ".join(parts)


def _pg_params(window: Window) -> dict[str, Any]:
    return {"start": window.start, "end": window.end, "workflow": window.workflow}


def _pg_runs_sql(window: Window) -> str:
    return (
        "SELECT e.flow_run_id, e.workflow_name, e.workflow_version, e.status, "
        "extract(epoch FROM e.expected_start_time), extract(epoch FROM e.started_at), "
        "extract(epoch FROM e.ended_at), h.trigger "
        "FROM execution_logs e LEFT JOIN harvested_runs h ON h.flow_run_id = e.flow_run_id "
        f"WHERE e.flow_run_id IS NOT NULL AND {_pg_where(window)}"
    )


def _pg_tasks_sql(window: Window) -> str:
    # One line per record: CSV chunks are cut at newlines, so none may hide inside a field.
    return (
        "SELECT t.flow_run_id, t.workflow_name, t.task_id, t.task_run_name, t.state_type, "
        "t.state_name, extract(epoch FROM t.start_time), extract(epoch FROM t.end_time), "
        "t.duration_seconds, t.attempts, t.cpu_seconds, t.peak_memory_bytes, "
        "regexp_replace(t.error_message, '[\\r\\n]+', ' ', 'g'), "
        f"left(t.inputs_hash, {HASH_PREFIX}), left(t.output_hash, {HASH_PREFIX}) "
        "FROM task_runs t JOIN execution_logs e ON e.flow_run_id = t.flow_run_id "
        f"WHERE {_pg_where(window)}"
    )


def _copy_chunks(connection: sa.Connection, sql: str, params: dict[str, Any]) -> Iterator[bytes]:
    """The CSV output of ``COPY (sql) TO STDOUT`` in pieces of whole lines."""
    raw = connection.connection.driver_connection
    assert raw is not None
    # psycopg hands out one block per row; appending to one bytearray is the cheapest way to
    # gather them (holding the blocks and joining later is about twice as slow).
    pending = bytearray()
    with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
        for block in copy:
            pending += block
            if len(pending) >= _COPY_CHUNK_BYTES:
                cut = pending.rfind(b"\n") + 1
                yield bytes(pending[:cut])
                del pending[:cut]
    if pending:
        yield bytes(pending)


def _copy_frame(
    connection: sa.Connection, sql: str, params: dict[str, Any], fields: Sequence[str]
) -> pd.DataFrame:
    frames = [
        _typed(
            pd.read_csv(
                io.BytesIO(chunk),
                header=None,
                names=list(fields),
                dtype={name: "str" for name in fields if name not in _TIMES and name not in _NUMBERS},
                keep_default_na=False,
                na_values={name: [""] for name in fields},
                quoting=csv.QUOTE_MINIMAL,
            ),
            epoch=True,
        )
        for chunk in _copy_chunks(connection, sql, params)
    ]
    return _concat(frames) if frames else _empty(fields)


def _select_frame(
    connection: sa.Connection, statement: sa.Select[Any], fields: Sequence[str]
) -> pd.DataFrame:
    result = connection.execution_options(yield_per=CHUNK_ROWS).execute(statement)
    frames = []
    for partition in result.partitions():
        frame = pd.DataFrame.from_records(partition, columns=list(fields))
        frame["flow_run_id"] = frame["flow_run_id"].map(str)
        frames.append(_typed(frame, epoch=False))
    return _concat(frames) if frames else _empty(fields)


def _typed(frame: pd.DataFrame, *, epoch: bool) -> pd.DataFrame:
    for column in frame.columns:
        if column in _TIMES:
            values = frame[column]
            frame[column] = (
                pd.to_datetime(pd.to_numeric(values), unit="s", utc=True)
                if epoch
                else pd.to_datetime(values, utc=True)
            )
        elif column in _NUMBERS:
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
        elif column in _CATEGORIES:
            frame[column] = frame[column].astype("category")
        elif column in ("inputs_hash", "output_hash") and not epoch:
            frame[column] = frame[column].astype(object)
    return frame


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate chunks, keeping categoricals (their categories differ from chunk to chunk)."""
    frames = [frame for frame in frames if not frame.empty] or frames[:1]
    if len(frames) == 1:
        return frames[0]
    merged = pd.concat(frames, ignore_index=True)
    for column in merged.columns:
        parts = [frame[column] for frame in frames]
        if all(isinstance(part.dtype, pd.CategoricalDtype) for part in parts):
            try:
                merged[column] = union_categoricals(parts, ignore_order=True)
            except TypeError:  # categories of different types (strings from two sources)
                merged[column] = merged[column].astype("category")
    return merged


def _empty(fields: Sequence[str]) -> pd.DataFrame:
    return _typed(pd.DataFrame({name: pd.Series([], dtype=object) for name in fields}), epoch=False)


def _recorded_only(connection: sa.Connection, tables: Tables, window: Window) -> pd.DataFrame:
    """Task rows from the executor's records, for runs in the window without harvested task runs."""
    logs, t = tables.execution_logs, tables.task_runs
    harvested = sa.select(t.c.flow_run_id).where(t.c.flow_run_id == logs.c.flow_run_id).exists()
    statement = sa.select(logs.c.flow_run_id, logs.c.workflow_name, logs.c.metrics).where(
        logs.c.flow_run_id.is_not(None), ~harvested, *_conditions(tables, window)
    )
    rows: list[dict[str, Any]] = []
    for flow_run_id, workflow, metrics in connection.execute(statement):
        for name, entry in recorded_tasks(metrics).items():
            row = recorded_task_row(flow_run_id, workflow, name, entry)
            rows.append(
                {
                    "flow_run_id": str(flow_run_id),
                    "workflow": workflow,
                    "task_id": row["task_id"],
                    "task_run_name": row["task_run_name"],
                    "state": row["state_type"],
                    "state_name": row["state_name"],
                    "start_time": row["start_time"],
                    "end_time": row["end_time"],
                    "duration_seconds": row["duration_seconds"],
                    "attempts": row["attempts"],
                    "cpu_seconds": row["cpu_seconds"],
                    "peak_memory_bytes": row["peak_memory_bytes"],
                    "error_message": row["error_message"],
                    "inputs_hash": (row["inputs_hash"] or "")[:HASH_PREFIX] or None,
                    "output_hash": (row["output_hash"] or "")[:HASH_PREFIX] or None,
                }
            )
    if not rows:
        return pd.DataFrame()
    return _typed(pd.DataFrame.from_records(rows, columns=list(TASK_FIELDS)), epoch=False)
