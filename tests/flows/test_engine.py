"""The executor against a real Prefect server: what Prefect records about each run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.flows.factories import (
    flow_run_id,
    read_flow_run,
    run_workflow,
    specification,
    task_runs,
    upstream_ids,
    workflow,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("prefect_api", ["sqlite", "postgres"], indirect=True)
async def test_diamond_runs_as_named_task_runs_with_spec_edges(prefect_api: object) -> None:
    wf = workflow(
        [
            {"id": "start", "uses": "noop", "with": {"output": "${{ params.n }}"}},
            {
                "id": "left",
                "uses": "python",
                "needs": ["start"],
                "with": {"callable": "tests.flows.helpers:add", "args": ["${{ tasks.start.output }}", 1]},
            },
            {
                "id": "right",
                "uses": "python",
                "needs": ["start"],
                "with": {"callable": "tests.flows.helpers:add", "args": ["${{ tasks.start.output }}", 10]},
            },
            {
                "id": "join",
                "uses": "noop",
                "needs": ["left", "right"],
                "with": {"output": "${{ tasks.left.output + tasks.right.output }}"},
            },
        ]
    )
    spec = specification({"type": "object", "properties": {"n": {"type": "integer", "default": 5}}})

    state = await run_workflow(wf, spec)

    assert state.is_completed(), state.message
    assert (await state.aresult())["join"] == (5 + 1) + (5 + 10)
    runs = await task_runs(flow_run_id(state), expected=4)
    assert sorted(runs) == ["join", "left", "right", "start"]
    assert all(run.state.is_completed() for run in runs.values())
    assert upstream_ids(runs["start"]) == set()
    assert upstream_ids(runs["left"]) == {runs["start"].id}
    assert upstream_ids(runs["right"]) == {runs["start"].id}
    assert upstream_ids(runs["join"]) == {runs["left"].id, runs["right"].id}
    flow_run = await read_flow_run(flow_run_id(state))
    assert flow_run.flow_version == "1.0.0"
    assert flow_run.parameters == {"n": 5}


async def test_flaky_task_succeeds_on_third_attempt(prefect_api: object, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    wf = workflow(
        [
            {
                "id": "flaky",
                "uses": "python",
                "retries": 3,
                "retry_delay_seconds": 0,
                "with": {"callable": "tests.flows.helpers:flaky", "args": [str(counter), 2]},
            },
        ]
    )

    state = await run_workflow(wf)

    assert state.is_completed(), state.message
    assert (await state.aresult())["flaky"] == "succeeded on attempt 3"
    runs = await task_runs(flow_run_id(state), expected=1)
    assert runs["flaky"].run_count == 3
    assert runs["flaky"].state.is_completed()


async def test_retries_exhausted_fail_the_run_naming_the_task(prefect_api: object, tmp_path: Path) -> None:
    wf = workflow(
        [
            {
                "id": "flaky",
                "uses": "python",
                "retries": 1,
                "retry_delay_seconds": [0],
                "with": {"callable": "tests.flows.helpers:flaky", "args": [str(tmp_path / "c"), 5]},
            },
        ]
    )

    state = await run_workflow(wf)

    assert state.is_failed()
    assert state.message == "task 'flaky' failed: RuntimeError: flaky failure 2"
    runs = await task_runs(flow_run_id(state), expected=1)
    assert runs["flaky"].run_count == 2


async def test_task_timeout_is_recorded_as_timed_out(prefect_api: object) -> None:
    wf = workflow([{"id": "slow", "uses": "sleep", "timeout_seconds": 0.5, "with": {"seconds": 60}}])

    state = await run_workflow(wf)

    assert state.is_failed()
    assert state.message == "task 'slow' failed: Task run exceeded timeout of 0.5 second(s)"
    runs = await task_runs(flow_run_id(state), expected=1)
    assert runs["slow"].state.name == "TimedOut"
    assert runs["slow"].state.is_failed()


async def test_run_timeout_fails_the_flow_run(prefect_api: object) -> None:
    wf = workflow([{"id": "slow", "uses": "sleep", "with": {"seconds": 60}}], timeout_seconds=1)

    state = await run_workflow(wf)

    assert state.is_failed()
    assert state.name == "TimedOut"


async def test_failing_branch_stops_only_its_dependants(prefect_api: object) -> None:
    wf = workflow(
        [
            {"id": "extract", "uses": "noop", "with": {"output": 1}},
            {
                "id": "load",
                "uses": "python",
                "needs": ["extract"],
                "with": {"callable": "tests.flows.helpers:boom", "args": ["disk full"]},
            },
            {"id": "report", "uses": "noop", "needs": ["load"]},
            {"id": "audit", "uses": "noop", "needs": ["report"]},
            {"id": "index", "uses": "noop", "needs": ["extract"]},
            {"id": "publish", "uses": "noop", "needs": ["index"]},
        ]
    )

    state = await run_workflow(wf)

    assert state.is_failed()
    assert state.message == "task 'load' failed: ValueError: disk full"
    runs = await task_runs(flow_run_id(state), expected=6)
    assert runs["load"].state.is_failed()
    for name in ("extract", "index", "publish"):
        assert runs[name].state.is_completed(), name
    for name in ("report", "audit"):
        assert runs[name].state.name == "NotReady", name
        assert runs[name].run_count == 0
    assert upstream_ids(runs["report"]) == {runs["load"].id}


async def test_false_condition_skips_the_task_and_its_dependants(prefect_api: object) -> None:
    wf = workflow(
        [
            {"id": "check", "uses": "noop", "with": {"output": 3}},
            {"id": "notify", "uses": "noop", "needs": ["check"], "if": "${{ tasks.check.output > 10 }}"},
            {"id": "after", "uses": "noop", "needs": ["notify"]},
            {
                "id": "other",
                "uses": "noop",
                "needs": ["check"],
                "if": "${{ tasks.check.output == 3 }}",
                "with": {"output": "ran"},
            },
        ]
    )

    state = await run_workflow(wf)

    assert state.is_completed(), state.message
    outputs = await state.aresult()
    assert outputs["other"] == "ran"
    assert outputs["notify"] is None
    runs = await task_runs(flow_run_id(state), expected=4)
    assert runs["notify"].state.is_completed()
    assert runs["notify"].state.name == "Skipped"
    assert runs["after"].state.name == "Skipped"
    assert "notify" in (runs["after"].state.message or "")
    assert runs["other"].state.name == "Completed"


async def test_for_each_fans_out_one_task_run_per_item(prefect_api: object) -> None:
    wf = workflow(
        [
            {"id": "list", "uses": "noop", "with": {"output": ["a", "b", "c"]}},
            {
                "id": "shout",
                "uses": "noop",
                "needs": ["list"],
                "for_each": "${{ tasks.list.output }}",
                "with": {"output": "${{ item | upper }}"},
            },
            {
                "id": "joined",
                "uses": "noop",
                "needs": ["shout"],
                "with": {"output": "${{ tasks.shout.output | join('-') }}"},
            },
        ]
    )

    state = await run_workflow(wf)

    assert state.is_completed(), state.message
    assert (await state.aresult())["joined"] == "A-B-C"
    runs = await task_runs(flow_run_id(state), expected=5)
    assert sorted(runs) == ["joined", "list", "shout[0]", "shout[1]", "shout[2]"]
    assert upstream_ids(runs["joined"]) == {runs[f"shout[{i}]"].id for i in range(3)}
    assert all(upstream_ids(runs[f"shout[{i}]"]) == {runs["list"].id} for i in range(3))


async def test_failing_fan_out_item_is_named_in_the_run_message(prefect_api: object) -> None:
    wf = workflow(
        [
            {
                "id": "each",
                "uses": "python",
                "for_each": [1, 0, 2],
                "with": {"callable": "operator:truediv", "args": [1, "${{ item }}"]},
            },
        ]
    )

    state = await run_workflow(wf)

    assert state.is_failed()
    assert state.message == "task 'each[1]' failed: ZeroDivisionError: division by zero"
    runs = await task_runs(flow_run_id(state), expected=3)
    assert [runs[f"each[{i}]"].state.type.value for i in range(3)] == ["COMPLETED", "FAILED", "COMPLETED"]


async def test_invalid_parameters_fail_the_run_with_located_problems(prefect_api: object) -> None:
    spec = specification({"type": "object", "properties": {"day": {"type": "string", "format": "date"}}})
    wf = workflow([{"id": "a", "uses": "noop"}])

    state = await run_workflow(wf, spec, day="someday")

    assert state.is_failed()
    assert state.message.startswith("invalid parameters: $.day: ")


async def test_expression_error_fails_the_task_without_retrying(prefect_api: object) -> None:
    wf = workflow(
        [{"id": "bad", "uses": "noop", "retries": 3, "with": {"output": "${{ params.nothing.deeper }}"}}]
    )

    state = await run_workflow(wf)

    assert state.is_failed()
    assert "task 'bad' failed: ExpressionError" in state.message
    runs = await task_runs(flow_run_id(state), expected=1)
    assert runs["bad"].run_count == 1


async def test_max_parallel_tasks_bounds_concurrent_task_runs(prefect_api: object) -> None:
    tasks = [{"id": f"t{i}", "uses": "sleep", "with": {"seconds": 0.4}} for i in range(5)]
    wf = workflow(tasks, concurrency={"max_parallel_tasks": 2})

    state = await run_workflow(wf)

    assert state.is_completed(), state.message
    runs = (await task_runs(flow_run_id(state), expected=5)).values()
    events = sorted([(run.start_time, 1) for run in runs] + [(run.end_time, -1) for run in runs])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    assert peak == 2


async def test_cached_task_reuses_its_output_on_the_nextawait(prefect_api: object, tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    wf = workflow(
        [
            {
                "id": "expensive",
                "uses": "python",
                "cache": {"expiry_seconds": 600},
                "with": {"callable": "tests.flows.helpers:flaky", "args": [str(counter), 0]},
            },
        ]
    )

    first = await run_workflow(wf)
    second = await run_workflow(wf)

    assert first.is_completed(), first.message
    assert second.is_completed(), second.message
    assert (await second.aresult())["expensive"] == "succeeded on attempt 1"
    assert counter.read_text() == "1"
    runs = await task_runs(flow_run_id(second), expected=1)
    assert runs["expensive"].state.name == "Cached"
