"""Which findings are worth telling someone about: the alerts a report raises.

Four kinds, each one Prefect event (the flows emit them; Prefect automations turn them into
notifications):

* ``trinity.slo.breached`` -- a success metric is breached in the window;
* ``trinity.slo.forecast`` -- its trend will breach it within the forecast horizon;
* ``trinity.failure.new_family`` -- a failure family no report had seen before;
* ``trinity.anomaly`` -- a multivariate anomaly on a task run the models had not seen before.

Alerts are about the present: only windows, families and task runs that reach back at most
``alert_max_age_hours`` from the report's time, at most ``alert_max_events`` per report (in the
order above). An SLO alert is raised again at most once per ``alert_repeat_hours`` (the time it
was last raised is kept in the metric's :class:`~analytics.learning_model.SloState`); families and
anomalies are new only once by construction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from analytics.config import AnalysisConfig
from analytics.frames import epoch_to_timestamp
from analytics.learning_model import (
    SLO,
    Alert,
    FailureFamily,
    Forecast,
    LearnedModels,
    MultivariateAnomaly,
)
from analytics.report_model import SpecCheck, jsonable
from trinity.core.alerts import ALERT_EVENTS, ANOMALY, NEW_FAILURE_FAMILY, SLO_BREACHED, SLO_FORECAST

__all__ = ["ALERT_EVENTS", "ANOMALY", "NEW_FAILURE_FAMILY", "SLO_BREACHED", "SLO_FORECAST", "select_alerts"]
# Flow run ids an alert about a family carries (the full list is in the report).
_RUNS_IN_ALERT = 20


@dataclasses.dataclass(frozen=True)
class AlertContext:
    """When the report was made and what window it covers (epoch seconds)."""

    now: float
    window_start: float
    window_end: float

    def recent(self, moment: float | None, config: AnalysisConfig) -> bool:
        return moment is not None and moment >= self.now - config.alert_max_age_hours * 3600.0

    def window(self) -> dict[str, Any]:
        bounds = {"window_start": self.window_start, "window_end": self.window_end}
        return {name: epoch_to_timestamp(value).isoformat() for name, value in bounds.items()}


def _due(
    models: LearnedModels, workflow: str, metric: str, event: str, ctx: AlertContext, config: AnalysisConfig
) -> bool:
    """True (and noted in the metric's state) when this SLO alert was not raised lately."""
    key = LearnedModels.slo_key(workflow, metric)
    state = models.slos.get(key)
    if state is None:
        return False
    last = state.alerted.get(event)
    if last is not None and ctx.now - last < config.alert_repeat_hours * 3600.0:
        return False
    models.update(SLO, key, dataclasses.replace(state, alerted={**state.alerted, event: ctx.now}))
    return True


def _slo_alerts(
    checks: list[SpecCheck],
    forecasts: list[Forecast],
    models: LearnedModels,
    ctx: AlertContext,
    config: AnalysisConfig,
) -> list[Alert]:
    out: list[Alert] = []
    if not ctx.recent(ctx.window_end, config):
        return out
    for check in checks:
        if check.breached and _due(models, check.workflow, check.metric, SLO_BREACHED, ctx, config):
            payload = {**jsonable(check), **ctx.window()}
            out.append(Alert(SLO_BREACHED, check.workflow, f"{check.workflow}/{check.metric}", payload))
    for forecast in forecasts:
        if forecast.status == "breach_expected" and _due(
            models, forecast.workflow, forecast.metric, SLO_FORECAST, ctx, config
        ):
            payload = {**jsonable(forecast), **ctx.window()}
            out.append(
                Alert(SLO_FORECAST, forecast.workflow, f"{forecast.workflow}/{forecast.metric}", payload)
            )
    return out


def _family_alerts(families: list[FailureFamily], ctx: AlertContext, config: AnalysisConfig) -> list[Alert]:
    out: list[Alert] = []
    for family in families:
        last = family.last_seen.timestamp() if family.last_seen is not None else None
        if not family.new or not ctx.recent(last, config):
            continue
        payload = jsonable(family)
        payload["flow_run_ids"] = payload["flow_run_ids"][:_RUNS_IN_ALERT]
        for workflow in family.workflows:
            out.append(Alert(NEW_FAILURE_FAMILY, workflow, f"{workflow}/{family.id}", payload))
    return out


def _anomaly_alerts(
    anomalies: list[MultivariateAnomaly], ctx: AlertContext, config: AnalysisConfig
) -> list[Alert]:
    out: list[Alert] = []
    for anomaly in anomalies:
        start = anomaly.start_time.timestamp() if anomaly.start_time is not None else None
        if anomaly.new and ctx.recent(start, config):
            key = f"{anomaly.workflow}/{anomaly.task}/{anomaly.flow_run_id}/{anomaly.task_run_name}"
            out.append(Alert(ANOMALY, anomaly.workflow, key, jsonable(anomaly)))
    return out


def select_alerts(
    *,
    checks: list[SpecCheck],
    forecasts: list[Forecast],
    families: list[FailureFamily],
    anomalies: list[MultivariateAnomaly],
    models: LearnedModels,
    ctx: AlertContext,
    config: AnalysisConfig,
) -> list[Alert]:
    """The alerts of one report, most important first; ``models`` notes the SLO alerts raised."""
    alerts = _slo_alerts(checks, forecasts, models, ctx, config)
    alerts += _family_alerts(families, ctx, config)
    alerts += _anomaly_alerts(anomalies, ctx, config)
    return alerts[: config.alert_max_events]
