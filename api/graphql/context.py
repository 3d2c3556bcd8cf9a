"""What every resolver of one GraphQL request (or WebSocket connection) shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from api.deps import AppState, authentication_failed
from api.errors import ApiError, UnauthorizedError
from api.graphql.loaders import Loaders
from api.security import Principal
from api.services.audit import AuditTrail
from api.services.events import authenticate


@dataclass
class Context(BaseContext):
    """The app's services, the caller (or why there is none) and the request's loaders."""

    state: AppState | None = None
    principal: Principal | None = None
    auth_error: ApiError | None = None
    loaders: Loaders = field(default_factory=lambda: Loaders(None))
    audit: AuditTrail | None = None

    def __post_init__(self) -> None:
        super().__init__()

    @asynccontextmanager
    async def session(self, *, read_only: bool = True) -> AsyncIterator[AsyncSession]:
        """A database session of its own: resolvers run concurrently, and a session cannot."""
        assert self.state is not None
        async with self.state.db.session(read_only=read_only) as session:
            yield session

    @property
    def app(self) -> AppState:
        assert self.state is not None
        return self.state

    async def sign_in(self, *, api_key: str | None, authorization: str | None) -> None:
        """Authenticate as REST does; a failure is kept and answered when the operation runs."""
        assert self.audit is not None
        try:
            self.principal = await authenticate(
                self.app, self.audit, api_key=api_key, authorization=authorization
            )
            self.auth_error = None
        except ApiError as exc:
            self.principal, self.auth_error = None, exc


async def get_context(connection: HTTPConnection) -> Context:
    """FastAPI dependency: the context of an HTTP request or a WebSocket connection.

    Credentials come from the ``X-API-Key`` or ``Authorization`` header; a WebSocket client
    may send them in its ``connection_init`` payload instead (see the router).
    """
    state: AppState = connection.app.state.trinity
    trail = AuditTrail.of(connection)
    trail.action = "graphql"
    context = Context(state=state, loaders=Loaders(state), audit=trail)
    api_key = connection.headers.get("x-api-key")
    authorization = connection.headers.get("authorization")
    if api_key or authorization:
        await context.sign_in(api_key=api_key, authorization=authorization)
    else:
        error = UnauthorizedError(
            "authentication required: send 'X-API-Key: <key>' or 'Authorization: Bearer <token>'"
        )
        context.auth_error = error
        if connection.scope["type"] == "http":  # a WebSocket may still sign in with connection_init
            await authentication_failed(state, trail, error)
    return context
