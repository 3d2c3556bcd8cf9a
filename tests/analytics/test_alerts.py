"""Which findings become alerts: recent ones, once (SLOs at most once a day), the gravest first."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from analytics import AnalysisConfig, Report, build_report
from analytics.alerts import NEW_FAILURE_FAMILY, SLO_BREACHED, SLO_FORECAST
from analytics.learning_model import LearnedModels
from tests.analytics.factories import frames, run_row, task_row
from tests.analytics.test_forecasts import TARGET, _context, _history

HOUR = pd.Timedelta(hours=1)


def _report(
    runs: pd.DataFrame,
    tasks: pd.DataFrame,
    now: pd.Timestamp,
    models: LearnedModels | None = None,
    **config: object,
) -> Report:
    return build_report(
        runs=runs,
        tasks=tasks,
        context=_context(duration_p95_seconds=TARGET),
        now=now,
        models=models,
        config=replace(AnalysisConfig(), **config),
    )


def _end(runs: pd.DataFrame) -> pd.Timestamp:
    return pd.Timestamp(runs["end_time"].max())


def test_a_breached_slo_alerts_once_a_day() -> None:
    runs, tasks = _history(lambda day: 700.0, days=3)
    now = _end(runs)
    first = _report(runs, tasks, now)
    (alert,) = first.alerts
    assert (alert.event, alert.workflow, alert.key) == (
        SLO_BREACHED,
        "nightly-ingest",
        "nightly-ingest/duration_p95_seconds",
    )
    assert alert.payload["metric"] == "duration_p95_seconds"
    assert alert.payload["target"] == TARGET
    assert alert.payload["observed"] > TARGET
    assert alert.payload["window_end"] == first.window_end.isoformat()
    state = first.models.slos["nightly-ingest/duration_p95_seconds"]
    assert state.alerted == {SLO_BREACHED: now.timestamp()}

    assert _report(runs, tasks, now + HOUR, first.models).alerts == []
    again = _report(runs, tasks, now + 25 * HOUR, first.models, alert_max_age_hours=48.0).alerts
    assert [a.event for a in again] == [SLO_BREACHED]


def test_a_forecast_breach_alerts_with_its_dates() -> None:
    runs, tasks = _history(lambda day: 300 + 10 * day, every=600)
    report = _report(runs, tasks, _end(runs))
    (alert,) = report.alerts
    assert alert.event == SLO_FORECAST
    (forecast,) = report.forecasts
    assert alert.payload["breach_expected_at"] == forecast.breach_expected_at.isoformat()  # type: ignore[union-attr]
    assert alert.payload["status"] == "breach_expected"


def test_old_windows_raise_no_alert() -> None:
    runs, tasks = _history(lambda day: 700.0, days=3)
    assert _report(runs, tasks, _end(runs) + 30 * HOUR).alerts == []


def test_new_failure_families_alert_per_workflow_and_only_once() -> None:
    rows, task_rows = [], []
    for i in range(6):
        workflow = "orders" if i % 2 else "billing"
        rows.append(run_row(f"r{i}", workflow=workflow, state="FAILED", start=60.0 * i, end=60.0 * i + 10))
        task_rows.append(
            task_row(
                f"r{i}",
                "load",
                60.0 * i,
                60.0 * i + 5,
                workflow=workflow,
                state="FAILED",
                error=f"TimeoutError: upstream api-{i}.example.com:443 did not answer in {30 + i} s",
            )
        )
    runs, tasks = frames(rows, task_rows)
    now = _end(runs)
    first = build_report(runs=runs, tasks=tasks, context={}, now=now)
    alerts = [a for a in first.alerts if a.event == NEW_FAILURE_FAMILY]
    assert sorted(a.workflow for a in alerts) == ["billing", "orders"]
    assert {a.payload["count"] for a in alerts} == {6}
    assert alerts[0].payload["signature"] == "TimeoutError: upstream <host> did not answer in <n> s"
    second = build_report(runs=runs, tasks=tasks, context={}, now=now, models=first.models)
    assert not [a for a in second.alerts if a.event == NEW_FAILURE_FAMILY]


def test_alerts_are_capped_gravest_first() -> None:
    runs, _ = _history(lambda day: 700.0, days=3)
    end = float((_end(runs) - runs["start_time"].min()).total_seconds())
    failed = run_row("late", workflow="nightly-ingest", state="FAILED", start=end - 60, end=end - 30)
    error = task_row(
        "late", "only", end - 60, end - 40, workflow="nightly-ingest", state="FAILED", error="boom"
    )
    extra_runs, tasks = frames([failed], [error])
    runs = pd.concat([runs, extra_runs], ignore_index=True)
    every = _report(runs, tasks, _end(runs))
    assert [a.event for a in every.alerts] == [SLO_BREACHED, NEW_FAILURE_FAMILY]
    assert [a.event for a in _report(runs, tasks, _end(runs), alert_max_events=1).alerts] == [SLO_BREACHED]
