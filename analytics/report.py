"""``build_report``: the whole analysis of one window of run history.

Pure: frames in, a :class:`~analytics.report_model.Report` out. Callers (the analytics flows, the
API) read history into frames first and write the rendered outputs themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from analytics.anomalies import detect_anomalies
from analytics.config import AnalysisConfig
from analytics.critical_path import analyse_bottlenecks, build_matrix
from analytics.failures import analyse_failures
from analytics.findings import (
    anomaly_findings,
    bottleneck_findings,
    failure_findings,
    forecast_findings,
    multivariate_findings,
    spec_findings,
    trend_findings,
)
from analytics.frames import PreparedFrames, WorkflowContext, as_utc, prepare_frames
from analytics.learning import learn, nothing_learnt
from analytics.learning_model import LearnedModels
from analytics.parallelism import analyse_parallelism, row_times
from analytics.performance import analyse_performance
from analytics.proposals import SEVERITY_ORDER
from analytics.recommendations import collect_proposals, to_recommendations
from analytics.report_model import Report, WorkflowBottlenecks
from analytics.spec_checks import check_specs
from analytics.usage import usage_patterns
from analytics.workflow_doc import DocInfo, read_document
from specs.dag import CycleError


def _read_docs(context: Mapping[str, WorkflowContext], notes: list[str]) -> dict[str, DocInfo]:
    docs: dict[str, DocInfo] = {}
    for name, ctx in sorted(context.items()):
        try:
            docs[name] = read_document(ctx.document)
        except CycleError as exc:
            notes.append(f"{name}: the workflow document cannot be analysed: {exc}.")
    return docs


def _split(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Rows per workflow, split once and shared by every stage."""
    return {str(wf): frame.iloc[pos] for wf, pos in frame.groupby("workflow", sort=True).indices.items()}


def _dag_analysis(
    prepared: PreparedFrames,
    runs_by_wf: Mapping[str, pd.DataFrame],
    tasks_by_wf: dict[str, pd.DataFrame],
    docs: Mapping[str, DocInfo],
    config: AnalysisConfig,
) -> list[WorkflowBottlenecks]:
    """Critical paths and parallelism per workflow.

    Adds ``ready_wait`` (seconds from all upstreams done to start) to each frame of ``tasks_by_wf``.
    """
    runs = prepared.runs
    out: list[WorkflowBottlenecks] = []
    flow_ids = runs["flow_run_id"].to_numpy(dtype=object)
    states = runs["state"].to_numpy(dtype=object)
    durations = runs["duration"].to_numpy(dtype=np.float64)
    for workflow, wf_runs in runs_by_wf.items():
        doc = docs.get(workflow)
        wf_tasks = tasks_by_wf.get(workflow)
        if doc is None:
            prepared.notes.append(
                f"{workflow}: no workflow document, so no critical path or parallelism analysis."
            )
        if doc is None or wf_tasks is None:
            continue
        matrix = build_matrix(
            wf_tasks, wf_runs, doc, max_cells=config.critical_path_max_cells, seed=config.seed
        )
        if matrix is None:
            continue
        if matrix.sampled:
            prepared.notes.append(
                f"{workflow}: critical path and parallelism computed on a random sample of "
                f"{matrix.run_codes.size} of {len(wf_runs)} runs (bounded work per workflow)."
            )
        times = row_times(wf_tasks, matrix, matrix.ready())
        ready_wait = pd.Series(np.nan, index=wf_tasks.index)
        ready_wait.loc[times.index] = times.wait
        tasks_by_wf[workflow] = wf_tasks.assign(ready_wait=ready_wait.to_numpy())
        codes = matrix.run_codes
        section = analyse_bottlenecks(
            workflow,
            matrix,
            completed=states[codes] == "COMPLETED",
            run_durations=durations[codes],
            flow_run_ids=[str(x) for x in flow_ids[codes]],
            runs_completed=int((wf_runs["state"] == "COMPLETED").sum()),
        )
        section.parallelism = analyse_parallelism(times, limit=doc.max_parallel_tasks, config=config)
        out.append(section)
    return out


def build_report(
    *,
    runs: pd.DataFrame,
    tasks: pd.DataFrame,
    context: Mapping[str, WorkflowContext],
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    now: datetime | None = None,
    config: AnalysisConfig | None = None,
    models: LearnedModels | None = None,
) -> Report:
    """Analyse the runs (and their task runs) whose expected start lies in the window.

    ``context`` maps workflow name -> :class:`WorkflowContext` (document and specification); a
    workflow without one still gets performance, anomalies and failures, but no critical path,
    spec checks or recommendations. ``models`` is what earlier reports learnt (failure families,
    task baselines, SLO states; None: nothing yet); the report carries the updated models in
    ``report.models``. Raises :class:`~analytics.frames.FrameError` for frames that break the
    contract.
    """
    config = config or AnalysisConfig()
    prepared = prepare_frames(runs, tasks, window_start=window_start, window_end=window_end)
    docs = _read_docs(context, prepared.notes)
    runs_p, tasks_p = prepared.runs, prepared.tasks
    runs_by_wf, tasks_by_wf = _split(runs_p), _split(tasks_p)
    bottlenecks = _dag_analysis(prepared, runs_by_wf, tasks_by_wf, docs, config)

    performance = analyse_performance(runs_by_wf, tasks_by_wf, config=config)
    anomalies = detect_anomalies(runs_p, tasks_p, runs_p["flow_run_id"].to_numpy(dtype=object), config=config)
    failures = analyse_failures(runs_p, tasks_p, docs, config=config)
    waits = {wf: g["queue_wait"].to_numpy() for wf, g in runs_by_wf.items()}
    spec_checks = check_specs(
        {name: ctx.success_metrics() for name, ctx in context.items() if ctx.success_metrics()},
        {w.workflow: w for w in performance.workflows},
        waits,
    )
    proposals = collect_proposals(
        docs=docs,
        tasks_by_workflow=tasks_by_wf,
        profiles=failures.retry_profiles,
        bottlenecks=bottlenecks,
        config=config,
    )
    recommendations, combined = to_recommendations(
        proposals, {p.workflow: context[p.workflow].document for p in proposals}
    )
    findings = (
        spec_findings(spec_checks)
        + failure_findings(failures)
        + bottleneck_findings(bottlenecks, config)
        + trend_findings(performance)
        + anomaly_findings(anomalies)
    )
    generated = as_utc(now) or as_utc(pd.Timestamp.now(tz="UTC"))
    learnt = (
        learn(
            prepared,
            runs_by_wf,
            tasks_by_wf,
            docs,
            context,
            spec_checks,
            models,
            now=generated,
            config=config,
        )
        if config.learn
        else nothing_learnt(config, models)
    )
    findings += forecast_findings(learnt.forecasts, generated) + multivariate_findings(learnt.multivariate)
    findings.sort(key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.kind, f.workflow, f.task_id or ""))
    return Report(
        window_start=prepared.window_start,
        window_end=prepared.window_end,
        generated_at=generated,
        workflows=sorted(runs_p["workflow"].unique().tolist()),
        totals={
            "runs": len(runs_p),
            "task_runs": len(tasks_p),
            "workflows": int(runs_p["workflow"].nunique()),
        },
        performance=performance,
        bottlenecks=bottlenecks,
        anomalies=anomalies,
        failures=failures,
        spec_checks=spec_checks,
        recommendations=recommendations,
        findings=findings,
        usage=usage_patterns(runs_p, tasks_p, docs),
        combined_diffs=combined,
        config=config.to_dict(),
        notes=prepared.notes,
        families=learnt.families,
        multivariate=learnt.multivariate,
        forecasts=learnt.forecasts,
        alerts=learnt.alerts,
        models=learnt.models,
    )
