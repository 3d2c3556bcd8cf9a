"""Workflows: a DAG document bound to a stored specification, with a lifecycle status."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlmodel import Field, SQLModel

from api.models.common import column_field, created_at_field, id_field, json_field, updated_at_field
from api.models.pagination import Page
from specs.naming import deployment_full_name
from trinity.core import tables

_WORKFLOWS = tables.workflows


class WorkflowStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


TRANSITIONS: dict[WorkflowStatus, frozenset[WorkflowStatus]] = {
    WorkflowStatus.DRAFT: frozenset({WorkflowStatus.ACTIVE, WorkflowStatus.ARCHIVED}),
    WorkflowStatus.ACTIVE: frozenset({WorkflowStatus.PAUSED, WorkflowStatus.ARCHIVED}),
    WorkflowStatus.PAUSED: frozenset({WorkflowStatus.ACTIVE, WorkflowStatus.ARCHIVED}),
    WorkflowStatus.ARCHIVED: frozenset(),
}
"""Allowed status changes; staying in the same status is always a no-op."""

LIVE_STATUSES = (WorkflowStatus.DRAFT, WorkflowStatus.ACTIVE, WorkflowStatus.PAUSED)
DEPLOYED_STATUSES = (WorkflowStatus.ACTIVE, WorkflowStatus.PAUSED)


class WorkflowBase(SQLModel):
    name: str = Field(max_length=255)
    version: str = Field(max_length=64)
    status: WorkflowStatus = Field(default=WorkflowStatus.DRAFT)


class WorkflowCreate(WorkflowBase):
    """A validated workflow document, ready to store."""

    document: dict[str, Any]
    spec_name: str
    spec_range: str


class WorkflowUpdate(BaseModel):
    """The body of a status-only PUT (a new document is sent as the document itself)."""

    model_config = ConfigDict(extra="forbid")

    status: WorkflowStatus


class Workflow(SQLModel, table=True):
    __table__ = _WORKFLOWS

    id: uuid.UUID = id_field(_WORKFLOWS)
    spec_id: uuid.UUID | None = column_field(_WORKFLOWS, "spec_id", default=None)
    name: str = column_field(_WORKFLOWS, "name")
    version: str = column_field(_WORKFLOWS, "version")
    spec_name: str = column_field(_WORKFLOWS, "spec_name")
    spec_range: str = column_field(_WORKFLOWS, "spec_range")
    definition: dict[str, Any] = json_field(_WORKFLOWS, "definition")
    status: WorkflowStatus = column_field(_WORKFLOWS, "status", default=WorkflowStatus.DRAFT)
    deployment_id: uuid.UUID | None = column_field(_WORKFLOWS, "deployment_id", default=None)
    created_at: datetime = created_at_field(_WORKFLOWS)
    updated_at: datetime = updated_at_field(_WORKFLOWS)


class SpecLink(SQLModel):
    id: uuid.UUID | None = Field(description="The stored specification this workflow resolved to.")
    name: str
    range: str = Field(description="The version range the workflow asks for.")
    version: str | None = Field(default=None, description="The version it resolved to.")


class WorkflowPublic(WorkflowBase):
    id: uuid.UUID
    spec: SpecLink
    definition: dict[str, Any]
    deployment_id: uuid.UUID | None
    deployment_name: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Workflow, *, spec_version: str | None = None) -> WorkflowPublic:
        """Build the public view; ``spec_version`` is the resolved specification's version.

        Rows come from our own tables, already valid: construct without validating again.
        """
        deployed = row.deployment_id is not None
        return cls.model_construct(
            id=row.id,
            name=row.name,
            version=row.version,
            status=WorkflowStatus(row.status),
            spec=SpecLink.model_construct(
                id=row.spec_id, name=row.spec_name, range=row.spec_range, version=spec_version
            ),
            definition=row.definition,
            deployment_id=row.deployment_id,
            deployment_name=deployment_full_name(row.name) if deployed else None,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class WorkflowsPublic(Page[WorkflowPublic]):
    pass
