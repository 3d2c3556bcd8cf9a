"""/specs: specification documents (JSON or YAML bodies), immutable per version."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response, status

from api.deps import Admin, AuditDep, SessionDep, Viewer, audited
from api.documents import content_hash, dump_document, read_document
from api.models.specification import (
    SpecificationCreate,
    SpecificationPublic,
    SpecificationsPublic,
    SpecificationUpdate,
)
from api.routes.common import PROTECTED, Limit, NameFilter, Offset, TextFilter, errors
from api.services import specs as service
from specs.models import Specification as SpecificationDocument

router = APIRouter(prefix="/specs", tags=["specs"], responses=PROTECTED)


def document_body(component: str) -> dict[str, Any]:
    """OpenAPI request body: the document as JSON (schema) or YAML (text)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    }


async def _read(request: Request) -> SpecificationCreate:
    document = await read_document(request, kind=SpecificationDocument)
    data = dump_document(document)
    return SpecificationCreate(
        name=document.name, version=document.version, document=data, content_hash=content_hash(data)
    )


@router.get("", response_model=SpecificationsPublic, summary="List specifications")
async def list_specs(
    session: SessionDep,
    _: Viewer,
    limit: Limit = 50,
    offset: Offset = 0,
    name: NameFilter = None,
    version: TextFilter = None,
) -> SpecificationsPublic:
    rows, total = await service.list_specifications(
        session=session, name=name, version=version, limit=limit, offset=offset
    )
    items = [SpecificationPublic.from_row(row) for row in rows]
    return SpecificationsPublic(items=items, total=total, limit=limit, offset=offset)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SpecificationPublic,
    summary="Create a specification",
    openapi_extra=document_body("SpecificationDocument"),
    responses=errors(409, 413, 415),
    dependencies=[audited("spec.create")],
)
async def create_spec(
    request: Request, response: Response, session: SessionDep, audit: AuditDep, _: Admin
) -> SpecificationPublic:
    spec_in = await _read(request)
    row = await service.create_specification(session=session, spec_in=spec_in, audit=audit)
    response.headers["Location"] = f"/api/v1/specs/{row.id}"
    return SpecificationPublic.from_row(row)


@router.get(
    "/{spec_id}", response_model=SpecificationPublic, summary="Get a specification", responses=errors(404)
)
async def get_spec(spec_id: uuid.UUID, session: SessionDep, _: Viewer) -> SpecificationPublic:
    row = await service.get_specification(session=session, spec_id=spec_id)
    return SpecificationPublic.from_row(row)


@router.put(
    "/{spec_id}",
    response_model=SpecificationPublic,
    summary="Replace a specification (same content: no-op; new content needs a new version)",
    openapi_extra=document_body("SpecificationDocument"),
    responses=errors(404, 409, 413, 415),
    dependencies=[audited("spec.update")],
)
async def replace_spec(
    spec_id: uuid.UUID, request: Request, session: SessionDep, audit: AuditDep, _: Admin
) -> SpecificationPublic:
    row = await service.get_specification(session=session, spec_id=spec_id)
    spec_in = await _read(request)
    update = SpecificationUpdate.model_validate(spec_in.model_dump())
    row, _changed = await service.update_specification(session=session, spec=row, spec_in=update, audit=audit)
    return SpecificationPublic.from_row(row)


@router.delete(
    "/{spec_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a specification no live workflow uses",
    responses=errors(404, 409),
    dependencies=[audited("spec.delete")],
)
async def delete_spec(spec_id: uuid.UUID, session: SessionDep, audit: AuditDep, _: Admin) -> Response:
    row = await service.get_specification(session=session, spec_id=spec_id)
    await service.delete_specification(session=session, spec=row, audit=audit)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
