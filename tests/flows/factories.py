"""Plain factories for executor tests: documents, runs, and what Prefect recorded about them."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

import anyio
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentTaskRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, State, TaskRun
from prefect.client.schemas.sorting import TaskRunSort
from prefect.flow_engine import run_flow_async

from flows.compiler import compile_workflow
from flows.local_run import create_local_run
from flows.workflow_flow import build_flow
from specs.models import Specification, Workflow
from specs.parameters import apply_defaults


def specification(
    parameters: dict[str, Any] | None = None, *, name: str = "test-spec", version: str = "1.0.0"
) -> Specification:
    """A specification with the given parameters schema."""
    schema = parameters if parameters is not None else {"type": "object", "properties": {}}
    return Specification.model_validate(
        {"kind": "Specification", "name": name, "version": version, "parameters": schema}
    )


def workflow(
    tasks: list[dict[str, Any]],
    *,
    name: str = "test-workflow",
    version: str = "1.0.0",
    spec_name: str = "test-spec",
    **extra: Any,
) -> Workflow:
    """A workflow with these tasks (dicts in document form) bound to ``spec_name`` ^1."""
    return Workflow.model_validate(
        {
            "kind": "Workflow",
            "name": name,
            "version": version,
            "spec": {"name": spec_name, "version": "^1.0.0"},
            "tasks": tasks,
            **extra,
        }
    )


async def run_workflow(wf: Workflow, spec: Specification | None = None, **params: Any) -> State:
    """Run a workflow in-process against the configured Prefect API; returns the final state.

    The run is tagged as every workflow run is (without storing the definition, as ``trinity run``
    would).
    """
    spec = spec or specification()
    flow = build_flow(compile_workflow(wf, spec))
    params = apply_defaults(spec.parameters, params)
    flow_run = await create_local_run(flow, wf.name, params)
    state: State = await run_flow_async(flow, flow_run=flow_run, parameters=params, return_type="state")
    return state


def flow_run_id(state: State) -> UUID:
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    return run_id


async def read_flow_run(run_id: UUID) -> FlowRun:
    async with get_client() as client:
        return await client.read_flow_run(run_id)


async def _all_task_runs(client: Any, run_id: UUID) -> list[TaskRun]:
    found: list[TaskRun] = []
    while True:
        page = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
            sort=TaskRunSort.ID_DESC,
            limit=200,
            offset=len(found),
        )
        found.extend(page)
        if len(page) < 200:
            return found


async def task_runs(run_id: UUID, *, expected: int, timeout: float = 120.0) -> dict[str, TaskRun]:
    """The flow run's task runs by name, once ``expected`` of them have settled.

    Task runs reach the server as events, shortly after the client saw them; poll until they are
    all there and none is still Running or Scheduled.
    """
    deadline = time.monotonic() + timeout
    found: dict[str, TaskRun] = {}
    async with get_client() as client:
        while time.monotonic() < deadline:
            runs = await _all_task_runs(client, run_id)
            # A subflow called from a task shows up as an extra "tracking" task run whose
            # __parents__ input is that task; it is Prefect's, not one of the spec's tasks.
            found = {run.name: run for run in runs if "__parents__" not in run.task_inputs}
            settled = all(
                run.state is not None and (run.state.is_final() or run.state.name == "NotReady")
                for run in runs
            )
            if len(found) >= expected and settled:
                return found
            await asyncio.sleep(0.2)
    raise AssertionError(f"expected {expected} settled task runs, Prefect has: {sorted(found)}")


async def child_flow_runs(flow_run: UUID, parent_task_run_id: UUID) -> list[FlowRun]:
    """Subflow runs started from a task run (through Prefect's tracking task run)."""
    async with get_client() as client:
        runs = await _all_task_runs(client, flow_run)
        trackers = [
            run.id
            for run in runs
            if any(item.id == parent_task_run_id for item in run.task_inputs.get("__parents__", []))
        ]
        if not trackers:
            return []
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_task_run_id=FlowRunFilterParentTaskRunId(any_=trackers))
        )


def upstream_ids(task_run: TaskRun) -> set[UUID]:
    """Ids of the task runs this one waited for (its DAG edges as Prefect recorded them)."""
    return {item.id for inputs in task_run.task_inputs.values() for item in inputs}


async def log_lines(run_id: UUID, *, until: str, timeout: float = 30.0) -> list[str]:
    """The messages Prefect holds of a flow run's logs, once one contains ``until`` (or at timeout)."""
    lines: list[str] = []
    async with get_client() as client:
        with anyio.move_on_after(timeout):
            while not any(until in line for line in lines):
                logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
                lines = [log.message for log in logs]
                await anyio.sleep(0.5)
    return lines
