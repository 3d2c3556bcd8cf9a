"""The learning part of a report: failure families, multivariate anomalies, SLO forecasts, alerts.

:func:`learn` takes the prepared frames and the models learnt so far (from the previous reports)
and returns the findings with the updated models; the caller stores those for the next report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.alerts import AlertContext, select_alerts
from analytics.config import AnalysisConfig
from analytics.families import learn_families
from analytics.forecasts import forecast_slos
from analytics.frames import PreparedFrames, WorkflowContext
from analytics.learning_model import (
    Alert,
    FamilySection,
    Forecast,
    LearnedModels,
    MultivariateSection,
)
from analytics.multivariate import UNAVAILABLE_FEATURES, detect_multivariate
from analytics.report_model import SpecCheck
from analytics.workflow_doc import DocInfo


@dataclass
class Learning:
    """What :func:`learn` found, and the models after this report."""

    families: FamilySection
    multivariate: MultivariateSection
    forecasts: list[Forecast]
    alerts: list[Alert]
    models: LearnedModels = field(repr=False)


def nothing_learnt(config: AnalysisConfig, models: LearnedModels | None) -> Learning:
    """The empty result, for reports made without learning."""
    return Learning(
        families=FamilySection([], config.family_distance_threshold, 0, 0, 0),
        multivariate=MultivariateSection(
            [], [], config.mv_min_score, config.mv_feature_z, list(UNAVAILABLE_FEATURES)
        ),
        forecasts=[],
        alerts=[],
        models=models.copy() if models is not None else LearnedModels(),
    )


def _roots(docs: Mapping[str, DocInfo]) -> dict[str, set[str]]:
    return {name: {tid for tid, task in doc.tasks.items() if not task.needs} for name, doc in docs.items()}


def learn(
    prepared: PreparedFrames,
    runs_by_workflow: Mapping[str, pd.DataFrame],
    tasks_by_workflow: Mapping[str, pd.DataFrame],
    docs: Mapping[str, DocInfo],
    context: Mapping[str, WorkflowContext],
    checks: list[SpecCheck],
    models: LearnedModels | None,
    *,
    now: pd.Timestamp,
    config: AnalysisConfig,
) -> Learning:
    """Families, multivariate anomalies, forecasts and alerts of one window; ``models`` (the stored
    state, or None for none) is not changed: the result carries an updated copy."""
    learnt = models.copy() if models is not None else LearnedModels()
    runs, tasks = prepared.runs, prepared.tasks
    flow_run_ids = runs["flow_run_id"].to_numpy(dtype=object)
    start, end = prepared.window_start.timestamp(), prepared.window_end.timestamp()
    failed = tasks[tasks["failed"].to_numpy() & ~tasks["skipped"].to_numpy()]
    families = learn_families(failed, flow_run_ids, learnt, window=(start, end), config=config)
    multivariate = detect_multivariate(
        tasks_by_workflow,
        runs["queue_wait"].to_numpy(dtype=np.float64),
        flow_run_ids,
        learnt,
        roots=_roots(docs),
        config=config,
    )
    as_of = min(end, now.timestamp())
    metrics = {name: ctx.success_metrics() for name, ctx in context.items() if ctx.success_metrics()}
    forecasts = forecast_slos(runs_by_workflow, metrics, learnt, as_of=as_of, config=config)
    alerts = select_alerts(
        checks=checks,
        forecasts=forecasts,
        families=families.families,
        anomalies=multivariate.anomalies,
        models=learnt,
        ctx=AlertContext(now=now.timestamp(), window_start=start, window_end=end),
        config=config,
    )
    return Learning(families, multivariate, forecasts, alerts, learnt)
