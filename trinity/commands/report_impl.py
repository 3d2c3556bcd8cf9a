"""What ``trinity report`` does (its options are in :mod:`trinity.commands.report_commands`).

Harvests new runs from Prefect first (when a Prefect API is configured), builds the report over
``--since``..``--until`` (by default the window the scheduled insights flow analyses), writes its
performance and insight rows to the configured database -- the rows ``/api/v1/analytics/*`` serve,
replacing those of the same window, as the scheduled flows do -- writes every file of the LOGS tree
into ``--out`` and prints the summary. Problems (bad dates, an unreachable database or Prefect) are
one line on stderr and exit 1.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import sys
from pathlib import Path
from typing import NoReturn

import anyio
import typer
from rich.console import Console
from rich.markdown import Markdown
from sqlalchemy.exc import SQLAlchemyError

from analytics import Report, render_markdown_summary
from api.db import migrate
from blocks.sink_writers import SinkError
from blocks.sinks import SinkConfigError, resolve_sink_settings
from flows.analytics.alerts import emit_report_alerts
from flows.analytics.context import load_context_source
from flows.analytics.database import HistoryStoreError, first_line, migrated_tables, open_engine
from flows.analytics.harvest import harvest_history
from flows.analytics.history import Window
from flows.analytics.outputs import RowCounts, write_logs_tree
from flows.analytics.reports import build_window_report, insights_window, write_report_rows
from flows.monitoring.influx_history import read_influx_history
from trinity.commands.common import fail
from trinity.commands.prefect_calls import call_prefect, prefect_api_url
from trinity.core.config import load_settings
from trinity.core.settings import ConfigError, Settings
from trinity.core.sink_settings import InfluxDBSinkSettings
from trinity.core.urls import DatabaseURLError

_RELATIVE = re.compile(r"^\s*-?\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SOURCES = ("database", "influxdb")
NO_HARVEST_HINT = " (use --no-harvest to report on the history already stored)"


class BadTimeError(ValueError):
    """A --since/--until value that is neither ISO nor relative."""


def parse_moment(text: str, *, now: dt.datetime) -> dt.datetime:
    """``2025-03-01``, ``2025-03-01T12:00:00+02:00`` (naive = UTC) or ``-7d``/``-12h``/``-30m``/``-2w``."""
    match = _RELATIVE.match(text)
    if match:
        amount, unit = float(match.group(1)), _UNITS[match.group(2).lower()]
        return now - dt.timedelta(**{unit: amount})
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadTimeError(
            f"expected an ISO date/time (2025-03-01, 2025-03-01T12:00:00Z) or a relative time "
            f"(-7d, -12h, -30m, -2w), got {text!r}"
        ) from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _fail(message: str) -> NoReturn:
    fail(f"error: {message}")


def report(
    *,
    since: str | None,
    until: str | None,
    out: Path | None,
    workflow: str | None,
    harvest: bool,
    config: Path | None,
    source: str = "database",
) -> None:
    """Analyse the run history of the window: write its rows and the LOGS tree, print the summary."""
    now = dt.datetime.now(dt.UTC)
    if source not in SOURCES:
        _fail(f"--from: expected one of {', '.join(SOURCES)}, got {source!r}")
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        _fail(str(exc))
    window = _window(settings, since=since, until=until, workflow=workflow, now=now)
    influx = _influx_source(settings) if source == "influxdb" else None
    # The configuration's Prefect API first, else the one the CLI resolves.
    prefect_url = settings.prefect.api_url or prefect_api_url()
    url = settings.database_url
    _migrate(url)
    harvesting = harvest and prefect_url is not None
    try:
        result, harvested, rows = call_prefect(
            prefect_url,
            functools.partial(_build, url=url, window=window, harvest=harvesting, now=now, influx=influx),
            hint=NO_HARVEST_HINT,
        )
    except (HistoryStoreError, SinkError) as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"database error: {first_line(exc)}")
    target = out or settings.logs_dir
    try:
        written = write_logs_tree(result, target)
    except OSError as exc:
        _fail(f"cannot write the LOGS tree to {target}: {exc.strerror or exc}")
    if harvested:
        typer.echo(harvested, err=True)
    elif harvest:
        typer.echo("no Prefect API configured: reporting on the history already stored", err=True)
    Console(file=sys.stdout).print(Markdown(render_markdown_summary(result)))
    typer.echo(
        f"wrote {rows.performance} performance and {rows.insights} insight rows to the database "
        "(served by /api/v1/analytics/performance and /insights)"
    )
    typer.echo(f"wrote {len(written)} files to {target}")


def _window(
    settings: Settings, *, since: str | None, until: str | None, workflow: str | None, now: dt.datetime
) -> Window:
    # Without bounds, the scheduled insights report's window: the same report, so the same rows.
    scheduled = insights_window(now, settings.analytics.window_days)
    default_start, default_end = scheduled.start or now, scheduled.end or now
    try:
        start = parse_moment(since, now=now) if since else default_start
    except BadTimeError as exc:
        _fail(f"--since: {exc}")
    try:
        end = parse_moment(until, now=now) if until else (now if since else default_end)
    except BadTimeError as exc:
        _fail(f"--until: {exc}")
    if end <= start:
        _fail(f"--until ({end.isoformat()}) must be after --since ({start.isoformat()})")
    return Window(start=start, end=end, workflow=workflow)


def _migrate(url: str) -> None:
    try:
        migrate(url)
    except DatabaseURLError as exc:
        _fail(f"database.url: {exc}")
    except SQLAlchemyError as exc:
        _fail(f"cannot reach the database: {first_line(exc)}")


def _influx_source(settings: Settings) -> InfluxDBSinkSettings:
    if settings.sinks.influxdb is None:
        _fail("--from influxdb: no sinks.influxdb in the configuration")
    try:
        influx, _ = resolve_sink_settings(settings.sinks)
    except SinkConfigError as exc:
        _fail(str(exc))
    assert influx is not None
    return influx


async def _build(
    *, url: str, window: Window, harvest: bool, now: dt.datetime, influx: InfluxDBSinkSettings | None = None
) -> tuple[Report, str | None, RowCounts]:
    """Harvest (when asked), build the window's report (from ``influx`` when given, else from the
    database) and write its rows; also the harvest's line."""
    engine = open_engine(url)
    try:
        tables = await anyio.to_thread.run_sync(migrated_tables, engine)
        summary = (await harvest_history(engine=engine, tables=tables)).summary() if harvest else None
        source = await load_context_source(engine, tables, from_prefect=harvest)
        history = await anyio.to_thread.run_sync(read_influx_history, influx, window) if influx else None
        report, _ = await anyio.to_thread.run_sync(
            lambda: build_window_report(engine, tables, window, source.for_runs, now=now, history=history)
        )
        rows = await anyio.to_thread.run_sync(
            lambda: write_report_rows(engine, tables, report, workflow=window.workflow)
        )
    finally:
        engine.dispose()
    await emit_report_alerts(report)
    return report, summary, rows
