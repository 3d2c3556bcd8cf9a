"""/auth/token: exchange an API key for a short-lived JWT (OAuth 2.0 client credentials)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel
from sqlmodel import select

from api.deps import SessionDep, StateDep
from api.errors import BadRequestError, UnauthorizedError
from api.models.api_key import ApiKey, Role
from api.routes.common import errors
from api.security import hash_api_key, issue_token, key_matches

router = APIRouter(prefix="/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


def _basic_credentials(request: Request) -> tuple[str | None, str | None]:
    # RFC 6749 2.3.1: clients may send their credentials with HTTP Basic instead of the form.
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise UnauthorizedError("malformed Basic credentials", code="invalid_client") from exc
    client_id, _, secret = decoded.partition(":")
    return client_id or None, secret or None


def _client_id_matches(client_id: str | None, row: ApiKey) -> bool:
    if not client_id:
        return True
    return client_id in {str(row.id), row.name, row.prefix} or _same_uuid(client_id, row.id)


def _same_uuid(text: str, value: uuid.UUID) -> bool:
    try:
        return uuid.UUID(text) == value
    except ValueError:
        return False


@router.post(
    "/token",
    response_model=Token,
    summary="Get a bearer token for an API key (grant_type=client_credentials, client_secret=<key>)",
    responses=errors(400, 401, 413, 422, 429, 503),
)
async def token(
    request: Request,
    response: Response,
    session: SessionDep,
    state: StateDep,
    grant_type: Annotated[str, Form(max_length=64)],
    client_secret: Annotated[str | None, Form(max_length=512)] = None,
    client_id: Annotated[str | None, Form(max_length=255)] = None,
    scope: Annotated[str | None, Form(max_length=1024)] = None,
) -> Token:
    if grant_type != "client_credentials":
        raise BadRequestError(
            "only grant_type=client_credentials is supported", code="unsupported_grant_type"
        )
    basic_id, basic_secret = _basic_credentials(request)
    secret = client_secret or basic_secret
    client_id = client_id or basic_id
    if not secret:
        raise UnauthorizedError("client_secret (the API key) is required", code="invalid_client")
    digest = hash_api_key(secret)
    row = (await session.exec(select(ApiKey).where(ApiKey.key_hash == digest))).first()
    if row is None or not key_matches(secret, row.key_hash) or not _client_id_matches(client_id, row):
        raise UnauthorizedError("invalid client credentials", code="invalid_client")
    access_token, lifetime = issue_token(
        key_id=row.id,
        role=Role(row.role),
        secret=state.jwt_secret,
        expiry_seconds=state.settings.security.token_expiry,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return Token(access_token=access_token, expires_in=lifetime)
