"""/workflows: workflow documents, their lifecycle (draft/active/paused/archived) and execution."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import ValidationError

from api.deps import Admin, AuditDep, Operator, PrefectDep, SessionDep, StateDep, Viewer, audited
from api.documents import (
    decode_text,
    dump_document,
    loader_content_type,
    media_type,
    parse_document,
)
from api.errors import Detail, UnprocessableError, validation_loc
from api.models.run import ExecuteRequest, RunPublic
from api.models.specification import Specification
from api.models.workflow import (
    Workflow,
    WorkflowCreate,
    WorkflowPublic,
    WorkflowsPublic,
    WorkflowStatus,
    WorkflowUpdate,
)
from api.routes.common import PROTECTED, Limit, NameFilter, Offset, errors
from api.routes.specs import document_body
from api.services import runs as run_service
from api.services import specs as spec_service
from api.services import workflows as service
from specs.models import Specification as SpecificationDocument
from specs.models import Workflow as WorkflowDocument

router = APIRouter(prefix="/workflows", tags=["workflows"], responses=PROTECTED)

StatusQuery = Annotated[WorkflowStatus | None, Query(description="Status to move to in the same request.")]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry-safe key: the same key and body return the same run.",
    ),
]

_PEEK_YAML_LIMIT = 4096


def _status_only(text: str, content_type: str | None) -> WorkflowUpdate | None:
    """A body like ``{"status": "active"}`` (no ``kind``) is a status change, not a document."""
    data: Any = None
    try:
        if content_type == "application/yaml":
            if len(text) <= _PEEK_YAML_LIMIT:
                data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (ValueError, yaml.YAMLError):
        return None  # let the document loader report the syntax error with its location
    if not isinstance(data, dict) or "kind" in data or "status" not in data:
        return None
    try:
        return WorkflowUpdate.model_validate(data)
    except ValidationError as exc:
        details = [Detail(loc=validation_loc(("body", *e["loc"])), msg=e["msg"]) for e in exc.errors()]
        raise UnprocessableError("the status change is not valid", details=details) from exc


async def _checked_workflow(
    session: SessionDep, text: str, content_type: str | None
) -> tuple[WorkflowDocument, Specification]:
    """Parse a workflow, bind it to the best stored specification, then check it against that one."""
    document = parse_document(text, content_type=content_type, kind=WorkflowDocument)
    spec = await spec_service.resolve_specification(
        session=session, name=document.spec.name, version_range=document.spec.version
    )
    # Again with the specification: references to its parameters are checked, with their lines.
    stored = SpecificationDocument.model_validate(spec.document)
    document = parse_document(text, content_type=content_type, kind=WorkflowDocument, specifications=[stored])
    return document, spec


async def _public(session: SessionDep, row: Workflow) -> WorkflowPublic:
    versions = await service.spec_versions(session=session, spec_ids=[row.spec_id])
    return WorkflowPublic.from_row(row, spec_version=versions.get(row.spec_id) if row.spec_id else None)


@router.get("", response_model=WorkflowsPublic, summary="List workflows")
async def list_workflows(
    session: SessionDep,
    _: Viewer,
    limit: Limit = 50,
    offset: Offset = 0,
    name: NameFilter = None,
    status: Annotated[WorkflowStatus | None, Query()] = None,
    spec_id: Annotated[uuid.UUID | None, Query()] = None,
) -> WorkflowsPublic:
    rows, total = await service.list_workflows(
        session=session, name=name, status=status, spec_id=spec_id, limit=limit, offset=offset
    )
    items = [WorkflowPublic.from_row(row, spec_version=version) for row, version in rows]
    return WorkflowsPublic(items=items, total=total, limit=limit, offset=offset)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkflowPublic,
    summary="Create a workflow (draft, or active to deploy it at once)",
    openapi_extra=document_body("WorkflowDocument"),
    responses=errors(409, 413, 415),
    dependencies=[audited("workflow.create")],
)
async def create_workflow(
    request: Request,
    response: Response,
    session: SessionDep,
    prefect: PrefectDep,
    state: StateDep,
    audit: AuditDep,
    _: Admin,
    status: StatusQuery = None,
) -> WorkflowPublic:
    content_type = loader_content_type(media_type(request))
    document, spec = await _checked_workflow(session, decode_text(await request.body()), content_type)
    workflow_in = WorkflowCreate(
        name=document.name,
        version=document.version,
        status=status or WorkflowStatus.DRAFT,
        document=dump_document(document),
        spec_name=document.spec.name,
        spec_range=document.spec.version,
    )
    row = await service.create_workflow(
        session=session,
        prefect=prefect,
        workflow_in=workflow_in,
        document=document,
        spec=spec,
        work_pool=state.settings.prefect.work_pool,
        audit=audit,
    )
    response.headers["Location"] = f"/api/v1/workflows/{row.id}"
    return await _public(session, row)


@router.get("/{workflow_id}", response_model=WorkflowPublic, summary="Get a workflow", responses=errors(404))
async def get_workflow(workflow_id: uuid.UUID, session: SessionDep, _: Viewer) -> WorkflowPublic:
    row = await service.get_workflow(session=session, workflow_id=workflow_id)
    return await _public(session, row)


_PUT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/WorkflowDocument"},
                        {"$ref": "#/components/schemas/WorkflowUpdate"},
                    ]
                }
            },
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


@router.put(
    "/{workflow_id}",
    response_model=WorkflowPublic,
    summary="Replace a workflow's document and/or change its status",
    description=(
        "Send the Workflow document (JSON or YAML) to replace it -- a live workflow is redeployed -- "
        'or `{"status": "active" | "paused" | "archived"}` to move it through its lifecycle. '
        "`?status=` changes the status together with a new document."
    ),
    openapi_extra=_PUT_BODY,
    responses=errors(404, 409, 413, 415),
    dependencies=[audited("workflow.update")],
)
async def update_workflow(
    workflow_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    prefect: PrefectDep,
    state: StateDep,
    audit: AuditDep,
    _: Admin,
    status: StatusQuery = None,
) -> WorkflowPublic:
    row = await service.get_workflow(session=session, workflow_id=workflow_id)
    content_type = loader_content_type(media_type(request))
    text = decode_text(await request.body())
    change = _status_only(text, content_type)
    document, spec = None, None
    if change is not None:
        status = change.status
        audit.action = "workflow.status"
    else:
        document, spec = await _checked_workflow(session, text, content_type)
    row, _changed = await service.update_workflow(
        session=session,
        prefect=prefect,
        workflow=row,
        document=document,
        spec=spec,
        status=status,
        work_pool=state.settings.prefect.work_pool,
        audit=audit,
    )
    return await _public(session, row)


@router.delete(
    "/{workflow_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a workflow and its deployment",
    responses=errors(404),
    dependencies=[audited("workflow.delete")],
)
async def delete_workflow(
    workflow_id: uuid.UUID, session: SessionDep, prefect: PrefectDep, audit: AuditDep, _: Admin
) -> Response:
    row = await service.get_workflow(session=session, workflow_id=workflow_id)
    await service.delete_workflow(session=session, prefect=prefect, workflow=row, audit=audit)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{workflow_id}/execute",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunPublic,
    summary="Start a run of an active workflow",
    responses=errors(404, 409, 413),
    dependencies=[audited("workflow.execute")],
)
async def execute_workflow(
    workflow_id: uuid.UUID,
    body: ExecuteRequest,
    response: Response,
    session: SessionDep,
    prefect: PrefectDep,
    state: StateDep,
    audit: AuditDep,
    _: Operator,
    idempotency_key: IdempotencyKeyHeader = None,
) -> RunPublic:
    row = await service.get_workflow(session=session, workflow_id=workflow_id)
    run, ui_url, replayed = await run_service.execute_workflow(
        session=session,
        prefect=prefect,
        workflow=row,
        parameters=body.parameters,
        idempotency_key=run_service.check_idempotency_key(idempotency_key),
        idempotency_ttl_seconds=state.settings.server.idempotency_ttl_seconds,
        audit=audit,
    )
    response.headers["Location"] = f"/api/v1/runs/{run.id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return run_service.public_run(run, ui_url=ui_url)
