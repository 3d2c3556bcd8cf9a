"""Runs started in this process from a workflow file (``trinity run FILE``), made like deployed ones.

A deployed run's document is the ``TrinityWorkflow`` block its deployment points at, one per
workflow name and version. A run from a file stores its definition under the same key, so the
analytics find the document (critical path, spec checks, recommendations) the same way for both;
and it carries the same tags (``trinity``, ``workflow:<name>``), so the harvest reads it.

A stored definition of the same name and version with other content is replaced, as
``trinity deploy`` would replace it -- unless a deployment runs it: a run from a file never changes
what a deployment runs. Such a run is then analysed against the deployed definition, and a warning
says to give the changed workflow a new version.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun

from blocks.run_secrets import stashed_for_run
from blocks.workflow_definition import (
    DefinitionNotFoundError,
    TrinityWorkflow,
    definition_block_name,
    load_definition,
    save_definition,
)
from flows.compiler import compile_workflow
from flows.entry import deployed_definition
from flows.workflow_flow import build_flow
from specs.models import Specification, Workflow
from specs.naming import run_tags
from specs.secrets import secret_parameters
from trinity.core.config import load_settings

logger = logging.getLogger(__name__)


async def store_run_definition(workflow: Workflow, specification: Specification) -> str:
    """Store the definition of a run from a file where deployed runs keep theirs; the block name."""
    block_name = definition_block_name(workflow.name, workflow.version)
    # Signed when a key is configured, so a deployment of this version may run it; else kept
    # for the analytics only.
    key = load_settings().security.definition_key
    wanted = TrinityWorkflow.from_documents(workflow, specification, key=key)
    try:
        stored: TrinityWorkflow | None = await load_definition(block_name)
    except DefinitionNotFoundError:
        stored = None
    same = stored is not None and (stored.workflow, stored.specification) == (
        wanted.workflow,
        wanted.specification,
    )
    if same and (key is None or (stored is not None and stored.signature == wanted.signature)):
        return block_name
    if stored is not None and not same:
        deployed = await deployed_definition(workflow.name)
        if deployed is not None and deployed[0] == block_name:
            logger.warning(
                "workflow %s %s differs from the deployed definition of that version, which is kept "
                "(the report analyses this run against it); give the changed workflow a new version",
                workflow.name,
                workflow.version,
            )
            return block_name
    return await save_definition(workflow=workflow, specification=specification, key=key)


async def create_local_run(flow: Flow[..., Any], workflow_name: str, parameters: dict[str, Any]) -> FlowRun:
    """Create the flow run of ``flow`` to run in this process, tagged like every run of the workflow."""
    async with get_client() as client:
        return await client.create_flow_run(flow, parameters=parameters, tags=run_tags(workflow_name))


async def start_local_run(
    workflow: Workflow, specification: Specification, parameters: dict[str, Any]
) -> tuple[Flow[..., Any], FlowRun]:
    """The flow of a workflow from a file and its new flow run, its definition stored first.

    The caller runs it (e.g. ``prefect.flow_engine.run_flow_async(flow, flow_run=...)``) with the
    flow run's parameters, where each secret parameter is a reference to a block made for the run.
    """
    flow = build_flow(compile_workflow(workflow, specification))  # every action resolves first
    await store_run_definition(workflow, specification)
    async with stashed_for_run(parameters, secret_parameters(specification.parameters)) as (carried, _):
        return flow, await create_local_run(flow, workflow.name, carried)
