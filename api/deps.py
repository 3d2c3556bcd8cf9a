"""Request dependencies: the database session, the caller and their role, app-wide services.

Every dependency is ``async def``: FastAPI runs plain ``def`` dependencies in a thread pool, a
thread hop per request for nothing.

Authentication accepts ``X-API-Key: <key>`` or ``Authorization: Bearer <jwt>`` (from
``POST /api/v1/auth/token``). Roles nest: viewer (read) < operator (+ execute) < admin (+ write).

Every refusal (401, 403) is an audit event; failed authentications are counted per client
address, and an address over ``security.auth_failure_rate_limit`` gets 429 before its
credentials are even looked at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyHeader, OAuth2
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.db import Database
from api.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from api.models.api_key import ApiKey, Role
from api.prefect import PrefectGateway
from api.ratelimit import RateLimiter
from api.security import InvalidTokenError, Principal, hash_api_key, key_matches, verify_token
from api.services.audit import AuditTrail
from trinity.core.settings import Settings

TOKEN_URL = "/api/v1/auth/token"


@dataclass
class AppState:
    """Everything a request may need that lives as long as the application."""

    settings: Settings
    db: Database
    prefect: PrefectGateway
    jwt_secret: str
    rate_limiter: RateLimiter | None
    # Per client address: failed authentications, and token requests.
    auth_failures: RateLimiter | None = None
    token_requests: RateLimiter | None = None


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.trinity
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(request: Request, state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.db.session(read_only=request.method in ("GET", "HEAD")) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_prefect(state: StateDep) -> PrefectGateway:
    return state.prefect


PrefectDep = Annotated[PrefectGateway, Depends(get_prefect)]


async def get_audit(request: Request) -> AuditTrail:
    """The request's audit trail, with the digest of its body."""
    trail = AuditTrail.of(request)
    await trail.read_body(request)
    return trail


AuditDep = Annotated[AuditTrail, Depends(get_audit)]


def audited(action: str) -> Any:
    """Route dependency naming the audited action (``spec.create``, ...).

    Route dependencies run before the parameters' ones, so a refusal is recorded under this name.
    """

    async def name_action(request: Request) -> None:
        AuditTrail.of(request).action = action

    return Depends(name_action)


api_key_scheme = APIKeyHeader(name="X-API-Key", scheme_name="ApiKey", auto_error=False)
oauth2_scheme = OAuth2(
    flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL, scopes={})),
    scheme_name="OAuth2",
    description="Exchange an API key for a short-lived bearer token (client credentials grant).",
    auto_error=False,
)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("the Authorization header must be 'Bearer <token>'")
    return token.strip()


async def _principal_from_key(session: AsyncSession, key: str) -> Principal:
    digest = hash_api_key(key)
    row = (await session.exec(select(ApiKey).where(ApiKey.key_hash == digest))).first()
    if row is None or not key_matches(key, row.key_hash):
        raise UnauthorizedError("invalid API key")
    return Principal(key_id=row.id, name=row.name, role=Role(row.role), via="api_key")


async def _principal_from_token(session: AsyncSession, token: str, secret: str) -> Principal:
    try:
        claims = verify_token(token, secret=secret)
    except InvalidTokenError as exc:
        raise UnauthorizedError(
            str(exc), headers={"WWW-Authenticate": 'Bearer realm="trinity", error="invalid_token"'}
        ) from exc
    row = await session.get(ApiKey, claims.key_id)
    if row is None:
        raise UnauthorizedError("the API key behind this token has been deleted")
    return Principal(key_id=row.id, name=row.name, role=Role(row.role), via="token", token_id=claims.token_id)


async def _credentials(
    state: AppState, session: AsyncSession, api_key: str | None, authorization: str | None
) -> Principal:
    # OAuth2 returns the raw header value; re-read it to check the scheme ourselves.
    token = _bearer(authorization)
    if api_key:
        return await _principal_from_key(session, api_key)
    if token:
        return await _principal_from_token(session, token, state.jwt_secret)
    raise UnauthorizedError(
        "authentication required: send 'X-API-Key: <key>' or 'Authorization: Bearer <token>'"
    )


async def refuse_throttled_client(state: AppState, trail: AuditTrail) -> None:
    """429 while the client's address is over its budget of failed authentications."""
    if state.auth_failures is None:
        return
    wait = await state.auth_failures.check(trail.client or "unknown")
    if wait is not None:
        raise RateLimitedError(
            f"too many failed authentications from {trail.client or 'this address'}; "
            "retry after the given delay",
            retry_after=wait,
        )


async def authentication_failed(state: AppState, trail: AuditTrail, error: UnauthorizedError) -> None:
    """Count the failure against the client's address and record it in the audit trail."""
    if state.auth_failures is not None:
        await state.auth_failures.hit(trail.client or "unknown")
    await trail.deny(state.db, error)


async def authenticate(
    state: AppState,
    session: AsyncSession,
    trail: AuditTrail,
    *,
    api_key: str | None,
    authorization: str | None,
) -> Principal:
    """Authenticate the caller (throttled and audited), then charge the request to their rate limit."""
    await refuse_throttled_client(state, trail)
    try:
        principal = await _credentials(state, session, api_key, authorization)
    except UnauthorizedError as exc:
        await authentication_failed(state, trail, exc)
        raise
    trail.principal = principal
    if state.rate_limiter is not None:
        wait = await state.rate_limiter.hit(str(principal.key_id))
        if wait is not None:
            limiter = state.rate_limiter
            raise RateLimitedError(
                f"rate limit of {limiter.limit} requests per {limiter.window:g}s exceeded", retry_after=wait
            )
    return principal


async def get_current_principal(
    state: StateDep,
    session: SessionDep,
    trail: AuditDep,
    api_key: Annotated[str | None, Security(api_key_scheme)] = None,
    authorization: Annotated[str | None, Security(oauth2_scheme)] = None,
) -> Principal:
    """The authenticated caller of a REST request."""
    return await authenticate(state, session, trail, api_key=api_key, authorization=authorization)


CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]


def check_role(principal: Principal, role: Role) -> None:
    """Raise :class:`ForbiddenError` unless ``principal`` holds ``role`` or a higher one."""
    if not principal.role.allows(role):
        raise ForbiddenError(f"this needs the {role.value} role; the key has {principal.role.value}")


class RequireRole:
    """Dependency: the caller must hold ``role`` or a higher one (403, audited, otherwise)."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(self, state: StateDep, trail: AuditDep, principal: CurrentPrincipal) -> Principal:
        try:
            check_role(principal, self.role)
        except ForbiddenError as exc:
            await trail.deny(state.db, exc)
            raise
        return principal


Viewer = Annotated[Principal, Depends(RequireRole(Role.VIEWER))]
Operator = Annotated[Principal, Depends(RequireRole(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(RequireRole(Role.ADMIN))]

__all__ = [
    "Admin",
    "AppState",
    "AuditDep",
    "CurrentPrincipal",
    "Operator",
    "PrefectDep",
    "RequireRole",
    "SessionDep",
    "StateDep",
    "Viewer",
]
