"""/auth/token: exchange an API key for a short-lived JWT (OAuth 2.0 client credentials).

Requests are limited per client address (``security.token_rate_limit``); failures count against
the address's budget of failed authentications like any other, and every token issued or refused
is an audit event (never with the body: it is a credential).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel
from sqlmodel import select

from api.deps import (
    AppState,
    AuditDep,
    SessionDep,
    StateDep,
    audited,
    authentication_failed,
    refuse_throttled_client,
)
from api.errors import BadRequestError, RateLimitedError, UnauthorizedError
from api.models.api_key import ApiKey, Role
from api.models.audit import Outcome
from api.routes.common import errors
from api.security import Principal, hash_api_key, issue_token, key_matches
from api.services.audit import AuditTrail
from api.services.keys import RESOURCE as KEY_RESOURCE

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


async def _throttle(state: AppState, trail: AuditTrail) -> None:
    if state.token_requests is not None:
        wait = await state.token_requests.hit(trail.client or "unknown")
        if wait is not None:
            limiter = state.token_requests
            raise RateLimitedError(
                f"token requests are limited to {limiter.limit} per {limiter.window:g}s per address",
                retry_after=wait,
            )
    await refuse_throttled_client(state, trail)


async def _client_key(
    request: Request, session: SessionDep, secret: str | None, client_id: str | None
) -> ApiKey:
    basic_id, basic_secret = _basic_credentials(request)
    secret = secret or basic_secret
    client_id = client_id or basic_id
    if not secret:
        raise UnauthorizedError("client_secret (the API key) is required", code="invalid_client")
    digest = hash_api_key(secret)
    row = (await session.exec(select(ApiKey).where(ApiKey.key_hash == digest))).first()
    if row is None or not key_matches(secret, row.key_hash) or not _client_id_matches(client_id, row):
        raise UnauthorizedError("invalid client credentials", code="invalid_client")
    return row


@router.post(
    "/token",
    response_model=Token,
    summary="Get a bearer token for an API key (grant_type=client_credentials, client_secret=<key>)",
    responses=errors(400, 401, 413, 422, 429, 503),
    dependencies=[audited("token.issue")],
)
async def token(
    request: Request,
    response: Response,
    session: SessionDep,
    state: StateDep,
    audit: AuditDep,
    grant_type: Annotated[str, Form(max_length=64)],
    client_secret: Annotated[str | None, Form(max_length=512)] = None,
    client_id: Annotated[str | None, Form(max_length=255)] = None,
    scope: Annotated[str | None, Form(max_length=1024)] = None,
) -> Token:
    await _throttle(state, audit)
    if grant_type != "client_credentials":
        raise BadRequestError(
            "only grant_type=client_credentials is supported", code="unsupported_grant_type"
        )
    try:
        row = await _client_key(request, session, client_secret, client_id)
    except UnauthorizedError as exc:
        await authentication_failed(state, audit, exc)
        raise
    token_id = uuid.uuid4().hex
    audit.principal = Principal(
        key_id=row.id, name=row.name, role=Role(row.role), via="api_key", token_id=token_id
    )
    access_token, lifetime = issue_token(
        key_id=row.id,
        role=Role(row.role),
        secret=state.jwt_secret,
        expiry_seconds=state.settings.security.token_expiry,
        token_id=token_id,
    )
    event = audit.event(
        outcome=Outcome.ALLOWED, status_code=200, resource_type=KEY_RESOURCE, resource_id=row.id
    )
    await audit.record(state.db, event)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return Token(access_token=access_token, expires_in=lifetime)
