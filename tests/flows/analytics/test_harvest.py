"""The harvest against a real Prefect server and a real database: runs, task runs, increments."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prefect import Flow, Task
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow_async
from prefect.states import Cancelled, Completed, Running

from deployments.service import deploy_workflow
from flows.analytics.harvest import harvest_history
from flows.analytics.records import executor_task_run_id
from flows.compiler import compile_workflow
from flows.recording import RunRecord, TaskRecord, write_execution_log
from flows.workflow_flow import build_flow
from tests.flows.analytics.support import Store, run_and_settle, utcnow
from tests.flows.factories import child_flow_runs, flow_run_id, specification, task_runs, workflow

pytestmark = pytest.mark.anyio


def _mixed_workflow(counter: Path) -> Any:
    return workflow(
        [
            {
                "id": "a",
                "uses": "python",
                "with": {"callable": "tests.flows.helpers:burn_cpu", "args": [20000]},
            },
            {"id": "items", "uses": "noop", "needs": ["a"], "for_each": "${{ [1, 2, 3] }}"},
            {
                "id": "flaky",
                "uses": "python",
                "retries": 1,
                "with": {"callable": "tests.flows.helpers:flaky", "args": [str(counter), 1]},
            },
            {
                "id": "broken",
                "uses": "python",
                "needs": ["a"],
                "with": {"callable": "tests.flows.helpers:boom"},
            },
            {"id": "after", "uses": "noop", "needs": ["broken"]},
        ],
        name="harvest-demo",
    )


@pytest.mark.parametrize(
    ("prefect_api", "trinity_db"), [("sqlite", "sqlite"), ("postgres", "postgres")], indirect=True
)
async def test_harvest_stores_runs_and_task_runs(
    prefect_api: object, trinity_db: Store, tmp_path: Path
) -> None:
    import logging

    logging.getLogger("prefect._internal.concurrency").setLevel(logging.DEBUG)
    started = utcnow()
    state = await run_and_settle(_mixed_workflow(tmp_path / "count"), specification(), expected_tasks=7)
    run_id = flow_run_id(state)

    result = await harvest_history(engine=trinity_db.engine, since=started)

    assert run_id in result.flow_runs
    assert result.runs_new == 0  # the executor wrote the row; the harvest completes it
    log = trinity_db.run_row(run_id)
    assert (log["workflow_name"], log["workflow_version"], log["status"]) == (
        "harvest-demo",
        "1.0.0",
        "FAILED",
    )
    assert set(log["metrics"]["tasks"]) == {
        "a",
        "items[0]",
        "items[1]",
        "items[2]",
        "flaky",
        "broken",
        "after",
    }
    tasks = trinity_db.task_rows(run_id)
    assert sorted(tasks) == ["a", "after", "broken", "flaky", "items[0]", "items[1]", "items[2]"]
    assert {(tasks[f"items[{i}]"]["task_id"], tasks[f"items[{i}]"]["map_index"]) for i in range(3)} == {
        ("items", 0),
        ("items", 1),
        ("items", 2),
    }
    assert (tasks["flaky"]["state_type"], tasks["flaky"]["attempts"]) == ("COMPLETED", 2)
    assert (tasks["broken"]["state_type"], tasks["broken"]["attempts"]) == ("FAILED", 1)
    assert "ValueError: boom" in tasks["broken"]["error_message"]
    assert (tasks["after"]["state_type"], tasks["after"]["state_name"]) == ("PENDING", "NotReady")
    assert tasks["a"]["inputs_hash"] == log["metrics"]["tasks"]["a"]["inputs_hash"]
    assert tasks["a"]["cpu_seconds"] is not None
    assert tasks["a"]["peak_memory_bytes"] > 0
    assert tasks["a"]["duration_seconds"] >= 0
    assert tasks["a"]["end_time"] >= tasks["a"]["start_time"]
    harvested = trinity_db.rows(trinity_db.tables.harvested_runs)
    assert [(row["flow_run_id"], row["trigger"], row["task_runs"]) for row in harvested] == [
        (run_id, "local", 7)
    ]

    # Other tests share this server: a re-read window reaching back to ``started`` keeps them out.
    again = await harvest_history(engine=trinity_db.engine, reread_window=result.ended_before - started)

    assert run_id in again.flow_runs  # inside the re-read window
    assert (again.runs_new, again.runs_changed, again.task_runs_new, again.task_runs_removed) == (0, 0, 0, 0)
    assert trinity_db.count(trinity_db.tables.task_runs) == 7
    assert trinity_db.count(trinity_db.tables.execution_logs) == 1


async def test_second_harvest_reads_only_runs_that_ended_since(
    prefect_api: object, trinity_db: Store
) -> None:
    started = utcnow()
    wf = workflow(
        [{"id": "one", "uses": "noop"}, {"id": "two", "uses": "noop", "needs": ["one"]}], name="inc"
    )
    first = [flow_run_id(await run_and_settle(wf, specification(), expected_tasks=2)) for _ in range(2)]
    initial = await harvest_history(engine=trinity_db.engine, since=started)
    assert sorted(initial.flow_runs) == sorted(first)
    assert initial.task_runs_new == 4

    later = flow_run_id(await run_and_settle(wf, specification(), expected_tasks=2))
    increment = await harvest_history(engine=trinity_db.engine, reread_window=dt.timedelta(0))

    assert increment.flow_runs == [later]
    assert (increment.task_runs_new, increment.task_runs_updated) == (2, 0)
    assert increment.ended_after == initial.ended_before

    reread = await harvest_history(engine=trinity_db.engine, reread_window=increment.ended_before - started)
    assert sorted(reread.flow_runs) == sorted([*first, later])
    assert (reread.runs_new, reread.runs_changed, reread.task_runs_new) == (0, 0, 0)
    assert trinity_db.count(trinity_db.tables.execution_logs) == 3
    assert trinity_db.count(trinity_db.tables.task_runs) == 6
    assert trinity_db.count(trinity_db.tables.harvested_runs) == 3


async def _manual_run(
    tags: list[str], task_names: list[str], *, flow_name: str = "trinity-workflow"
) -> tuple[Any, dict[str, Any]]:
    """A flow run made through the API, its task runs left Running (by default of the flow every
    workflow ran as in older versions)."""

    def body() -> None:
        return None

    flow: Flow[..., Any] = Flow(fn=body, name=flow_name)
    async with get_client() as client:
        flow_run = await client.create_flow_run(flow, tags=tags, state=Running())
        task_runs_by_name = {}
        for name in task_names:
            task = Task(fn=body, name=name.split("[", 1)[0])
            task_runs_by_name[name] = await client.create_task_run(
                task, flow_run.id, dynamic_key=name, name=name, state=Running()
            )
        await client.set_flow_run_state(flow_run.id, Completed(), force=True)
    return flow_run, task_runs_by_name


async def test_reread_window_picks_up_late_task_runs(prefect_api: object, trinity_db: Store) -> None:
    started = utcnow()
    tagged, tagged_tasks = await _manual_run(["trinity", "workflow:late-demo"], ["extract"])
    recorded, _ = await _manual_run(["trinity"], ["extract"])
    record = RunRecord(
        workflow_name="recorded-demo", workflow_version="2.0.0", flow_run_id=recorded.id, parameters={}
    )
    record.tasks = {
        "extract": TaskRecord(task_id="extract", state="COMPLETED", attempts=1, cpu_seconds=0.5),
        "load": TaskRecord(task_id="load", state="COMPLETED", attempts=1, inputs_hash="ab" * 32),
    }
    assert write_execution_log(record.row(status="COMPLETED", ended_at=utcnow()), url=trinity_db.url)

    first = await harvest_history(engine=trinity_db.engine, since=started)

    assert sorted(first.flow_runs) == sorted([tagged.id, recorded.id])
    assert trinity_db.run_row(tagged.id)["workflow_name"] == "late-demo"
    assert trinity_db.task_rows(tagged.id)["extract"]["state_type"] == "RUNNING"
    early = trinity_db.task_rows(recorded.id)
    assert early["extract"]["cpu_seconds"] == 0.5  # the executor's figure on Prefect's task run
    assert early["load"]["task_run_id"] == executor_task_run_id(recorded.id, "load")  # not in Prefect yet

    async with get_client() as client:  # what Prefect receives late
        await client.set_task_run_state(tagged_tasks["extract"].id, Completed(), force=True)
        load = await client.create_task_run(
            Task(fn=lambda: None, name="load"),
            recorded.id,
            dynamic_key="load",
            name="load",
            state=Completed(),
        )

    outside = await harvest_history(engine=trinity_db.engine, reread_window=dt.timedelta(0))
    assert outside.flow_runs == []
    assert trinity_db.task_rows(tagged.id)["extract"]["state_type"] == "RUNNING"

    inside = await harvest_history(engine=trinity_db.engine, reread_window=outside.ended_before - started)

    assert sorted(inside.flow_runs) == sorted([tagged.id, recorded.id])
    assert inside.runs_changed == 2
    assert trinity_db.task_rows(tagged.id)["extract"]["state_type"] == "COMPLETED"
    late = trinity_db.task_rows(recorded.id)
    assert late["load"]["task_run_id"] == load.id
    assert late["load"]["inputs_hash"] == "ab" * 32
    assert inside.task_runs_removed == 1
    assert trinity_db.count(trinity_db.tables.task_runs) == 3


async def test_deployment_and_subflow_runs_are_named_and_linked(
    prefect_api: object, trinity_db: Store, tmp_path: Path
) -> None:
    started = utcnow()
    spec = specification()
    child = workflow([{"id": "inner", "uses": "noop"}], name="child-demo")
    parent = workflow(
        [{"id": "call", "uses": "workflow", "with": {"name": "child-demo"}}], name="parent-demo"
    )
    await deploy_workflow(workflow=child, specification=spec, work_pool="analytics-tests")
    deployment = await deploy_workflow(workflow=parent, specification=spec, work_pool="analytics-tests")
    async with get_client() as client:
        flow_run = await client.create_flow_run_from_deployment(deployment.id)
    # What a worker does with the run, in this process.
    state = await run_flow_async(
        build_flow(compile_workflow(parent, spec)), flow_run=flow_run, parameters={}, return_type="state"
    )
    assert state.is_completed(), state.message
    call = (await task_runs(flow_run.id, expected=1))["call"]
    (child_run,) = await child_flow_runs(flow_run.id, call.id)
    await task_runs(child_run.id, expected=1)
    logs = trinity_db.tables.execution_logs
    with trinity_db.engine.begin() as connection:  # as if the run had crashed before its final hook
        connection.execute(sa.delete(logs).where(logs.c.flow_run_id == flow_run.id))

    result = await harvest_history(engine=trinity_db.engine, since=started)

    assert {flow_run.id, child_run.id} <= set(result.flow_runs)
    assert result.runs_new == 1
    restored = trinity_db.run_row(flow_run.id)
    assert (restored["workflow_name"], restored["status"]) == ("parent-demo", "COMPLETED")
    assert restored["metrics"] == {"parameters": {}}
    harvested = {row["flow_run_id"]: row for row in trinity_db.rows(trinity_db.tables.harvested_runs)}
    assert (harvested[flow_run.id]["trigger"], harvested[flow_run.id]["deployment_id"]) == (
        "manual",
        deployment.id,
    )
    assert harvested[child_run.id]["trigger"] == "subflow"
    assert harvested[child_run.id]["parent_flow_run_id"] == flow_run.id
    assert harvested[child_run.id]["workflow_name"] == "child-demo"
    assert list(trinity_db.task_rows(child_run.id)) == ["inner"]
    assert list(trinity_db.task_rows(flow_run.id)) == ["call"]  # not the subflow's tracking task run


async def test_only_workflow_runs_are_read(prefect_api: object, trinity_db: Store) -> None:
    started = utcnow()
    by_flow, _ = await _manual_run(["trinity"], ["step"], flow_name="flow-named-demo")
    analytics, _ = await _manual_run(
        ["trinity", "trinity-analytics"], [], flow_name="trinity-performance-report"
    )
    untagged, _ = await _manual_run([], ["step"], flow_name="someone-elses-flow")
    legacy_untagged, _ = await _manual_run(["trinity"], ["step"])

    result = await harvest_history(engine=trinity_db.engine, since=started)

    assert by_flow.id in result.flow_runs
    assert trinity_db.run_row(by_flow.id)["workflow_name"] == "flow-named-demo"  # named by its flow
    assert analytics.id not in result.flow_runs + result.unresolved
    assert untagged.id not in result.flow_runs + result.unresolved
    assert result.unresolved == [legacy_untagged.id]  # the old generic flow names no workflow


async def test_a_secret_given_in_clear_to_a_run_that_never_started_is_stored_masked(
    prefect_api: object, trinity_db: Store
) -> None:
    started = utcnow()
    schema = {"type": "object", "properties": {"password": {"type": "string", "format": "password"}}}
    wf = workflow([{"id": "step", "uses": "noop"}], name="clear-secret-demo")
    deployment = await deploy_workflow(
        workflow=wf, specification=specification(schema), work_pool="analytics-tests"
    )
    async with get_client() as client:
        # As from Prefect's UI: the value reaches Prefect in clear; the run is cancelled unstarted.
        flow_run = await client.create_flow_run_from_deployment(
            deployment.id, parameters={"password": "typed-in-clear-77"}
        )
        await client.set_flow_run_state(flow_run.id, Cancelled(), force=True)

    await harvest_history(engine=trinity_db.engine, since=started)

    assert trinity_db.run_row(flow_run.id)["metrics"] == {"parameters": {"password": "***"}}
