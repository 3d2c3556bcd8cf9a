"""``trinity report``: analyse recent run history now and write the LOGS tree.

Harvests new runs from Prefect first (when a Prefect API is configured), builds the report over
``--since``..``--until``, writes every file of the LOGS tree into ``--out`` and prints the summary.
Problems (bad dates, an unreachable database or Prefect) are one line on stderr and exit 1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

T = TypeVar("T")
_RELATIVE = re.compile(r"^\s*-?\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


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
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _prefect_url(configured: str | None) -> str | None:
    """The Prefect API to harvest from: the configuration's, else Prefect's own setting."""
    if configured:
        return configured
    from trinity.prefect_target import resolve_prefect_api_url

    return resolve_prefect_api_url()


def _run(coroutine: Coroutine[Any, Any, T], prefect_url: str | None) -> T:
    """Run with the Prefect client pointed at ``prefect_url``; connection failures become one line."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError
    from sqlalchemy.exc import SQLAlchemyError

    from flows.analytics.database import HistoryStoreError, first_line
    from trinity.prefect_target import using_prefect_api

    try:
        with using_prefect_api(prefect_url):
            return asyncio.run(coroutine)
    except HistoryStoreError as exc:
        _fail(str(exc))
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout) as exc:
        _fail(
            f"cannot reach the Prefect API at {prefect_url}: {exc or type(exc).__name__} "
            "(use --no-harvest to report on the history already stored)"
        )
    except PrefectHTTPStatusError as exc:
        _fail(f"Prefect refused a request: {exc.response.status_code} {exc.response.text[:200]}")
    except SQLAlchemyError as exc:
        _fail(f"database error: {first_line(exc)}")


def _migrate(url: str) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from api.db import migrate
    from trinity.core.urls import DatabaseURLError

    try:
        migrate(url)
    except DatabaseURLError as exc:
        _fail(f"database.url: {exc}")
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        _fail(f"cannot reach the database: {first[0] if first else type(exc).__name__}")


async def _build(
    *, url: str, window: Any, harvest: bool, from_prefect: bool, now: dt.datetime
) -> tuple[Any, str | None]:
    import anyio

    from flows.analytics.alerts import emit_report_alerts
    from flows.analytics.context import load_context_source
    from flows.analytics.database import migrated_tables, open_engine
    from flows.analytics.harvest import harvest_history
    from flows.analytics.reports import build_window_report

    engine = open_engine(url)
    try:
        tables = await anyio.to_thread.run_sync(migrated_tables, engine)
        summary = (await harvest_history(engine=engine, tables=tables)).summary() if harvest else None
        source = await load_context_source(engine, tables, from_prefect=from_prefect)
        report, _ = await anyio.to_thread.run_sync(
            lambda: build_window_report(engine, tables, window, source.for_runs, now=now)
        )
    finally:
        engine.dispose()
    await emit_report_alerts(report)
    return report, summary


def report(
    since: Annotated[
        str | None,
        typer.Option(help="Start: ISO date/time or relative (-7d, -12h). Default: analytics.window_days."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="End: ISO date/time or relative. Default: now.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            # The order of Settings.logs_dir, as the one resolver applies it.
            help="Folder for the LOGS tree (default: $TRINITY_LOGS_DIR, else analytics.logs_dir when "
            "configured, else <state_dir>/LOGS).",
        ),
    ] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this workflow.")] = None,
    harvest: Annotated[
        bool,
        typer.Option("--harvest/--no-harvest", help="Read new runs from Prefect first (when configured)."),
    ] = True,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Configuration file (default: $TRINITY_CONFIG or ./trinity.config.yml)."
        ),
    ] = None,
) -> None:
    """Analyse run history now: write the LOGS tree and print the summary."""
    from flows.analytics.history import Window
    from flows.analytics.outputs import write_logs_tree
    from trinity.core.config import load_settings
    from trinity.core.settings import ConfigError

    now = dt.datetime.now(dt.UTC)
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        _fail(str(exc))
    try:
        start = (
            parse_moment(since, now=now) if since else now - dt.timedelta(days=settings.analytics.window_days)
        )
    except BadTimeError as exc:
        _fail(f"--since: {exc}")
    try:
        end = parse_moment(until, now=now) if until else now
    except BadTimeError as exc:
        _fail(f"--until: {exc}")
    if end <= start:
        _fail(f"--until ({end.isoformat()}) must be after --since ({start.isoformat()})")
    prefect_url = _prefect_url(settings.prefect.api_url)
    url = settings.database_url
    _migrate(url)
    result, harvested = _run(
        _build(
            url=url,
            window=Window(start=start, end=end, workflow=workflow),
            harvest=harvest and prefect_url is not None,
            from_prefect=harvest and prefect_url is not None,
            now=now,
        ),
        prefect_url,
    )
    target = out or settings.logs_dir
    try:
        written = write_logs_tree(result, target)
    except OSError as exc:
        _fail(f"cannot write the LOGS tree to {target}: {exc.strerror or exc}")
    _print(result, harvested=harvested, harvest_wanted=harvest, target=target, files=len(written))


def _print(result: Any, *, harvested: str | None, harvest_wanted: bool, target: Path, files: int) -> None:
    import sys

    from rich.console import Console
    from rich.markdown import Markdown

    from analytics import render_markdown_summary

    if harvested:
        typer.echo(harvested, err=True)
    elif harvest_wanted:
        typer.echo("no Prefect API configured: reporting on the history already stored", err=True)
    Console(file=sys.stdout).print(Markdown(render_markdown_summary(result)))
    typer.echo(f"wrote {files} files to {target}")


def register(app: typer.Typer) -> None:
    """Add ``trinity report`` to the CLI."""
    app.command("report")(report)
