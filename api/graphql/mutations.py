# mypy: disallow-untyped-decorators=False
"""Mutations: the same operations, roles and rules as the REST writes, through the same services."""

from __future__ import annotations

import json
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.documents import content_hash, dump_document, parse_document
from api.graphql.args import UNSET, given
from api.graphql.errors import bad_input
from api.graphql.permissions import IsAdmin, IsOperator
from api.graphql.types import Run, Specification, Workflow, parse_id
from api.models.specification import SpecificationCreate, SpecificationUpdate
from api.models.workflow import WorkflowCreate, WorkflowStatus
from api.routes.workflows import _checked_workflow
from api.services import runs as run_service
from api.services import specs as spec_service
from api.services import workflows as workflow_service
from api.services.audit import AuditTrail
from specs.models import Specification as SpecificationDocument

Document = Annotated[
    JSON,
    strawberry.argument(description="The document: a JSON object, or its YAML or JSON text as a string."),
]


def _text(document: Any) -> tuple[str, str | None]:
    """The document as text for the loader, and its content type."""
    if isinstance(document, str):
        return document, "application/yaml"
    if isinstance(document, dict):
        return json.dumps(document), "application/json"
    raise bad_input("document", "expected an object or the document's text")


def _spec_in(document: Any) -> SpecificationCreate:
    text, content_type = _text(document)
    parsed = parse_document(text, content_type=content_type, kind=SpecificationDocument)
    data = dump_document(parsed)
    return SpecificationCreate(
        name=parsed.name, version=parsed.version, document=data, content_hash=content_hash(data)
    )


def _audit(info: Info[Any, Any], action: str) -> AuditTrail | None:
    """The request's audit trail, naming the mutation's action (the same names as REST's)."""
    trail: AuditTrail | None = info.context.audit
    if trail is not None:
        trail.action = action
    return trail


def _status(status: Any) -> WorkflowStatus | None:
    value: WorkflowStatus | None = given(status)
    return value


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsAdmin])
    async def create_specification(self, info: Info[Any, Any], document: Document) -> Specification:
        async with info.context.session(read_only=False) as session:
            row = await spec_service.create_specification(
                session=session, spec_in=_spec_in(document), audit=_audit(info, "spec.create")
            )
        return Specification.from_row(row)

    @strawberry.mutation(
        permission_classes=[IsAdmin], description="Same content: no-op; new content: new version."
    )
    async def update_specification(
        self, info: Info[Any, Any], id: strawberry.ID, document: Document
    ) -> Specification:
        async with info.context.session(read_only=False) as session:
            row = await spec_service.get_specification(session=session, spec_id=parse_id(id))
            update = SpecificationUpdate.model_validate(_spec_in(document).model_dump())
            audit = _audit(info, "spec.update")
            row, changed = await spec_service.update_specification(
                session=session, spec=row, spec_in=update, audit=audit
            )
            if not changed and audit is not None:
                audit.stage(
                    session, resource_type=spec_service.RESOURCE, resource_id=row.id, version=row.version
                )
                await session.commit()
        return Specification.from_row(row)

    @strawberry.mutation(permission_classes=[IsAdmin], description="Returns the deleted specification's id.")
    async def delete_specification(self, info: Info[Any, Any], id: strawberry.ID) -> strawberry.ID:
        async with info.context.session(read_only=False) as session:
            row = await spec_service.get_specification(session=session, spec_id=parse_id(id))
            await spec_service.delete_specification(
                session=session, spec=row, audit=_audit(info, "spec.delete")
            )
        return id

    @strawberry.mutation(permission_classes=[IsAdmin], description="A draft, or active to deploy it at once.")
    async def create_workflow(
        self,
        info: Info[Any, Any],
        document: Document,
        status: WorkflowStatus | None = UNSET,
    ) -> Workflow:
        text, content_type = _text(document)
        async with info.context.session(read_only=False) as session:
            parsed, spec = await _checked_workflow(session, text, content_type)
            workflow_in = WorkflowCreate(
                name=parsed.name,
                version=parsed.version,
                status=_status(status) or WorkflowStatus.DRAFT,
                document=dump_document(parsed),
                spec_name=parsed.spec.name,
                spec_range=parsed.spec.version,
            )
            row = await workflow_service.create_workflow(
                session=session,
                prefect=info.context.app.prefect,
                workflow_in=workflow_in,
                document=parsed,
                spec=spec,
                work_pool=info.context.app.settings.prefect.work_pool,
                audit=_audit(info, "workflow.create"),
            )
        return Workflow.from_row(row)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Replace the document (a live workflow is redeployed) and/or move its status.",
    )
    async def update_workflow(
        self,
        info: Info[Any, Any],
        id: strawberry.ID,
        document: Document | None = UNSET,
        status: WorkflowStatus | None = UNSET,
    ) -> Workflow:
        document = given(document)
        if document is None and given(status) is None:
            raise bad_input("document", "send a document, a status, or both")
        async with info.context.session(read_only=False) as session:
            row = await workflow_service.get_workflow(session=session, workflow_id=parse_id(id))
            parsed, spec = None, None
            if document is not None:
                parsed, spec = await _checked_workflow(session, *_text(document))
            audit = _audit(info, "workflow.update" if document is not None else "workflow.status")
            row, _ = await workflow_service.update_workflow(
                session=session,
                prefect=info.context.app.prefect,
                workflow=row,
                document=parsed,
                spec=spec,
                status=_status(status),
                work_pool=info.context.app.settings.prefect.work_pool,
                audit=audit,
            )

        return Workflow.from_row(row)

    @strawberry.mutation(permission_classes=[IsAdmin], description="Returns the deleted workflow's id.")
    async def delete_workflow(self, info: Info[Any, Any], id: strawberry.ID) -> strawberry.ID:
        async with info.context.session(read_only=False) as session:
            row = await workflow_service.get_workflow(session=session, workflow_id=parse_id(id))
            await workflow_service.delete_workflow(
                session=session,
                prefect=info.context.app.prefect,
                workflow=row,
                audit=_audit(info, "workflow.delete"),
            )
        return id

    @strawberry.mutation(
        permission_classes=[IsOperator],
        description="Start a run of an active workflow; the same idempotency key returns the same run.",
    )
    async def execute_workflow(
        self,
        info: Info[Any, Any],
        id: strawberry.ID,
        parameters: JSON | None = UNSET,
        idempotency_key: str | None = UNSET,
    ) -> Run:
        parameters, idempotency_key = given(parameters), given(idempotency_key)
        if parameters is not None and not isinstance(parameters, dict):
            raise bad_input("parameters", "expected an object of parameter values")
        async with info.context.session(read_only=False) as session:
            row = await workflow_service.get_workflow(session=session, workflow_id=parse_id(id))
            run, _url, _replayed = await run_service.execute_workflow(
                session=session,
                prefect=info.context.app.prefect,
                workflow=row,
                parameters=dict(parameters or {}),
                idempotency_key=run_service.check_idempotency_key(idempotency_key),
                idempotency_ttl_seconds=info.context.app.settings.server.idempotency_ttl_seconds,
                audit=_audit(info, "workflow.execute"),
            )
        return Run.from_row(run, state=(run.state_type, run.state_name))
