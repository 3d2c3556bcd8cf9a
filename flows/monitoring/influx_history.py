"""Run history read back from InfluxDB, for ``trinity report --from influxdb``.

The ``trinity_flow_run`` and ``trinity_task_run`` points of a window become the runs and tasks
frames the analytics take (:mod:`analytics.frames`), the same contract as the history read from
Trinity's database: a point's time is the run's end, its start is the end minus ``duration_s``,
its expected start the start minus ``queue_wait_s``. What InfluxDB does not keep (input and output
hashes, a run's trigger) is left empty, and the analyses that need it say so. The window is on
the points' times (the runs' ends).

InfluxDB 1.x is read with InfluxQL (``/query``), 2.x with Flux through ``influxdb-client``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import numpy as np
import pandas as pd
from influxdb_client import InfluxDBClient

from analytics.frames import RUN_COLUMNS, TASK_COLUMNS
from blocks.sink_records import FLOW_RUN_MEASUREMENT, TASK_RUN_MEASUREMENT
from blocks.sink_writers import SinkError
from flows.analytics.history import History, Window
from trinity.core.sink_settings import InfluxDBSinkSettings

_TIMES = ("expected_start_time", "start_time", "end_time")
_NUMBERS = ("duration_seconds", "queue_wait_seconds", "attempts", "cpu_seconds", "peak_memory_bytes")
_CATEGORIES = ("workflow", "workflow_version", "state", "task_id", "task_run_name", "state_name")


def _influxql_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("'%Y-%m-%dT%H:%M:%S.%fZ'")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _read_v1(settings: InfluxDBSinkSettings, measurement: str, window: Window) -> list[dict[str, Any]]:
    where = []
    if window.start is not None:
        where.append(f"time >= {_influxql_time(window.start)}")
    if window.end is not None:
        where.append(f"time < {_influxql_time(window.end)}")
    if window.workflow is not None:
        where.append(f"workflow = {_quote(window.workflow)}")
    source = (
        f'"{settings.retention_policy}"."{measurement}"' if settings.retention_policy else f'"{measurement}"'
    )
    query = f"SELECT * FROM {source}" + (f" WHERE {' AND '.join(where)}" if where else "")
    params = {"db": settings.database or "", "q": query, "epoch": "ns"}
    if settings.username:
        params["u"] = settings.username
    if settings.password is not None:
        params["p"] = settings.password.get_secret_value()
    try:
        response = httpx.post(f"{settings.url.rstrip('/')}/query", params=params, timeout=60)
    except httpx.HTTPError as exc:
        raise SinkError(f"influxdb at {settings.url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise SinkError(f"influxdb at {settings.url}: /query answered {response.status_code}")
    result = response.json()["results"][0]
    if "error" in result:
        raise SinkError(f"influxdb at {settings.url}: {result['error']}")
    rows = []
    for series in result.get("series", []):
        for values in series["values"]:
            row = dict(zip(series["columns"], values, strict=True))
            row["time"] = pd.Timestamp(row["time"], unit="ns", tz="UTC")
            rows.append(row)
    return rows


def _read_v2(settings: InfluxDBSinkSettings, measurement: str, window: Window) -> list[dict[str, Any]]:
    start = (window.start or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()
    stop = (window.end or dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).astimezone(dt.UTC).isoformat()
    flux = (
        f'from(bucket: "{settings.bucket}") |> range(start: {start}, stop: {stop})'
        f' |> filter(fn: (r) => r._measurement == "{measurement}")'
    )
    if window.workflow is not None:
        flux += f' |> filter(fn: (r) => r.workflow == "{window.workflow}")'
    flux += ' |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
    token = settings.token.get_secret_value() if settings.token else ""
    try:
        with InfluxDBClient(url=settings.url, token=token, org=settings.org or "") as client:
            tables = client.query_api().query(flux)
    except Exception as exc:
        raise SinkError(f"influxdb at {settings.url}: {type(exc).__name__}: {exc}") from exc
    rows = []
    for table in tables:
        for record in table.records:
            row = dict(record.values)
            row["time"] = pd.Timestamp(row["_time"]).tz_convert("UTC")
            rows.append(row)
    return rows


def _seconds(row: dict[str, Any], key: str) -> pd.Timedelta:
    value = row.get(key)
    return pd.Timedelta(seconds=float(value)) if value is not None else pd.Timedelta(0)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if column in _TIMES:
            frame[column] = pd.to_datetime(frame[column], utc=True)
        elif column in _NUMBERS:
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
        elif column in _CATEGORIES:
            frame[column] = frame[column].astype("category")
    return frame


def _runs(rows: list[dict[str, Any]]) -> pd.DataFrame:
    records = []
    for row in rows:
        end = row["time"]
        start = end - _seconds(row, "duration_s")
        records.append(
            {
                "flow_run_id": row.get("flow_run_id"),
                "workflow": row.get("workflow"),
                "workflow_version": row.get("version"),
                "state": row.get("state"),
                "expected_start_time": start - _seconds(row, "queue_wait_s"),
                "start_time": start,
                "end_time": end,
                "duration_seconds": np.nan,
                "queue_wait_seconds": np.nan,
                "trigger": None,
            }
        )
    return _typed(pd.DataFrame.from_records(records, columns=[*RUN_COLUMNS, "trigger"]))


def _tasks(rows: list[dict[str, Any]]) -> pd.DataFrame:
    records = []
    for row in rows:
        end = row["time"]
        state = str(row.get("state") or "")
        records.append(
            {
                "flow_run_id": row.get("flow_run_id"),
                "workflow": row.get("workflow"),
                "task_id": row.get("task"),
                "task_run_name": row.get("task_run") or row.get("task"),
                "state": state,
                "state_name": state.title(),
                "start_time": end - _seconds(row, "duration_s"),
                "end_time": end,
                "duration_seconds": row.get("duration_s"),
                "attempts": row.get("attempt"),
                "cpu_seconds": row.get("cpu_s"),
                "peak_memory_bytes": row.get("max_rss_bytes"),
                "error_message": row.get("error"),
                "inputs_hash": None,
                "output_hash": None,
            }
        )
    return _typed(pd.DataFrame.from_records(records, columns=list(TASK_COLUMNS)))


def read_influx_history(settings: InfluxDBSinkSettings, window: Window) -> History:
    """The runs and task runs InfluxDB holds for ``window``. Raises :class:`SinkError`."""
    read = _read_v1 if settings.api == "v1" else _read_v2
    runs = [row for row in read(settings, FLOW_RUN_MEASUREMENT, window) if row.get("flow_run_id")]
    tasks = [row for row in read(settings, TASK_RUN_MEASUREMENT, window) if row.get("flow_run_id")]
    return History(runs=_runs(runs), tasks=_tasks(tasks))
