"""The analytics flows: harvest run history, then report on it, on Prefect schedules.

* ``trinity-analytics-harvest``: copy new Trinity runs from Prefect into Trinity's tables; every
  run publishes a ``trinity-analytics-harvest`` Markdown artifact with what it read. Every harvest
  also deletes the ``Secret`` blocks of runs that ended without deleting them
  (:mod:`flows.run_secret_sweep`).
* ``trinity-performance-report`` (hourly by default): harvest, then rebuild the performance rows
  of the periods that received runs (see :mod:`flows.analytics.reports`), write the most recent
  period's ``performance/`` and ``patterns/`` files of the LOGS tree, and its artifacts
  (``trinity-performance-report``, ``-workflows``, ``-recommendations``, ``-failure-families``,
  ``-anomalies``, ``-forecasts``). Every run, also one that rebuilt nothing, publishes a
  ``trinity-performance-refresh`` summary.
* ``trinity-insights-report`` (daily by default): harvest, then analyse the ``window_days`` UTC
  days ending with today; write its performance, insight and failure-family rows (replacing those
  of the same window), the ``optimization/``, ``insights/`` and ``charts/`` files, and the
  ``trinity-insights-*`` artifacts.

Both emit the alerts their reports raise as Prefect events (:mod:`flows.analytics.alerts`) and
store what the reports learnt (:mod:`flows.analytics.models`).

Deployments point at these functions by module path (``flows.analytics.flows.<name>``); the
database and the LOGS tree are the configured ones (``database.url``, ``analytics.logs_dir``, as
the settings resolve them on the worker) unless a parameter says otherwise.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
from prefect import flow, get_run_logger

from flows.analytics.alerts import emit_alerts
from flows.analytics.context import load_context_source
from flows.analytics.database import Tables, migrated_tables, open_engine
from flows.analytics.harvest import HarvestResult, harvest_history
from flows.analytics.outputs import logs_dir, publish_artifacts, publish_run_summary, write_logs_tree
from flows.analytics.reports import (
    build_window_report,
    insights_window,
    refresh_performance,
    write_report_rows,
)
from flows.monitoring.harvest import harvest_sinks
from flows.run_secret_sweep import sweep_run_secrets
from specs.naming import HARVEST_FLOW, INSIGHTS_FLOW, PERFORMANCE_FLOW
from trinity.core.config import load_settings

PERFORMANCE_ARTIFACTS = "trinity-performance"  # keys trinity-performance-report, -workflows, ...
# Published by every run, unlike the report artifacts above: an idle refresh does not replace the
# latest report in the UI, yet still says what it found.
PERFORMANCE_REFRESH_ARTIFACT = "trinity-performance-refresh"
HARVEST_ARTIFACT = "trinity-analytics-harvest"
INSIGHTS_ARTIFACTS = "trinity-insights"
PERFORMANCE_SECTIONS = ("performance", "patterns")
INSIGHTS_SECTIONS = ("optimization", "insights", "charts")


async def _harvest(
    engine: Any, tables: Tables, *, reread_minutes: float, since: dt.datetime | None = None
) -> HarvestResult:
    result = await harvest_history(
        engine=engine, tables=tables, reread_window=dt.timedelta(minutes=reread_minutes), since=since
    )
    get_run_logger().info(result.summary())
    # Then complete the sinks (InfluxDB, Elasticsearch) with what their live path missed.
    sinks = await harvest_sinks(engine, tables, load_settings().sinks)
    if sinks.sinks or sinks.error:
        get_run_logger().info(sinks.summary())
    await _sweep_secrets()
    return result


async def _sweep_secrets() -> None:
    logger = get_run_logger()
    try:
        swept = await sweep_run_secrets()
    except Exception as exc:  # the harvest stands; the next one sweeps again
        logger.warning("Sweeping the Secret blocks of ended runs failed: %s: %s", type(exc).__name__, exc)
        return
    logger.info("Deleted %d Secret block(s) left by runs that ended without deleting them", len(swept))


@flow(name=HARVEST_FLOW, log_prints=False)
async def harvest(
    reread_minutes: float = 15.0, since: dt.datetime | None = None, database_url: str | None = None
) -> dict[str, Any]:
    """Copy Trinity runs that ended since the last harvest (minus the re-read window) into the
    database."""
    engine = open_engine(database_url)
    try:
        tables = await anyio.to_thread.run_sync(migrated_tables, engine)
        result = await _harvest(engine, tables, reread_minutes=reread_minutes, since=since)
    finally:
        engine.dispose()
    await publish_run_summary(key=HARVEST_ARTIFACT, title="Trinity harvest", lines=[result.summary()])
    return {
        "flow_runs": len(result.flow_runs),
        "runs_new": result.runs_new,
        "task_runs_new": result.task_runs_new,
        "unresolved": len(result.unresolved),
    }


@flow(name=PERFORMANCE_FLOW, log_prints=False)
async def performance_report(
    period_hours: float = 24.0,
    lookback_days: float = 30.0,
    harvest_first: bool = True,
    reread_minutes: float = 15.0,
    logs_dir_path: str | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Refresh the performance rows of the periods that received runs; write the latest period's
    performance files and artifacts."""
    logger = get_run_logger()
    engine = open_engine(database_url)
    try:
        tables = await anyio.to_thread.run_sync(migrated_tables, engine)
        harvested = await _harvest(engine, tables, reread_minutes=reread_minutes) if harvest_first else None
        source = await load_context_source(engine, tables, from_prefect=True)
        result = await anyio.to_thread.run_sync(
            lambda: refresh_performance(
                engine,
                tables,
                source.for_runs,
                period=dt.timedelta(hours=period_hours),
                lookback=dt.timedelta(days=lookback_days),
            )
        )
    finally:
        engine.dispose()
    written: list[str] = []
    latest = result.latest
    root = logs_dir(logs_dir_path)
    if latest is not None:
        paths = await anyio.to_thread.run_sync(
            lambda: write_logs_tree(latest, root, sections=PERFORMANCE_SECTIONS)
        )
        written = [str(path) for path in paths]
        await publish_artifacts(latest, prefix=PERFORMANCE_ARTIFACTS, title="Trinity performance")
    alerts = await emit_alerts(result.alerts)
    lines = [
        result.summary(),
        f"sent {alerts} alert(s) as Prefect events",
        harvested.summary() if harvested else "harvest skipped (harvest_first is false)",
        f"wrote {len(written)} file(s) to {root}" if written else f"left the files in {root} as they were",
    ]
    await publish_run_summary(
        key=PERFORMANCE_REFRESH_ARTIFACT, title="Trinity performance refresh", lines=lines
    )
    logger.info("%s; wrote %d file(s)", result.summary(), len(written))
    return {
        "periods": [start.isoformat() for start in result.periods],
        "rows": result.rows,
        "files": written,
        "alerts": alerts,
    }


@flow(name=INSIGHTS_FLOW, log_prints=False)
async def insights_report(
    window_days: int = 30,
    harvest_first: bool = True,
    reread_minutes: float = 15.0,
    logs_dir_path: str | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Analyse the ``window_days`` days ending with today: rows, the optimisation and insight files,
    and artifacts."""
    logger = get_run_logger()
    engine = open_engine(database_url)
    now = dt.datetime.now(dt.UTC)
    window = insights_window(now, window_days)
    try:
        tables = await anyio.to_thread.run_sync(migrated_tables, engine)
        if harvest_first:
            await _harvest(engine, tables, reread_minutes=reread_minutes)
        source = await load_context_source(engine, tables, from_prefect=True)
        report, _ = await anyio.to_thread.run_sync(
            lambda: build_window_report(engine, tables, window, source.for_runs, now=now)
        )
        counts = await anyio.to_thread.run_sync(write_report_rows, engine, tables, report)
    finally:
        engine.dispose()
    root = logs_dir(logs_dir_path)
    paths = await anyio.to_thread.run_sync(lambda: write_logs_tree(report, root, sections=INSIGHTS_SECTIONS))
    await publish_artifacts(report, prefix=INSIGHTS_ARTIFACTS, title="Trinity insights")
    alerts = await emit_alerts(report.alerts)
    logger.info(
        "analysed %s to %s: %d runs, %d recommendations, %d findings, %d failure families; "
        "wrote %d rows and %d files; sent %d alert(s)",
        window.start,
        window.end,
        report.totals["runs"],
        len(report.recommendations),
        len(report.findings),
        len(report.families.families),
        counts.performance + counts.insights + counts.families,
        len(paths),
        alerts,
    )
    return {
        "window_start": report.window_start.isoformat(),
        "window_end": report.window_end.isoformat(),
        "recommendations": len(report.recommendations),
        "findings": len(report.findings),
        "families": len(report.families.families),
        "alerts": alerts,
        "files": [str(path) for path in paths],
    }
