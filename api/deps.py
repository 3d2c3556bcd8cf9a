"""Request dependencies: the database session, the caller and their role, app-wide services.

Every dependency is ``async def``: FastAPI runs plain ``def`` dependencies in a thread pool, a
thread hop per request for nothing.

Authentication accepts ``X-API-Key: <key>`` or ``Authorization: Bearer <jwt>`` (from
``POST /api/v1/auth/token``). Roles nest: viewer (read) < operator (+ execute) < admin (+ write).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

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
    return Principal(key_id=row.id, name=row.name, role=Role(row.role), via="token")


async def get_current_principal(
    state: StateDep,
    session: SessionDep,
    api_key: Annotated[str | None, Security(api_key_scheme)] = None,
    authorization: Annotated[str | None, Security(oauth2_scheme)] = None,
) -> Principal:
    """Authenticate the caller, then charge the request to their rate limit."""
    # OAuth2 returns the raw header value; re-read it to check the scheme ourselves.
    token = _bearer(authorization)
    if api_key:
        principal = await _principal_from_key(session, api_key)
    elif token:
        principal = await _principal_from_token(session, token, state.jwt_secret)
    else:
        raise UnauthorizedError(
            "authentication required: send 'X-API-Key: <key>' or 'Authorization: Bearer <token>'"
        )
    if state.rate_limiter is not None:
        wait = await state.rate_limiter.hit(str(principal.key_id))
        if wait is not None:
            limiter = state.rate_limiter
            raise RateLimitedError(
                f"rate limit of {limiter.limit} requests per {limiter.window:g}s exceeded", retry_after=wait
            )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]


class RequireRole:
    """Dependency: the caller must hold ``role`` or a higher one (403 otherwise)."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(self, principal: CurrentPrincipal) -> Principal:
        if not principal.role.allows(self.role):
            raise ForbiddenError(f"this needs the {self.role.value} role; the key has {principal.role.value}")
        return principal


Viewer = Annotated[Principal, Depends(RequireRole(Role.VIEWER))]
Operator = Annotated[Principal, Depends(RequireRole(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(RequireRole(Role.ADMIN))]

__all__ = [
    "Admin",
    "AppState",
    "CurrentPrincipal",
    "Operator",
    "PrefectDep",
    "RequireRole",
    "SessionDep",
    "StateDep",
    "Viewer",
]
