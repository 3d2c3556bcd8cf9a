"""Reports from real runs: planted facts are found, and the flows write files, artifacts and rows."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from analytics import LOGS_TREE_PATHS
from deployments.service import deploy_workflow
from flows.analytics.context import load_context_source
from flows.analytics.database import read_watermark
from flows.analytics.flows import (
    HARVEST_ARTIFACT,
    PERFORMANCE_REFRESH_ARTIFACT,
    harvest,
    insights_report,
    performance_report,
)
from flows.analytics.harvest import harvest_history
from flows.analytics.history import Window
from flows.analytics.reports import (
    PERFORMANCE_WATERMARK,
    build_window_report,
    floor_time,
    insights_window,
    refresh_performance,
)
from tests.api.support import make_settings, start_api_server
from tests.flows.analytics.support import Store, recorded_run, run_and_settle, utcnow
from tests.flows.factories import flow_run_id, log_lines, specification, workflow

pytestmark = pytest.mark.anyio

RUNS = 12


def _planted() -> tuple[Any, Any]:
    spec = specification(
        {
            "type": "object",
            "properties": {
                "delay": {"type": "number"},
                "counter": {"type": "string"},
                "fail_times": {"type": "integer"},
            },
            "required": ["delay", "counter", "fail_times"],
        },
        name="planted-spec",
    )
    wf = workflow(
        [
            {"id": "slow", "uses": "sleep", "with": {"seconds": "${{ params.delay }}"}},
            {
                "id": "flaky",
                "uses": "python",
                "retries": 1,
                "with": {
                    "callable": "tests.flows.helpers:flaky",
                    "args": ["${{ params.counter }}", "${{ params.fail_times }}"],
                },
            },
            {"id": "done", "uses": "noop", "needs": ["slow", "flaky"]},
        ],
        name="planted",
        spec_name="planted-spec",
    )
    return wf, spec


async def test_slow_and_flaky_tasks_are_found(prefect_api: object, trinity_db: Store, tmp_path: Path) -> None:
    started = utcnow()
    wf, spec = _planted()
    await deploy_workflow(workflow=wf, specification=spec, work_pool="analytics-tests")
    for i in range(RUNS):
        # "slow" sleeps longer every run; "flaky" fails its first attempt, and in every other run
        # its retry too.
        await run_and_settle(
            wf,
            spec,
            expected_tasks=3,
            delay=0.1 + 0.1 * i,
            counter=str(tmp_path / f"counter-{i}"),
            fail_times=2 if i % 2 else 1,
        )
    await harvest_history(engine=trinity_db.engine, since=started)
    source = await load_context_source(trinity_db.engine, trinity_db.tables, from_prefect=True)
    window = Window(start=started - dt.timedelta(minutes=1), end=utcnow() + dt.timedelta(minutes=1))

    report, history = await anyio.to_thread.run_sync(
        lambda: build_window_report(
            trinity_db.engine, trinity_db.tables, window, source.for_runs, now=utcnow()
        )
    )

    assert report.totals["runs"] == RUNS
    assert len(history.tasks) == 3 * RUNS
    slow = next(t for t in report.performance.tasks if t.task_id == "slow")
    assert slow.trend.direction == "slower"
    assert slow.trend.slope_seconds_per_run == pytest.approx(0.1, rel=0.5)
    slow_findings = {f.kind for f in report.findings if (f.workflow, f.task_id) == ("planted", "slow")}
    assert slow_findings & {"trend", "bottleneck", "anomaly"}, [f.id for f in report.findings]
    flaky = next(r for r in report.recommendations if r.id == "retries:planted:flaky")
    assert flaky.evidence["current_retries"] == 1
    assert flaky.evidence["proposed_retries"] > 1
    assert flaky.evidence["first_attempt_failure_rate"] == 1.0
    assert flaky.evidence["retry_success_chance"] == pytest.approx(0.5)
    added = [line for line in flaky.yaml_diff.splitlines() if line.startswith("+") and "retries" in line]
    assert added == [f"+- retries: {flaky.evidence['proposed_retries']}"]


async def _artifacts(key: str) -> list[Any]:
    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


async def test_report_flows_write_files_artifacts_and_rows(
    prefect_api: object, trinity_db: Store, tmp_path: Path
) -> None:
    wf = workflow(
        [{"id": "extract", "uses": "noop"}, {"id": "load", "uses": "noop", "needs": ["extract"]}],
        name="reported",
    )
    ran = [flow_run_id(await run_and_settle(wf, specification(), expected_tasks=2)) for _ in range(3)]
    logs = tmp_path / "LOGS"
    # execution_logs.created_at has whole seconds on SQLite: let it tick past the last run.
    await anyio.sleep(1.1)

    state = await performance_report(logs_dir_path=str(logs), database_url=trinity_db.url, return_state=True)

    assert state.is_completed(), state.message
    result = await state.aresult()
    today = floor_time(utcnow(), dt.timedelta(days=1))
    assert today.isoformat() in result["periods"]
    written = {str(Path(path).relative_to(logs)) for path in result["files"]}
    assert written == {p for p in LOGS_TREE_PATHS if p.startswith(("performance/", "patterns/"))}
    assert '"workflow": "reported"' in (logs / "performance" / "execution_times.json").read_text()
    (artifact,) = [
        a for a in await _artifacts("trinity-performance-report") if a.flow_run_id == flow_run_id(state)
    ]
    assert "reported" in str(artifact.data)
    (refresh,) = [
        a for a in await _artifacts(PERFORMANCE_REFRESH_ARTIFACT) if a.flow_run_id == flow_run_id(state)
    ]
    assert f"rebuilt {len(result['periods'])} period(s)" in str(refresh.data)
    assert f"wrote {len(written)} file(s) to {logs}" in str(refresh.data)
    perf = trinity_db.tables.performance
    day_rows = trinity_db.rows(perf, perf.c.workflow == "reported", perf.c.window_start == today)
    assert {row["task_id"] for row in day_rows} == {None, "extract", "load"}
    whole = next(row for row in day_rows if row["task_id"] is None)
    assert whole["metrics"]["runs"] == 3

    with trinity_db.engine.connect() as connection:
        watermark = read_watermark(connection, trinity_db.tables, PERFORMANCE_WATERMARK)
    assert watermark is not None
    idle = await performance_report(logs_dir_path=str(logs), database_url=trinity_db.url, return_state=True)
    assert (await idle.aresult())["periods"] == []  # nothing new: no period rebuilt
    # An idle run still says so in the UI, without replacing the latest report artifact.
    (summary,) = [
        a for a in await _artifacts(PERFORMANCE_REFRESH_ARTIFACT) if a.flow_run_id == flow_run_id(idle)
    ]
    assert f"no runs recorded since {watermark.isoformat()}: no period rebuilt" in str(summary.data)
    assert f"left the files in {logs} as they were" in str(summary.data)
    assert " from Prefect " in str(summary.data)
    assert not [
        a for a in await _artifacts("trinity-performance-report") if a.flow_run_id == flow_run_id(idle)
    ]
    harvested = await harvest(database_url=trinity_db.url, return_state=True)
    (harvest_summary,) = [
        a for a in await _artifacts(HARVEST_ARTIFACT) if a.flow_run_id == flow_run_id(harvested)
    ]
    flow_runs = (await harvested.aresult())["flow_runs"]
    assert flow_runs >= 3  # the re-read window covers the runs above
    assert f"Read {flow_runs} runs from Prefect that ended since " in str(harvest_summary.data)
    sweep = "Secret block(s) left by runs that ended without deleting them"
    assert any(sweep in line for line in await log_lines(flow_run_id(harvested), until=sweep))
    ran.append(flow_run_id(await run_and_settle(wf, specification(), expected_tasks=2)))
    third = await performance_report(logs_dir_path=str(logs), database_url=trinity_db.url)
    assert today.isoformat() in third["periods"]
    day_rows = trinity_db.rows(perf, perf.c.workflow == "reported", perf.c.window_start == today)
    assert len(day_rows) == 3  # replaced, not added
    assert next(row for row in day_rows if row["task_id"] is None)["metrics"]["runs"] == 4

    insights = await insights_report(logs_dir_path=str(logs), database_url=trinity_db.url, return_state=True)
    assert insights.is_completed(), insights.message
    assert (logs / "optimization" / "suggestions.md").is_file()
    assert (logs / "charts" / "duration_trends.svg").read_bytes().startswith(b"<?xml")
    window = insights_window(utcnow(), 30)
    assert (await insights.aresult())["window_end"] == window.end.isoformat()
    keys = ("trinity-insights-report", "trinity-insights-workflows", "trinity-insights-recommendations")
    for key in keys:
        assert [a for a in await _artifacts(key) if a.flow_run_id == flow_run_id(insights)], key
    month = trinity_db.rows(perf, perf.c.workflow == "reported", perf.c.window_start == window.start)
    assert next(row for row in month if row["task_id"] is None)["metrics"]["runs"] == 4
    await insights_report(logs_dir_path=str(logs), database_url=trinity_db.url)
    assert len(trinity_db.rows(perf, perf.c.window_start == window.start, perf.c.workflow == "reported")) == 3

    # The API as deployed: the real app under uvicorn, with the bootstrap admin key.
    api = await anyio.to_thread.run_sync(
        lambda: start_api_server(make_settings(trinity_db.url, state_dir=tmp_path))
    )
    try:
        response = await anyio.to_thread.run_sync(
            lambda: api.client().get(
                "/analytics/performance", params={"workflow": "reported", "task_id": "load"}
            )
        )
    finally:
        await anyio.to_thread.run_sync(api.stop)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 2  # today's period and the 30-day window
    assert {item["window_start"][:10] for item in body["items"]} == {
        today.date().isoformat(),
        window.start.date().isoformat(),
    }


@pytest.mark.parametrize("trinity_db", ["sqlite", "postgres"], indirect=True)
def test_refresh_rebuilds_only_periods_with_new_runs(trinity_db: Store) -> None:
    now = utcnow()
    today = floor_time(now, dt.timedelta(days=1))
    three_days_ago = today - dt.timedelta(days=3)
    recorded_run(trinity_db.url, "recorded", now)
    recorded_run(trinity_db.url, "recorded", three_days_ago + dt.timedelta(hours=12))
    time.sleep(1.1)  # execution_logs.created_at has whole seconds on SQLite: let it tick over

    def refresh() -> list[dt.datetime]:
        result = refresh_performance(trinity_db.engine, trinity_db.tables, lambda runs: {})
        return result.periods

    first = refresh()
    assert first[0] == three_days_ago  # the first pass covers the whole look-back
    assert first[-1] == today
    perf = trinity_db.tables.performance
    rows = trinity_db.rows(perf, perf.c.task_id.is_(None))
    assert sorted(row["window_start"] for row in rows) == [three_days_ago, today]
    assert refresh() == []

    recorded_run(trinity_db.url, "recorded", now)
    assert refresh() == [today]
    today_rows = trinity_db.rows(perf, perf.c.task_id.is_(None), perf.c.window_start == today)
    assert [row["metrics"]["runs"] for row in today_rows] == [2]
