"""build_report on unusual input: nothing, no context, windows, sampling, broken documents."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analytics import AnalysisConfig, FrameError, WorkflowContext, build_report, render_logs_tree
from specs.models import Workflow
from tests.analytics.factories import T0, frames, run_row, task, task_row, workflow_doc
from tests.analytics.synthetic import ETL, generate_history


def test_empty_history_gives_an_empty_report_that_renders() -> None:
    runs, tasks = frames([], [])
    report = build_report(runs=runs, tasks=tasks, context={}, now=T0)
    assert report.totals == {"runs": 0, "task_runs": 0, "workflows": 0}
    assert report.recommendations == []
    assert report.findings == []
    json.dumps(report.to_dict(), allow_nan=False)
    files = render_logs_tree(report)
    assert "No recommendations in this window." in str(files["optimization/suggestions.md"])


def test_bad_frames_raise_frame_error() -> None:
    runs, tasks = frames([], [])
    with pytest.raises(FrameError, match="runs frame is missing column"):
        build_report(runs=runs.drop(columns=["state"]), tasks=tasks, context={})


def test_workflows_without_context_get_performance_only() -> None:
    history = generate_history(n_runs=300, seed=2)
    report = build_report(runs=history.runs, tasks=history.tasks, context={})
    assert {w.workflow for w in report.performance.workflows} == set(history.runs["workflow"])
    assert report.recommendations == []
    assert report.bottlenecks == []
    assert report.spec_checks == []
    assert any("no workflow document" in note for note in report.notes)


def test_window_bounds_select_runs() -> None:
    history = generate_history(n_runs=300, seed=2)
    start = pd.Timestamp(history.runs["expected_start_time"].min()) + pd.Timedelta(days=10)
    end = start + pd.Timedelta(days=5)
    report = build_report(
        runs=history.runs, tasks=history.tasks, context=history.context, window_start=start, window_end=end
    )
    expected = history.runs["expected_start_time"].between(start, end).sum()
    assert report.totals["runs"] == expected
    assert (report.window_start, report.window_end) == (start, end)


def test_sampling_is_stated_in_the_report() -> None:
    history = generate_history(n_runs=300, seed=2)
    config = AnalysisConfig(critical_path_max_cells=200)
    report = build_report(runs=history.runs, tasks=history.tasks, context=history.context, config=config)
    etl = next(b for b in report.bottlenecks if b.workflow == ETL)
    assert etl.sampled
    assert etl.runs_analysed < etl.runs_completed
    assert any(
        note.startswith(f"{ETL}: critical path and parallelism computed on a random sample")
        for note in report.notes
    )


def test_a_cyclic_document_is_noted_not_fatal() -> None:
    history = generate_history(n_runs=300, seed=2)
    cyclic = workflow_doc([task("a", "b"), task("b", "a")], name=ETL)
    context = dict(history.context)
    context[ETL] = WorkflowContext(cyclic)
    report = build_report(runs=history.runs, tasks=history.tasks, context=context)
    assert any("cannot be analysed" in note and "cycle" in note for note in report.notes)
    assert all(r.workflow != ETL for r in report.recommendations)


def test_context_from_models_round_trips() -> None:
    history = generate_history(n_runs=200, seed=1)
    model = Workflow.model_validate(history.context[ETL].document)
    context = WorkflowContext.from_models(model)
    assert context.document["tasks"][0]["id"] == "extract"
    assert "with" in context.document["tasks"][0]
    assert context.success_metrics() == {}


def test_unfinished_and_unstarted_work_is_tolerated() -> None:
    runs = [run_row(f"r{i}", start=i * 600.0, end=i * 600.0 + 30) for i in range(30)]
    runs.append(run_row("running", state="RUNNING", start=30 * 600.0, end=None))
    tasks = [task_row(f"r{i}", "a", i * 600.0, i * 600.0 + 10) for i in range(30)]
    tasks += [task_row(f"r{i}", "b", i * 600.0 + 10, i * 600.0 + 30) for i in range(30)]
    pending = task_row("running", "b", 0, 0, state="PENDING")
    pending.update(start_time=None, end_time=None, duration_seconds=None, attempts=None)
    tasks += [task_row("running", "a", 18_000.0, 18_010.0), pending]
    run_frame, task_frame = frames(runs, tasks)
    doc = workflow_doc([task("a"), task("b", "a")])
    report = build_report(runs=run_frame, tasks=task_frame, context={"wf": WorkflowContext(doc)})
    perf = report.performance.workflows[0]
    assert perf.states == {"COMPLETED": 30, "RUNNING": 1}
    assert perf.success_rate == 1.0
    assert report.bottlenecks[0].runs_analysed == 30
    assert report.recommendations == []
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_common_slow_mode_is_not_cut_off_by_a_timeout() -> None:
    # A third of the runs handle a big batch and take 8x longer: a workload, not a hang.
    runs, tasks = [], []
    for i in range(60):
        length = 400.0 if i % 3 == 0 else 50.0 + i % 5
        runs.append(run_row(f"r{i}", start=i * 3600.0, end=i * 3600.0 + length))
        tasks.append(task_row(f"r{i}", "load", i * 3600.0, i * 3600.0 + length))
    run_frame, task_frame = frames(runs, tasks)
    context = {"wf": WorkflowContext(workflow_doc([task("load")]))}
    report = build_report(runs=run_frame, tasks=task_frame, context=context)
    assert [r for r in report.recommendations if r.kind == "timeout"] == []
