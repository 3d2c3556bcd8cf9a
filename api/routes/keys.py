"""/keys: API key management (admin only). A key is shown once, when it is created."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from api.deps import Admin, AuditDep, SessionDep, audited
from api.models.api_key import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeysPublic
from api.routes.common import PROTECTED, Limit, Offset, errors
from api.services import keys as service

router = APIRouter(prefix="/keys", tags=["keys"], responses=PROTECTED)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    summary="Create an API key (the key is in this answer only)",
    responses=errors(413),
    dependencies=[audited("key.create")],
)
async def create_key(key_in: ApiKeyCreate, session: SessionDep, audit: AuditDep, _: Admin) -> ApiKeyCreated:
    row, key = await service.create_api_key(session=session, key_in=key_in, audit=audit)
    public = ApiKeyPublic.model_validate(row, from_attributes=True)
    return ApiKeyCreated(**public.model_dump(), key=key)


@router.get("", response_model=ApiKeysPublic, summary="List API keys")
async def list_keys(session: SessionDep, _: Admin, limit: Limit = 50, offset: Offset = 0) -> ApiKeysPublic:
    rows, total = await service.list_api_keys(session=session, limit=limit, offset=offset)
    items = [ApiKeyPublic.model_validate(row, from_attributes=True) for row in rows]
    return ApiKeysPublic(items=items, total=total, limit=limit, offset=offset)


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an API key (its tokens stop working)",
    responses=errors(404, 409),
    dependencies=[audited("key.revoke")],
)
async def delete_key(key_id: uuid.UUID, session: SessionDep, audit: AuditDep, _: Admin) -> Response:
    await service.delete_api_key(session=session, key_id=key_id, audit=audit)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
