"""Build reports from the stored history: one window at a time, or only the windows that changed.

Performance rows are kept per aligned period (a UTC day by default), so an hourly refresh does not
re-analyse the whole history: it finds the runs harvested (or recorded by the executor) since its
previous pass, maps them to their periods, and rebuilds only those periods -- usually just today.
The insights report analyses the whole look-back window (trends, retries, caching need the long
view) once a day. Every report learns on from the models the previous ones stored
(``analytics_models``: failure families, task baselines, SLO states) and stores what it changed,
so nothing is relearnt from scratch. Everything here is synchronous and Prefect-free; the flows
run it in a thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from analytics import AnalysisConfig, Report, WorkflowContext, build_report
from analytics.learning_model import Alert, LearnedModels
from flows.analytics.database import Tables, database_now, read_watermark, write_watermark
from flows.analytics.history import History, Window, read_history
from flows.analytics.models import load_models, store_models
from flows.analytics.outputs import RowCounts, replace_window_rows
from trinity.core.config import load_settings
from trinity.core.types import as_utc

PERFORMANCE_WATERMARK = "performance-refresh"
DEFAULT_PERIOD = dt.timedelta(days=1)
DEFAULT_LOOKBACK = dt.timedelta(days=30)
# SQLite keeps CURRENT_TIMESTAMP (execution_logs.created_at) to the second, rounded down.
_CREATED_SLACK = dt.timedelta(seconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

ContextFor = Callable[[pd.DataFrame], Mapping[str, WorkflowContext]]


def floor_time(moment: dt.datetime, period: dt.timedelta) -> dt.datetime:
    """The start of the period (counted from the Unix epoch, so days start at 00:00 UTC)."""
    return _EPOCH + ((as_utc(moment) - _EPOCH) // period) * period


def analysis_config() -> AnalysisConfig:
    """The analysis thresholds, with what the configuration changes (``alerts.forecast_horizon_days``)."""
    horizon = load_settings().alerts.forecast_horizon_days
    return AnalysisConfig() if horizon is None else AnalysisConfig(forecast_horizon_days=float(horizon))


def build_window_report(
    engine: sa.Engine,
    tables: Tables,
    window: Window,
    context_for: ContextFor,
    *,
    now: dt.datetime,
    config: AnalysisConfig | None = None,
    models: LearnedModels | None = None,
    history: History | None = None,
) -> tuple[Report, History]:
    """Read one window of history (unless given, e.g. read from InfluxDB) and analyse it, learning
    on from ``models`` (default: the stored ones); the models the report changed are stored."""
    history = history if history is not None else read_history(engine, tables, window)
    if models is None:
        with engine.connect() as connection:
            models = load_models(connection, tables)
    report = build_report(
        runs=history.runs,
        tasks=history.tasks,
        context=context_for(history.runs),
        window_start=window.start,
        window_end=window.end,
        now=now,
        config=config or analysis_config(),
        models=models,
    )
    with engine.begin() as connection:
        store_models(connection, tables, report)
    return report, history


def touched_periods(
    connection: sa.Connection,
    tables: Tables,
    *,
    since: dt.datetime | None,
    period: dt.timedelta,
    earliest: dt.datetime,
    now: dt.datetime,
) -> list[dt.datetime]:
    """Starts of the periods (from ``earliest`` on) holding runs written since ``since``
    (without ``since``, the first pass: every period holding runs)."""
    first, last = floor_time(earliest, period), floor_time(now, period)
    since = since or _EPOCH
    harvested, logs = tables.harvested_runs, tables.execution_logs
    reference = sa.func.coalesce(logs.c.expected_start_time, logs.c.started_at, logs.c.ended_at)
    moments = list(
        connection.execute(
            sa.select(harvested.c.reference_time).where(
                harvested.c.harvested_at >= since, harvested.c.reference_time >= first
            )
        ).scalars()
    )
    # Runs only the executor recorded (never harvested, e.g. no Prefect API reachable): by the
    # time their row was written. Harvested runs are tracked by harvested_at above.
    harvested_run = sa.select(harvested.c.flow_run_id).where(harvested.c.flow_run_id == logs.c.flow_run_id)
    moments += connection.execute(
        sa.select(reference).where(
            logs.c.created_at >= since - _CREATED_SLACK, reference >= first, ~harvested_run.exists()
        )
    ).scalars()
    starts = {floor_time(moment, period) for moment in moments if moment is not None}
    return sorted(start for start in starts if first <= start <= last)


@dataclass
class RefreshResult:
    """What one performance refresh rebuilt."""

    periods: list[dt.datetime] = field(default_factory=list)
    rows: int = 0
    runs: int = 0
    task_runs: int = 0
    latest: Report | None = None
    since: dt.datetime | None = None  # the watermark this pass started from (None: first pass)
    alerts: list[Alert] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the run's artifact."""
        since = self.since.isoformat() if self.since else "the beginning"
        if not self.periods:
            return f"no runs recorded since {since}: no period rebuilt"
        first, last = self.periods[0].isoformat(), self.periods[-1].isoformat()
        span = first if first == last else f"{first} to {last}"
        return (
            f"rebuilt {len(self.periods)} period(s) ({span}) with runs recorded since {since}: "
            f"{self.runs} runs, {self.task_runs} task runs, {self.rows} rows"
        )


def refresh_performance(
    engine: sa.Engine,
    tables: Tables,
    context_for: ContextFor,
    *,
    now: dt.datetime | None = None,
    period: dt.timedelta = DEFAULT_PERIOD,
    lookback: dt.timedelta = DEFAULT_LOOKBACK,
    config: AnalysisConfig | None = None,
) -> RefreshResult:
    """Rebuild the performance rows of every period touched since the previous refresh.

    ``latest`` is the report of the most recent period rebuilt (for the LOGS files and artifacts).
    """
    with engine.connect() as connection:
        started = database_now(connection)
        moment = as_utc(now) if now else started
        since = read_watermark(connection, tables, PERFORMANCE_WATERMARK)
        periods = touched_periods(
            connection, tables, since=since, period=period, earliest=moment - lookback, now=moment
        )
    result = RefreshResult(periods=periods, since=since)
    models: LearnedModels | None = None
    for start in periods:
        window = Window(start=start, end=start + period)
        report, history = build_window_report(
            engine, tables, window, context_for, now=moment, config=config, models=models
        )
        models = report.models  # each period learns on from the one before
        with engine.begin() as connection:
            counts = replace_window_rows(connection, tables, report, insights=False)
        result.rows += counts.performance
        result.runs += len(history.runs)
        result.task_runs += len(history.tasks)
        result.alerts += report.alerts
        result.latest = report
    with engine.begin() as connection:
        write_watermark(connection, tables, PERFORMANCE_WATERMARK, started)
    return result


def insights_window(now: dt.datetime, days: int) -> Window:
    """The ``days`` UTC days ending with today: today's runs so far are in, and a rerun on the same
    day analyses (and replaces the rows of) the same window."""
    end = floor_time(now, dt.timedelta(days=1)) + dt.timedelta(days=1)
    return Window(start=end - dt.timedelta(days=days), end=end)


def write_report_rows(
    engine: sa.Engine, tables: Tables, report: Report, *, workflow: str | None = None
) -> RowCounts:
    """Replace the performance and insight rows of the report's window (``workflow``: only its rows)."""
    with engine.begin() as connection:
        return replace_window_rows(connection, tables, report, workflow=workflow)
