"""The ``workflow`` action: a child workflow as a Prefect subflow, resolved from stored blocks."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client

from blocks.workflow_definition import save_definition
from deployments.runs import read_run
from deployments.service import deploy_workflow
from tests.flows.factories import (
    child_flow_runs,
    flow_run_id,
    run_workflow,
    specification,
    task_runs,
    workflow,
)

pytestmark = pytest.mark.anyio

CHILD_SPEC = specification(
    {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}, name="child-spec"
)


def _child(version: str, factor: int) -> object:
    return workflow(
        [{"id": "double", "uses": "noop", "with": {"output": f"${{{{ params.n * {factor} }}}}"}}],
        name="child-wf",
        version=version,
        spec_name="child-spec",
    )


async def test_child_runs_as_a_subflow_of_the_parent_task(prefect_api: object) -> None:
    await deploy_workflow(workflow=_child("1.0.0", 2), specification=CHILD_SPEC, work_pool="child-pool")
    parent = workflow(
        [
            {"id": "call", "uses": "workflow", "with": {"name": "child-wf", "parameters": {"n": 21}}},
            {
                "id": "use",
                "uses": "noop",
                "needs": ["call"],
                "with": {"output": "${{ tasks.call.output.double }}"},
            },
        ],
        name="parent-wf",
    )

    state = await run_workflow(parent)

    assert state.is_completed(), state.message
    assert (await state.aresult())["use"] == 42
    runs = await task_runs(flow_run_id(state), expected=2)
    children = await child_flow_runs(flow_run_id(state), runs["call"].id)
    assert len(children) == 1
    assert children[0].state.is_completed()
    assert children[0].flow_version == "1.0.0"
    assert children[0].parameters == {"n": 21}
    # The child is a run of its own workflow's flow, tagged as such (not with its parent's tag).
    assert sorted(children[0].tags) == ["trinity", "workflow:child-wf"]
    async with get_client() as client:
        assert (await client.read_flow(children[0].flow_id)).name == "child-wf"
    # What the REST layer reports for the parent: the spec's tasks, not Prefect's tracking run.
    status = await read_run(flow_run_id=flow_run_id(state))
    assert sorted(task.name for task in status.tasks) == ["call", "use"]


async def test_version_range_picks_the_highest_stored_match(prefect_api: object) -> None:
    await deploy_workflow(workflow=_child("1.0.0", 2), specification=CHILD_SPEC, work_pool="child-pool")
    await save_definition(workflow=_child("2.0.0", 3), specification=CHILD_SPEC)
    await save_definition(workflow=_child("2.1.0", 4), specification=CHILD_SPEC)
    parent = workflow(
        [
            {"id": "deployed", "uses": "workflow", "with": {"name": "child-wf", "parameters": {"n": 1}}},
            {
                "id": "ranged",
                "uses": "workflow",
                "with": {"name": "child-wf", "version": ">=2.0.0,<2.1.0", "parameters": {"n": 1}},
            },
            {
                "id": "latest2",
                "uses": "workflow",
                "with": {"name": "child-wf", "version": "^2.0.0", "parameters": {"n": 1}},
            },
        ],
        name="parent-wf",
    )

    state = await run_workflow(parent)

    assert state.is_completed(), state.message
    outputs = await state.aresult()
    assert outputs == {"deployed": {"double": 2}, "ranged": {"double": 3}, "latest2": {"double": 4}}


async def test_failing_child_fails_the_parent_task(prefect_api: object) -> None:
    await deploy_workflow(workflow=_child("1.0.0", 2), specification=CHILD_SPEC, work_pool="child-pool")
    parent = workflow(
        [
            {"id": "bad_params", "uses": "workflow", "with": {"name": "child-wf", "parameters": {"n": "x"}}},
            {"id": "missing", "uses": "workflow", "with": {"name": "no-such-workflow"}},
        ],
        name="parent-wf",
    )

    state = await run_workflow(parent)

    assert state.is_failed()
    assert (
        "task 'bad_params' failed: ActionInputError: parameters for workflow 'child-wf' are invalid: $.n: "
        in state.message
    )
    assert (
        "task 'missing' failed: ChildWorkflowError: no deployed definition of workflow 'no-such-workflow'"
        in (state.message)
    )
