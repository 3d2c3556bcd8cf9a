"""Deployment entrypoints: ``flows.entry.wf_<definition>`` resolves to that workflow's flow.

Every deployment runs the same generic engine, but Prefect binds a run's parameters against the
flow function's signature, and a deployment's run form should show the spec's own parameters. So
each deployment needs a flow object built for its workflow. Prefect 3.8.8 loads a deployment's flow
with ``load_flow_from_entrypoint(deployment.entrypoint)``, which for an entrypoint without ':' does
``importlib.import_module("flows.entry")`` and then ``getattr(module, "wf_...")`` (see
``prefect.flows.load_flow_from_flow_run`` and ``prefect.utilities.importtools.import_object``).
A module-level ``__getattr__`` (PEP 562) answers that ``getattr`` by loading the stored definition
(a ``TrinityWorkflow`` block document) and building the flow. This is the same path under the stock
``process`` worker (``python -m prefect.engine`` in a child process) and in-process.

The module-path form (no ':') matters: Prefect then skips the "download code from storage" step
that a ``path/to/file.py:flow`` entrypoint triggers, and imports ``flows`` from the environment.
Nothing is cached: each load reads the current definition, so a long-lived process never serves a
stale one. Each load checks the definition's signature (:mod:`trinity.core.signing`): one changed
outside Trinity raises :class:`trinity.core.signing.DefinitionChangedError` instead of a flow.
"""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound

from blocks.workflow_definition import (
    block_name_from_attribute,
    entrypoint_attribute,
    load_definition_sync,
    verify_definition,
)
from specs.naming import deployment_full_name, legacy_deployment_full_name
from trinity.core.signing import DefinitionChangedError

ENTRY_MODULE = "flows.entry"
# Run in the worker's working directory, importing Trinity from the worker's environment. Without a
# pull step, Prefect 3.8.8's process worker copies the worker's whole working directory into a
# temporary workspace for every run; the code is installed and the definition is a block, so
# there is nothing to copy. The only pull steps Trinity writes, and the only ones its worker runs.
PULL_STEPS: list[dict[str, Any]] = [{"prefect.deployments.steps.set_working_directory": {"directory": "."}}]


def check_pull_steps(deployment: DeploymentResponse) -> None:
    """Refuse a deployment whose pull steps are not Trinity's (none at all is fine).

    Pull steps run before the flow is loaded, so a ``run_shell_script`` step written into a
    deployment through Prefect's API would run whatever it says, signature or not.
    """
    steps = deployment.pull_steps
    if steps and steps != PULL_STEPS:
        label = block_name_from_entrypoint(deployment.entrypoint) or f"of deployment {deployment.id}"
        raise DefinitionChangedError(
            f"definition {label} was changed outside Trinity (its pull steps "
            f"{[next(iter(step), '?') for step in steps]} are not Trinity's); not running it: "
            "deploy the workflow again from Trinity"
        )


def entrypoint_for(block_name: str) -> str:
    """The deployment entrypoint of a stored definition."""
    return f"{ENTRY_MODULE}.{entrypoint_attribute(block_name)}"


def block_name_from_entrypoint(entrypoint: str | None) -> str | None:
    """The definition block name inside one of our entrypoints (None for anything else)."""
    if not entrypoint or not entrypoint.startswith(ENTRY_MODULE + "."):
        return None
    return block_name_from_attribute(entrypoint[len(ENTRY_MODULE) + 1 :])


async def deployed_definition(workflow_name: str) -> tuple[str, str] | None:
    """(block name, version) of the definition a workflow's deployment runs, None when not deployed.

    A deployment made by an older version (``trinity-workflow/<name>``) counts until it is replaced.
    """
    async with get_client() as client:
        for full_name in (deployment_full_name(workflow_name), legacy_deployment_full_name(workflow_name)):
            try:
                deployment = await client.read_deployment_by_name(full_name)
            except ObjectNotFound:
                continue
            block_name = block_name_from_entrypoint(deployment.entrypoint)
            if block_name is None or deployment.version is None:
                return None
            return block_name, deployment.version
    return None


def __getattr__(name: str) -> Any:
    block_name = block_name_from_attribute(name)
    if block_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from flows.compiler import compile_workflow
    from flows.workflow_flow import build_flow

    # Checked before the flow exists: a definition changed outside Trinity never runs a task.
    definition = verify_definition(load_definition_sync(block_name), block_name)
    return build_flow(compile_workflow(definition.workflow_model(), definition.specification_model()))
