"""/audit: the audit trail (admin only), newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Admin, SessionDep
from api.models.audit import AuditEventPublic, AuditEventsPublic, Outcome
from api.routes.common import PROTECTED, DateTimeQuery, Limit, Offset, as_utc
from api.services import audit as service

router = APIRouter(prefix="/audit", tags=["audit"], responses=PROTECTED)

ActorFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$", description="API key id or name."),
]
ActionFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f]+$",
        description="Exact action: spec.create, workflow.execute, key.revoke, token.issue, ...",
    ),
]

Since = Annotated[DateTimeQuery | None, Query(description="Events at or after this time (RFC 3339).")]
Until = Annotated[DateTimeQuery | None, Query(description="Events before this time (RFC 3339).")]


@router.get(
    "",
    response_model=AuditEventsPublic,
    summary="List audit events, newest first",
    description=(
        "Who (API key, role, token), what (action, resource), when, from where (client address), "
        "the outcome (`allowed`, or `denied` with the reason) and the SHA-256 of the request body. "
        "Recorded: specification and workflow changes, status changes, executions, key creation "
        "and revocation, token issue, and every 401 and 403."
    ),
)
async def list_audit_events(
    session: SessionDep,
    _: Admin,
    limit: Limit = 50,
    offset: Offset = 0,
    actor: ActorFilter = None,
    action: ActionFilter = None,
    outcome: Annotated[Outcome | None, Query()] = None,
    since: Since = None,
    until: Until = None,
) -> AuditEventsPublic:
    rows, total = await service.list_events(
        session=session,
        actor=actor,
        action=action,
        outcome=outcome,
        since=as_utc(since, name="since"),
        until=as_utc(until, name="until"),
        limit=limit,
        offset=offset,
    )
    items = [AuditEventPublic.from_row(row) for row in rows]
    return AuditEventsPublic(items=items, total=total, limit=limit, offset=offset)
