"""Workflows as Prefect deployments: create or update, pause, delete, and the work pool they use.

Each workflow is its own Prefect flow, named after the workflow, with one deployment named
``trinity`` (full name ``<workflow>/trinity``, see :mod:`specs.naming`). Deploying stores the
definition in a ``TrinityWorkflow`` block document and points the deployment's entrypoint at it
(``flows.entry.wf_<block>``). The deployment carries the spec's parameters as its
``parameter_openapi_schema`` with ``enforce_parameter_schema`` on, so the Prefect UI's run form
shows them with types and defaults and the server refuses invalid values and undeclared names
(``additionalProperties: false``; a spec that accepts more gets them as one object parameter, see
``specs.parameters.prefect_parameters_schema``). Prefect upserts
deployments by (flow, name), so deploying again updates in place and replaces the schedules.
Older versions deployed every workflow as ``trinity-workflow/<workflow>``; deploying the workflow
deletes that deployment once the new one exists, so none is left behind.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.workers.base import BaseWorker

from blocks.workflow_definition import definition_block_name, register_block_types, save_definition
from deployments.alerts import ensure_alert_automations
from deployments.automations import ensure_crash_automation
from deployments.runs import DeploymentNotFoundError
from deployments.schedules import deployment_schedules
from flows.compiler import compile_workflow
from flows.entry import PULL_STEPS, entrypoint_for
from flows.worker.heartbeat import flow_run_heartbeat_environment, heartbeat_seconds
from flows.workflow_flow import build_flow
from specs.models import Specification, Workflow
from specs.naming import (
    DEPLOYMENT_NAME,
    TRINITY_TAG,
    flow_name_for,
    legacy_deployment_full_name,
    reserved_name_problem,
    workflow_tag,
)
from specs.parameters import prefect_parameters_schema
from trinity.core.config import configured_definition_key
from trinity.core.signing import DefinitionKeyMissingError, require_key

DEFAULT_WORK_POOL = "trinity"
DEFAULT_POOL_TYPE = "process"
logger = logging.getLogger(__name__)
_COLLISION = {"enqueue": ConcurrencyLimitStrategy.ENQUEUE, "cancel_new": ConcurrencyLimitStrategy.CANCEL_NEW}


class DeploymentError(Exception):
    """A deployment could not be created, changed or found."""


@dataclass(frozen=True)
class DeploymentRef:
    """A created or updated deployment."""

    id: UUID
    full_name: str


@dataclass(frozen=True)
class DeploymentSpec:
    """Everything a workflow's deployment is made of (pure data; see :func:`deployment_spec`)."""

    flow_name: str
    name: str
    version: str
    description: str
    tags: list[str]
    entrypoint: str
    block_name: str
    work_pool: str
    paused: bool
    schedules: list[DeploymentScheduleCreate]
    parameter_openapi_schema: dict[str, Any]
    concurrency_limit: int | None
    collision_strategy: ConcurrencyLimitStrategy
    heartbeat_seconds: float
    workflow: Workflow = field(repr=False)

    @property
    def job_variables(self) -> dict[str, Any]:
        """Job variables of the deployment: the flow-run heartbeats the crash automation expects,
        for workers whose flow-run processes send their own (Prefect's ``process`` worker)."""
        return {"env": flow_run_heartbeat_environment(self.heartbeat_seconds)}

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"


def deployment_spec(
    *,
    workflow: Workflow,
    specification: Specification,
    work_pool: str = DEFAULT_WORK_POOL,
    paused: bool = False,
) -> DeploymentSpec:
    """Describe the deployment of a workflow without talking to Prefect."""
    reserved = reserved_name_problem(workflow.name)
    if reserved is not None:
        raise DeploymentError(reserved)
    block_name = definition_block_name(workflow.name, workflow.version)
    try:
        schedules = deployment_schedules(workflow.schedule)
    except (ValueError, KeyError) as exc:
        raise DeploymentError(f"workflow '{workflow.name}': invalid schedule: {exc}") from exc
    try:
        interval = heartbeat_seconds()
    except ValueError as exc:  # TRINITY_HEARTBEAT_SECONDS is not usable
        raise DeploymentError(str(exc)) from exc
    return DeploymentSpec(
        flow_name=flow_name_for(workflow.name),
        name=DEPLOYMENT_NAME,
        version=workflow.version,
        description=workflow.description or specification.description,
        tags=list(
            dict.fromkeys([TRINITY_TAG, workflow_tag(workflow.name), *specification.tags, *workflow.tags])
        ),
        entrypoint=entrypoint_for(block_name),
        block_name=block_name,
        work_pool=work_pool,
        paused=paused,
        schedules=schedules,
        parameter_openapi_schema=prefect_parameters_schema(specification.parameters),
        concurrency_limit=workflow.concurrency.max_active_runs,
        collision_strategy=_COLLISION[workflow.concurrency.on_collision],
        heartbeat_seconds=interval,
        workflow=workflow,
    )


async def ensure_work_pool(*, name: str, type: str = DEFAULT_POOL_TYPE) -> None:
    """Create the work pool when it does not exist (with the worker type's default job template)."""
    async with get_client() as client:
        try:
            await client.read_work_pool(name)
            return
        except ObjectNotFound:
            pass
        template = _default_job_template(type)
        with contextlib.suppress(ObjectAlreadyExists):  # created concurrently: fine
            await client.create_work_pool(
                WorkPoolCreate(name=name, type=type, base_job_template=template or {}),
            )


def _default_job_template(pool_type: str) -> dict[str, Any] | None:
    # Only worker types installed here; never the network lookup Prefect falls back to.
    worker_class = BaseWorker.get_worker_class_from_type(pool_type)
    return worker_class.get_default_base_job_template() if worker_class is not None else None


async def deploy_workflow(
    *,
    workflow: Workflow,
    specification: Specification,
    work_pool: str = DEFAULT_WORK_POOL,
    paused: bool = False,
    definition_key: str | None = None,
) -> DeploymentRef:
    """Create or update the deployment of a validated workflow (idempotent).

    The stored definition is signed with ``definition_key`` (default: the configured one); with
    no key, nothing is deployed (:class:`DeploymentError` naming the setting).
    """
    try:
        key = require_key(definition_key) if definition_key is not None else configured_definition_key()
    except DefinitionKeyMissingError as exc:
        raise DeploymentError(str(exc)) from exc
    spec = deployment_spec(workflow=workflow, specification=specification, work_pool=work_pool, paused=paused)
    build_flow(compile_workflow(workflow, specification))  # every action resolves before anything is stored
    await ensure_work_pool(name=work_pool)
    # One interval for the automation's window and the deployment's heartbeats.
    await ensure_crash_automation(interval=spec.heartbeat_seconds)
    await register_block_types()
    await save_definition(workflow=workflow, specification=specification, key=key)
    async with get_client() as client:
        flow_id = await client.create_flow_from_name(spec.flow_name)
        deployment_id = await client.create_deployment(
            flow_id=flow_id,
            name=spec.name,
            version=spec.version,
            description=spec.description,
            tags=spec.tags,
            entrypoint=spec.entrypoint,
            work_pool_name=spec.work_pool,
            job_variables=spec.job_variables,
            schedules=spec.schedules,
            paused=spec.paused,
            parameters={},
            pull_steps=PULL_STEPS,
            parameter_openapi_schema=spec.parameter_openapi_schema,
            enforce_parameter_schema=True,
            concurrency_limit=spec.concurrency_limit,
            concurrency_options=(
                ConcurrencyOptions(collision_strategy=spec.collision_strategy)
                if spec.concurrency_limit is not None
                else None
            ),
        )
        await _delete_legacy_deployment(client, workflow.name, replaced_by=spec.full_name)
    await ensure_alert_automations(
        workflow=workflow, specification=specification, deployment_id=deployment_id
    )
    return DeploymentRef(id=deployment_id, full_name=spec.full_name)


async def _delete_legacy_deployment(client: PrefectClient, workflow_name: str, *, replaced_by: str) -> None:
    """Delete the ``trinity-workflow/<name>`` deployment an older version made, if there is one.

    Its past runs stay in Prefect (under the ``trinity-workflow`` flow) and in the analytics.
    """
    legacy = legacy_deployment_full_name(workflow_name)
    try:
        deployment = await client.read_deployment_by_name(legacy)
        await client.delete_deployment(deployment.id)
    except ObjectNotFound:
        return
    logger.info("deleted deployment %s, made by an older Trinity: %s replaces it", legacy, replaced_by)


async def set_deployment_paused(*, deployment_id: UUID, paused: bool) -> None:
    """Pause (no new scheduled runs) or resume a deployment."""
    async with get_client() as client:
        try:
            if paused:
                await client.pause_deployment(deployment_id)
            else:
                await client.resume_deployment(deployment_id)
        except ObjectNotFound as exc:
            raise DeploymentNotFoundError(f"no deployment with id {deployment_id}") from exc


async def delete_deployment(*, deployment_id: UUID) -> None:
    """Delete a deployment (its stored definition blocks stay: other versions may use them)."""
    async with get_client() as client:
        try:
            await client.delete_deployment(deployment_id)
        except ObjectNotFound as exc:
            raise DeploymentNotFoundError(f"no deployment with id {deployment_id}") from exc
