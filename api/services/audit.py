"""The audit trail: one event per audited request, and the admins' view of it.

A change is recorded in the transaction that makes it (:meth:`AuditTrail.stage`, called by the
services right before their commit), so the trail holds a change exactly when the database does.
Refusals (every 401 and 403) and actions that change no row (issuing a token, a no-op update)
are recorded in a short transaction of their own (:meth:`AuditTrail.record`); if that write fails
the request still gets its own answer and the failure is logged in one line.

Events never hold a secret: the body is kept as its SHA-256 digest only (none at all for the
token endpoint, whose body is a credential), and details carry ids and statuses, never parameter
values.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection, Request

from api.db import Database
from api.errors import ApiError
from api.models.audit import AuditEvent, Outcome
from api.security import Principal
from api.services.paging import fetch_model_page

logger = logging.getLogger("trinity.api")

_STATE_KEY = "audit_trail"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_MAX_PATH = 1024
_MAX_REASON = 500


def _route_facts(connection: HTTPConnection) -> tuple[str, int]:
    """The default action of the matched route ("METHOD /path/{param}") and its success status."""
    route: Any = connection.scope.get("route")
    path = connection.url.path
    template = getattr(route, "path", None) or path
    # The route knows its path below the prefix it was included with: put the prefix back.
    depth = template.count("/")
    prefix = "/".join(path.split("/")[: path.count("/") - depth + 1]) if path.count("/") > depth else ""
    method = connection.scope.get("method", "WEBSOCKET")
    return f"{method} {prefix}{template}", int(getattr(route, "status_code", None) or 200)


@dataclass
class AuditTrail:
    """What one request tells the audit trail: where from, who (once known), which action."""

    method: str
    path: str
    client: str | None
    action: str
    success_status: int = 200
    body_sha256: str | None = None
    principal: Principal | None = None
    recorded: bool = False

    @classmethod
    def of(cls, connection: HTTPConnection) -> AuditTrail:
        """The request's trail (made on first use, then kept with the request)."""
        state = connection.scope.setdefault("state", {})
        trail: AuditTrail | None = state.get(_STATE_KEY)
        if trail is None:
            action, status = _route_facts(connection)
            trail = cls(
                method=connection.scope.get("method", "WEBSOCKET"),
                path=connection.url.path[:_MAX_PATH],
                client=connection.client.host if connection.client else None,
                action=action,
                success_status=status,
            )
            state[_STATE_KEY] = trail
        return trail

    async def read_body(self, request: Request) -> None:
        """Keep the SHA-256 of the request body (not of a form: the token endpoint's is a credential)."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.method in ("GET", "HEAD", "DELETE") or content_type in _FORM_TYPES:
            return
        body = await request.body()
        self.body_sha256 = hashlib.sha256(body).hexdigest() if body else None

    def event(
        self,
        *,
        outcome: Outcome,
        status_code: int,
        reason: str | None = None,
        resource_type: str | None = None,
        resource_id: object | None = None,
        version: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """An event for this request."""
        who = self.principal
        return AuditEvent(
            actor_key_id=who.key_id if who else None,
            actor_name=who.name if who else None,
            actor_role=who.role.value if who else None,
            token_id=who.token_id if who else None,
            action=self.action,
            method=self.method,
            path=self.path,
            resource_type=resource_type,
            resource_id=None if resource_id is None else str(resource_id),
            resource_version=version,
            client_address=self.client,
            outcome=outcome.value,
            status_code=status_code,
            reason=reason[:_MAX_REASON] if reason else None,
            body_sha256=self.body_sha256,
            details=details,
        )

    def stage(
        self,
        session: AsyncSession,
        *,
        resource_type: str,
        resource_id: object,
        version: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Add the allowed event to ``session``: it is committed with the change it records."""
        session.add(
            self.event(
                outcome=Outcome.ALLOWED,
                status_code=self.success_status,
                resource_type=resource_type,
                resource_id=resource_id,
                version=version,
                details=details,
            )
        )
        self.recorded = True

    async def record(self, db: Database, event: AuditEvent) -> None:
        """Write ``event`` in a transaction of its own; a failure is logged, never raised."""
        try:
            async with db.session() as session:
                session.add(event)
                await session.commit()
        except Exception as exc:  # the answer to the request must not depend on the trail
            logger.warning(
                "audit: could not record %s %s (%s) for %s; the request was answered anyway: %s",
                event.outcome,
                event.action,
                event.status_code,
                event.client_address,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
        self.recorded = True

    async def deny(self, db: Database, error: ApiError) -> None:
        """Record a refusal (401, 403) with the reason the caller was given."""
        await self.record(
            db, self.event(outcome=Outcome.DENIED, status_code=error.status_code, reason=error.message)
        )


async def list_events(
    *,
    session: AsyncSession,
    actor: str | None,
    action: str | None,
    outcome: Outcome | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEvent], int]:
    """One page of events, newest first, and the total matching the filters.

    ``actor`` is a key id or a key name; ``since`` is inclusive, ``until`` exclusive.
    """
    statement = sa.select(AuditEvent).order_by(col(AuditEvent.occurred_at).desc(), col(AuditEvent.id))
    if actor is not None:
        statement = statement.where(_actor_is(actor))
    if action is not None:
        statement = statement.where(col(AuditEvent.action) == action)
    if outcome is not None:
        statement = statement.where(col(AuditEvent.outcome) == outcome.value)
    if since is not None:
        statement = statement.where(col(AuditEvent.occurred_at) >= since)
    if until is not None:
        statement = statement.where(col(AuditEvent.occurred_at) < until)
    return await fetch_model_page(session, statement, limit=limit, offset=offset)


def _actor_is(actor: str) -> sa.ColumnElement[bool]:
    try:
        key_id = uuid.UUID(actor)
    except ValueError:
        return col(AuditEvent.actor_name) == actor
    return sa.or_(col(AuditEvent.actor_key_id) == key_id, col(AuditEvent.actor_name) == actor)
