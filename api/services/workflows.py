"""Workflows: stored documents bound to a specification, and their Prefect deployments.

Lifecycle: draft -> active <-> paused, and any of them -> archived. Activating deploys the
workflow (schedule on), pausing pauses its schedules, archiving or deleting removes the deployment.
Prefect is called before the database commit, and never inside an open write transaction, so a
Prefect outage leaves the stored status unchanged (and a retry converges: deploying is an upsert).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.documents import dump_document, problems_to_details
from api.errors import (
    AlreadyExistsError,
    ConflictError,
    Detail,
    InvalidTransitionError,
    NotFoundError,
    UnprocessableError,
)
from api.models.specification import Specification
from api.models.workflow import (
    DEPLOYED_STATUSES,
    TRANSITIONS,
    Workflow,
    WorkflowCreate,
    WorkflowStatus,
)
from api.prefect import PrefectGateway
from api.services.audit import AuditTrail
from api.services.paging import fetch_page
from api.services.specs import resolve_specification
from deployments.runs import DeploymentNotFoundError
from deployments.service import DeploymentError, delete_deployment, deploy_workflow, set_deployment_paused
from specs import models as documents
from specs.errors import SpecError
from trinity.core.signing import MISSING_KEY_MESSAGE

CREATABLE = (WorkflowStatus.DRAFT, WorkflowStatus.ACTIVE)
RESOURCE = "workflow"


def _audit(
    audit: AuditTrail | None, session: AsyncSession, row: Workflow, details: dict[str, str] | None = None
) -> None:
    if audit is not None:
        audit.stage(session, resource_type=RESOURCE, resource_id=row.id, version=row.version, details=details)


async def list_workflows(
    *,
    session: AsyncSession,
    name: str | None,
    status: WorkflowStatus | None,
    spec_id: uuid.UUID | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Workflow, str | None]], int]:
    """One page of workflows (newest first) with their specifications' versions, and the total."""
    statement = (
        sa.select(Workflow, col(Specification.version))
        .outerjoin(Specification, col(Workflow.spec_id) == col(Specification.id))
        .order_by(col(Workflow.created_at).desc(), col(Workflow.id))
    )
    if name is not None:
        statement = statement.where(col(Workflow.name) == name)
    if status is not None:
        statement = statement.where(col(Workflow.status) == status.value)
    if spec_id is not None:
        statement = statement.where(col(Workflow.spec_id) == spec_id)
    rows, total = await fetch_page(session, statement, limit=limit, offset=offset)
    return [(row[0], row[1]) for row in rows], total


async def get_workflow(*, session: AsyncSession, workflow_id: uuid.UUID) -> Workflow:
    """The workflow with this id (404 otherwise)."""
    row = await session.get(Workflow, workflow_id)
    if row is None:
        raise NotFoundError(f"no workflow with id {workflow_id}")
    return row


async def spec_versions(
    *, session: AsyncSession, spec_ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    """The versions of the given specifications, by id (for the public view)."""
    wanted = {spec_id for spec_id in spec_ids if spec_id is not None}
    if not wanted:
        return {}
    rows = await session.exec(
        select(Specification.id, Specification.version).where(col(Specification.id).in_(wanted))
    )
    return dict(rows.all())


async def _ensure_free(session: AsyncSession, name: str, version: str, *, exclude: uuid.UUID | None) -> None:
    statement = select(Workflow.id).where(Workflow.name == name, Workflow.version == version)
    if exclude is not None:
        statement = statement.where(Workflow.id != exclude)
    if (await session.exec(statement)).first() is not None:
        raise AlreadyExistsError(
            f"workflow {name} {version} already exists",
            details=[Detail(loc="$.version", msg="this name and version are taken")],
        )


async def _ensure_sole_deployment(session: AsyncSession, row: Workflow) -> None:
    # The deployment is named after the workflow, so two deployed versions would share it.
    statement = select(Workflow).where(
        Workflow.name == row.name,
        Workflow.id != row.id,
        col(Workflow.status).in_(DEPLOYED_STATUSES),
    )
    other = (await session.exec(statement)).first()
    if other is not None:
        raise ConflictError(
            f"workflow {other.name} {other.version} is already {other.status} (id {other.id}); "
            "archive it before activating another version",
            code="deployment_in_use",
        )


async def _spec_of(session: AsyncSession, row: Workflow) -> Specification:
    spec = await session.get(Specification, row.spec_id) if row.spec_id is not None else None
    if spec is None:
        spec = await resolve_specification(session=session, name=row.spec_name, version_range=row.spec_range)
        row.spec_id = spec.id
    return spec


async def _deploy(
    prefect: PrefectGateway,
    *,
    document: documents.Workflow,
    spec: Specification,
    paused: bool,
    work_pool: str,
) -> uuid.UUID:
    if not prefect.definition_key:
        # Workers refuse unsigned definitions: deploying one would make a workflow that never runs.
        raise ConflictError(MISSING_KEY_MESSAGE, code="definition_key_missing")
    specification = documents.Specification.model_validate(spec.document)
    async with prefect.scope():
        try:
            ref = await deploy_workflow(
                workflow=document,
                specification=specification,
                work_pool=work_pool,
                paused=paused,
                definition_key=prefect.definition_key,
            )
        except SpecError as exc:
            raise UnprocessableError(
                "the workflow cannot be deployed", details=problems_to_details(exc.problems)
            ) from exc
        except DeploymentError as exc:
            raise UnprocessableError(
                "the workflow cannot be deployed", details=[Detail(loc="$", msg=str(exc))]
            ) from exc
    return ref.id


async def _set_paused(prefect: PrefectGateway, deployment_id: uuid.UUID, *, paused: bool) -> bool:
    """Pause or resume; False when Prefect no longer has the deployment."""
    async with prefect.scope():
        try:
            await set_deployment_paused(deployment_id=deployment_id, paused=paused)
        except DeploymentNotFoundError:
            return False
    return True


async def _undeploy(prefect: PrefectGateway, deployment_id: uuid.UUID) -> None:
    async with prefect.scope():
        with contextlib.suppress(DeploymentNotFoundError):  # already gone: the goal is reached
            await delete_deployment(deployment_id=deployment_id)


async def _commit(session: AsyncSession, row: Workflow) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise AlreadyExistsError(f"workflow {row.name} {row.version} already exists") from exc


async def create_workflow(
    *,
    session: AsyncSession,
    prefect: PrefectGateway,
    workflow_in: WorkflowCreate,
    document: documents.Workflow,
    spec: Specification,
    work_pool: str,
    audit: AuditTrail | None = None,
) -> Workflow:
    """Store a workflow bound to ``spec`` (see :func:`resolve_specification`); deploy it when active."""
    status = WorkflowStatus(workflow_in.status)
    if status not in CREATABLE:
        raise InvalidTransitionError(f"a new workflow starts as draft or active, not {status.value}")
    await _ensure_free(session, workflow_in.name, workflow_in.version, exclude=None)
    row = Workflow(
        name=workflow_in.name,
        version=workflow_in.version,
        status=status,
        spec_id=spec.id,
        spec_name=workflow_in.spec_name,
        spec_range=workflow_in.spec_range,
        definition=workflow_in.document,
    )
    if status is WorkflowStatus.ACTIVE:
        await _ensure_sole_deployment(session, row)
        row.deployment_id = await _deploy(
            prefect, document=document, spec=spec, paused=False, work_pool=work_pool
        )
    session.add(row)
    _audit(audit, session, row, {"status": status.value})
    await _commit(session, row)
    return row


async def update_workflow(
    *,
    session: AsyncSession,
    prefect: PrefectGateway,
    workflow: Workflow,
    document: documents.Workflow | None,
    spec: Specification | None,
    status: WorkflowStatus | None,
    work_pool: str,
    audit: AuditTrail | None = None,
) -> tuple[Workflow, bool]:
    """Apply a new document (bound to ``spec``) and/or a status; returns (row, changed).

    Live workflows are redeployed with the new document.
    """
    current = WorkflowStatus(workflow.status)
    target = status or current
    if target != current and target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none"
        raise InvalidTransitionError(f"cannot go from {current.value} to {target.value} (allowed: {allowed})")
    new_definition = None
    if document is not None:
        if current is WorkflowStatus.ARCHIVED:
            raise ConflictError("an archived workflow is read-only; create a new workflow")
        if document.name != workflow.name:
            raise ConflictError(
                f"a workflow's name is fixed ({workflow.name}); create {document.name} with POST",
                details=[Detail(loc="$.name", msg=f"expected {workflow.name}")],
            )
        definition = dump_document(document)
        if definition != workflow.definition:
            new_definition = definition
            await _ensure_free(session, document.name, document.version, exclude=workflow.id)
            if spec is None:
                raise ValueError("a new workflow document needs its resolved specification")
    if new_definition is None and target == current:
        if audit is not None:  # changed nothing, recorded all the same
            _audit(audit, session, workflow, {"from": current.value, "to": target.value})
            await session.commit()
        return workflow, False
    active_document = document if new_definition is not None and document is not None else None
    if active_document is None:
        active_document = documents.Workflow.model_validate(workflow.definition)
    new_spec = spec if new_definition is not None else None
    await _apply_deployment(session, prefect, workflow, current, target, active_document, new_spec, work_pool)
    if new_definition is not None and document is not None and new_spec is not None:
        workflow.definition = new_definition
        workflow.version = document.version
        workflow.spec_id = new_spec.id
        workflow.spec_name = document.spec.name
        workflow.spec_range = document.spec.version
    workflow.status = target
    session.add(workflow)
    _audit(audit, session, workflow, {"from": current.value, "to": target.value})
    await _commit(session, workflow)
    return workflow, True


async def _apply_deployment(
    session: AsyncSession,
    prefect: PrefectGateway,
    workflow: Workflow,
    current: WorkflowStatus,
    target: WorkflowStatus,
    document: documents.Workflow,
    spec: Specification | None,
    work_pool: str,
) -> None:
    """Bring Prefect in line with the target status (and the new document, if any)."""
    if target in DEPLOYED_STATUSES:
        if target is WorkflowStatus.ACTIVE and current is not WorkflowStatus.ACTIVE:
            await _ensure_sole_deployment(session, workflow)
        simple_pause = current is WorkflowStatus.ACTIVE and target is WorkflowStatus.PAUSED and spec is None
        # When Prefect lost the deployment (deleted behind our back), deploy it again, paused.
        if (
            simple_pause
            and workflow.deployment_id is not None
            and await _set_paused(prefect, workflow.deployment_id, paused=True)
        ):
            return
        spec = spec or await _spec_of(session, workflow)
        paused = target is WorkflowStatus.PAUSED
        workflow.deployment_id = await _deploy(
            prefect, document=document, spec=spec, paused=paused, work_pool=work_pool
        )
    elif workflow.deployment_id is not None:
        await _undeploy(prefect, workflow.deployment_id)
        workflow.deployment_id = None


async def delete_workflow(
    *, session: AsyncSession, prefect: PrefectGateway, workflow: Workflow, audit: AuditTrail | None = None
) -> None:
    """Remove the workflow's deployment (if any), then the workflow."""
    if workflow.deployment_id is not None:
        await _undeploy(prefect, workflow.deployment_id)
    _audit(audit, session, workflow, {"status": WorkflowStatus(workflow.status).value})
    await session.delete(workflow)
    await session.commit()
