"""``workflow``: run another workflow as a child flow run (a Prefect subflow) and wait for it.

The child's definition comes from its stored ``TrinityWorkflow`` block, never from the REST layer:
without ``version`` the version its deployment runs (else the highest stored one); with a version
range, the deployed version when it matches, else the highest stored version inside the range.
The output is the child's task outputs by task id; a failed child fails this task with its message.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, cast

from prefect.client.schemas.objects import State
from prefect.context import TagsContext

from blocks.workflow_definition import (
    TrinityWorkflow,
    definition_block_name,
    list_definitions,
    runnable_definition,
    verify_definition,
)
from flows.actions.base import ActionContext, ActionError, ActionInputError
from flows.entry import deployed_definition
from specs.actions import WorkflowInputs
from specs.naming import run_tags
from specs.parameters import validate_parameters
from specs.versions import best_match, parse_range
from trinity.core.signing import DefinitionRefusedError


class ChildWorkflowError(ActionError):
    """The child workflow could not be found or did not complete."""


async def resolve_child_definition(*, name: str, version_range: str | None) -> TrinityWorkflow:
    """The stored definition a ``workflow`` task runs (ChildWorkflowError when none fits)."""
    deployed = await deployed_definition(name)
    if deployed is not None and (version_range is None or parse_range(version_range).contains(deployed[1])):
        return await runnable_definition(deployed[0])
    stored = {definition.workflow_version: definition for definition in await list_definitions(name)}
    chosen = best_match(stored, version_range or "*")
    if chosen is None:
        wanted = f" matching '{version_range}'" if version_range else ""
        found = f" (stored: {', '.join(sorted(stored))})" if stored else ""
        raise ChildWorkflowError(f"no deployed definition of workflow '{name}'{wanted}{found}")
    return verify_definition(stored[chosen], definition_block_name(name, chosen))


class WorkflowAction:
    """Run the named workflow with ``parameters`` as a subflow of this task."""

    name = "workflow"
    inputs = WorkflowInputs

    async def run(self, inputs: WorkflowInputs, context: ActionContext) -> Any:
        from flows.compiler import compile_workflow
        from flows.workflow_flow import build_flow

        try:
            definition = await resolve_child_definition(name=inputs.name, version_range=inputs.version)
        except DefinitionRefusedError as exc:
            raise ChildWorkflowError(str(exc)) from exc
        specification = definition.specification_model()
        problems = validate_parameters(specification.parameters, inputs.parameters)
        if problems:
            details = "; ".join(f"{problem.json_path}: {problem.message}" for problem in problems)
            raise ActionInputError(f"parameters for workflow '{inputs.name}' are invalid: {details}")
        child = build_flow(compile_workflow(definition.workflow_model(), specification))
        context.logger.info(
            "running workflow '%s' %s as a child run", inputs.name, definition.workflow_version
        )
        # Tagged like every run of the child workflow (its own tags only, never its parent's), so the
        # harvest and Prefect's filters find it under its own name.
        with TagsContext(current_tags=set(run_tags(inputs.name))):
            # Prefect types a flow call by its function's return value, not by ``return_state``.
            state = await cast("Awaitable[State[Any]]", child(**inputs.parameters, return_state=True))
        if not state.is_completed():
            raise ChildWorkflowError(
                f"workflow '{inputs.name}' {definition.workflow_version} ended {state.name}: {state.message}"
            )
        return await state.aresult()
