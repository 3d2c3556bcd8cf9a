"""Runs started through the API, and the idempotency keys that guard ``execute``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from api.models.common import created_at_field, id_field, json_field
from api.models.pagination import Page


class ExecuteRequest(BaseModel):
    """The body of ``POST /workflows/{id}/execute``."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = PydanticField(default_factory=dict, description="Workflow parameters.")


class RunBase(SQLModel):
    workflow_name: str = Field(max_length=255)
    workflow_version: str = Field(max_length=64)
    flow_run_id: uuid.UUID = Field(unique=True)


class Run(RunBase, table=True):
    __tablename__ = "runs"
    __table_args__ = (sa.Index("ix_runs_workflow_created", "workflow_id", "created_at"),)

    id: uuid.UUID = id_field()
    workflow_id: uuid.UUID | None = Field(
        default=None, foreign_key="workflows.id", ondelete="SET NULL", nullable=True
    )
    parameters: dict[str, Any] = json_field()
    state_type: str = Field(max_length=50)
    state_name: str = Field(max_length=100)
    created_at: datetime = created_at_field()


class IdempotencyKey(SQLModel, table=True):
    """One ``Idempotency-Key`` of ``execute``; the body hash tells a replay from a different request."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("workflow_id", "key", name="uq_idempotency_keys_workflow_key"),)

    id: uuid.UUID = id_field()
    workflow_id: uuid.UUID = Field(foreign_key="workflows.id", ondelete="CASCADE")
    key: str = Field(max_length=255)
    body_hash: str = Field(max_length=64)
    run_id: uuid.UUID | None = Field(default=None, foreign_key="runs.id", ondelete="SET NULL", nullable=True)
    created_at: datetime = created_at_field()


class RunState(SQLModel):
    type: str = Field(description="Prefect state type: SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, ...")
    name: str


class TaskRunPublic(SQLModel):
    id: uuid.UUID
    task_id: str = Field(description="The spec task id (the Prefect task run is named after it).")
    name: str
    state: RunState
    start_time: datetime | None = None
    end_time: datetime | None = None


class RunPublic(RunBase):
    id: uuid.UUID
    workflow_id: uuid.UUID | None
    state: RunState
    ui_url: str | None = Field(description="The run in the Prefect UI.")
    parameters: dict[str, Any]
    created_at: datetime


class RunDetail(RunPublic):
    start_time: datetime | None = None
    end_time: datetime | None = None
    tasks: list[TaskRunPublic] = Field(default_factory=list)
    rerun_of: uuid.UUID | None = Field(
        default=None,
        description="Prefect flow-run id of the crashed run this run reruns (the workflow's on_crash).",
    )
    reruns: list[uuid.UUID] = Field(
        default_factory=list,
        description="Prefect flow-run ids of the reruns started after this run crashed, oldest first.",
    )


class RunsPublic(Page[RunPublic]):
    pass
