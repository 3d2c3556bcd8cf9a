"""Audit events: who did (or was refused) what, when, from where; written by the API, read by admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import SQLModel

from api.models.common import column_field, id_field, json_field
from api.models.pagination import Page
from trinity.core import tables
from trinity.core.types import utcnow

_EVENTS = tables.audit_events


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"


class AuditEvent(SQLModel, table=True):
    __table__ = _EVENTS

    id: uuid.UUID = id_field(_EVENTS)
    occurred_at: datetime = column_field(_EVENTS, "occurred_at", default_factory=utcnow)
    actor_key_id: uuid.UUID | None = column_field(_EVENTS, "actor_key_id", default=None)
    actor_name: str | None = column_field(_EVENTS, "actor_name", default=None)
    actor_role: str | None = column_field(_EVENTS, "actor_role", default=None)
    token_id: str | None = column_field(_EVENTS, "token_id", default=None)
    action: str = column_field(_EVENTS, "action")
    method: str = column_field(_EVENTS, "method")
    path: str = column_field(_EVENTS, "path")
    resource_type: str | None = column_field(_EVENTS, "resource_type", default=None)
    resource_id: str | None = column_field(_EVENTS, "resource_id", default=None)
    resource_version: str | None = column_field(_EVENTS, "resource_version", default=None)
    client_address: str | None = column_field(_EVENTS, "client_address", default=None)
    outcome: str = column_field(_EVENTS, "outcome")
    status_code: int = column_field(_EVENTS, "status_code")
    reason: str | None = column_field(_EVENTS, "reason", default=None)
    body_sha256: str | None = column_field(_EVENTS, "body_sha256", default=None)
    details: dict[str, Any] | None = json_field(_EVENTS, "details")


class AuditActor(BaseModel):
    """Who: the API key (directly or through a bearer token); all empty when nobody authenticated."""

    key_id: uuid.UUID | None = None
    name: str | None = None
    role: str | None = None
    token_id: str | None = Field(default=None, description="The bearer token's id (jti), if one was used.")


class AuditResource(BaseModel):
    """What the action was on."""

    type: str | None = None
    id: str | None = None
    version: str | None = None


class AuditEventPublic(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    actor: AuditActor
    action: str = Field(description="e.g. spec.create, workflow.status, workflow.execute, key.revoke.")
    method: str
    path: str
    resource: AuditResource
    client_address: str | None = None
    outcome: Outcome
    status_code: int
    reason: str | None = Field(default=None, description="Why a request was denied.")
    body_sha256: str | None = Field(default=None, description="SHA-256 of the request body (hex).")
    details: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: AuditEvent) -> AuditEventPublic:
        """The public view of a stored event."""
        return cls(
            id=row.id,
            occurred_at=row.occurred_at,
            actor=AuditActor(
                key_id=row.actor_key_id, name=row.actor_name, role=row.actor_role, token_id=row.token_id
            ),
            action=row.action,
            method=row.method,
            path=row.path,
            resource=AuditResource(type=row.resource_type, id=row.resource_id, version=row.resource_version),
            client_address=row.client_address,
            outcome=Outcome(row.outcome),
            status_code=row.status_code,
            reason=row.reason,
            body_sha256=row.body_sha256,
            details=row.details,
        )


class AuditEventsPublic(Page[AuditEventPublic]):
    pass
