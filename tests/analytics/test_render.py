"""Renderers: the LOGS tree, the Markdown summary and flat rows."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path

import pytest

from analytics import (
    LOGS_TREE_PATHS,
    Report,
    build_report,
    insight_rows,
    performance_rows,
    render_logs_tree,
    render_markdown_summary,
)
from analytics.render.charts import MAX_SERIES, duration_trends_svg
from flows.analytics.outputs import write_logs_tree
from tests.analytics.factories import T0
from tests.analytics.synthetic import FANOUT, SyntheticHistory, generate_history


@pytest.fixture(scope="module")
def history() -> SyntheticHistory:
    return generate_history(n_runs=400, seed=3)


@pytest.fixture(scope="module")
def report(history: SyntheticHistory) -> Report:
    return build_report(runs=history.runs, tasks=history.tasks, context=history.context, now=T0)


@pytest.fixture(scope="module")
def tree(report: Report) -> dict[str, str | bytes]:
    return render_logs_tree(report)


def test_logs_tree_has_every_seed_file(tree: dict[str, str | bytes]) -> None:
    assert tuple(tree) == LOGS_TREE_PATHS
    for path, content in tree.items():
        if path.endswith(".json"):
            assert isinstance(content, str)
            assert json.loads(content)["window_start"].startswith("20")
        elif path.endswith(".md"):
            assert isinstance(content, str)
            assert content.startswith("# ")
        else:
            assert isinstance(content, bytes)
            assert b"<svg" in content[:1000]


def test_json_files_carry_the_report_numbers(report: Report, tree: dict[str, str | bytes]) -> None:
    times = json.loads(tree["performance/execution_times.json"])
    first = report.performance.workflows[0]
    assert times["workflows"][0]["workflow"] == first.workflow
    assert times["workflows"][0]["duration"]["p95"] == pytest.approx(first.duration.p95)
    usage = json.loads(tree["performance/resource_usage.json"])
    assert {t["task_id"] for t in usage["tasks"]} == {t.task_id for t in report.performance.tasks}
    bottlenecks = json.loads(tree["performance/bottleneck_analysis.json"])
    assert [w["workflow"] for w in bottlenecks["workflows"]] == [b.workflow for b in report.bottlenecks]
    patterns = json.loads(tree["patterns/workflow_usage.json"])
    assert sum(patterns["by_hour_utc"]) == report.totals["runs"]
    integration = json.loads(tree["patterns/integration_patterns.json"])
    assert sum(a["task_runs"] for a in integration["actions"].values()) == report.totals["task_runs"]
    behavior = json.loads(tree["patterns/user_behavior.json"])
    assert behavior["triggers"][FANOUT] == {"schedule": report.usage.runs_by_workflow[FANOUT]}


def test_markdown_documents_quote_recommendations(report: Report, tree: dict[str, str | bytes]) -> None:
    suggestions = tree["optimization/suggestions.md"]
    assert isinstance(suggestions, str)
    for rec in report.recommendations:
        assert rec.title in suggestions
        assert rec.yaml_diff in suggestions
    business = tree["insights/business_impact.md"]
    assert isinstance(business, str)
    assert "success_rate_min" in business


def test_charts_are_deterministic(report: Report, tree: dict[str, str | bytes]) -> None:
    again = render_logs_tree(report)
    for path in ("charts/duration_trends.svg", "charts/critical_path_gantt.svg", "charts/usage_heatmap.svg"):
        assert again[path] == tree[path]


def test_summary_lists_breaches_and_recommendations(report: Report) -> None:
    text = render_markdown_summary(report)
    assert text.startswith("# Trinity run analysis")
    assert "## Specification breaches" in text
    for rec in report.recommendations:
        assert rec.title in text
    assert f"## Recommendations ({len(report.recommendations)})" in text


def test_performance_rows_are_flat_and_uniform(report: Report) -> None:
    rows = performance_rows(report)
    assert len(rows) == len(report.performance.workflows) + len(report.performance.tasks)
    keys = set(rows[0])
    assert all(set(r) == keys for r in rows)
    assert {"workflow", "task_id", "window_start", "window_end", "duration_p95_seconds"} <= keys
    assert isinstance(rows[0]["window_start"], datetime)
    for row in rows:
        assert all(not isinstance(v, dict | list) for v in row.values())
        assert all(v == v for v in row.values() if isinstance(v, float))  # no NaN


def test_insight_rows_cover_recommendations_and_findings(report: Report) -> None:
    rows = insight_rows(report)
    assert len(rows) == len(report.recommendations) + len(report.findings)
    recs = [r for r in rows if r["source"] == "recommendation"]
    assert all(r["yaml_diff"] for r in recs)
    json.dumps([{k: v for k, v in r.items() if not k.startswith("window")} for r in rows], allow_nan=False)


def test_written_logs_tree_holds_the_seed_files(report: Report, tmp_path: Path) -> None:
    written = write_logs_tree(report, tmp_path)

    on_disk = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file())
    # The seed's LOGS layout, folder by folder.
    seed_layout = {
        "performance": "execution_times resource_usage bottleneck_analysis anomalies forecasts",
        "optimization": "suggestions performance_improvements architecture_recommendations",
        "patterns": "workflow_usage integration_patterns user_behavior failure_families",
        "insights": "business_impact technical_learnings future_opportunities",
        "charts": "duration_trends critical_path_gantt usage_heatmap",
    }
    suffix = {"performance": ".json", "patterns": ".json", "charts": ".svg"}
    expected = [
        f"{folder}/{name}{suffix.get(folder, '.md')}"
        for folder, names in seed_layout.items()
        for name in names.split()
    ]
    assert len(expected) == 18
    assert on_disk == sorted(expected)
    assert sorted(written) == sorted(tmp_path / name for name in on_disk)
    assert all(path.stat().st_size > 0 for path in written)


def test_duration_trends_show_the_busiest_workflows_when_there_are_many(report: Report) -> None:
    first = report.performance.workflows[0]
    many = [dataclasses.replace(first, workflow=f"wf-{i:02d}", runs=i) for i in range(30)]
    crowded = dataclasses.replace(report, performance=dataclasses.replace(report.performance, workflows=many))
    svg = duration_trends_svg(crowded).decode()
    shown = {w.workflow for w in many if f"{w.workflow} p50" in svg}
    assert shown == {w.workflow for w in many[-MAX_SERIES:]}
    assert f"the {MAX_SERIES} busiest of 30 workflows" in svg
