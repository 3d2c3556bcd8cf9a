"""``execution_logs``: one row per finished flow run, written by the executor (flows/)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.common import UTCDateTime, created_at_field, id_field, json_field


class ExecutionLogBase(SQLModel):
    workflow_name: str = Field(max_length=255, index=True)
    workflow_version: str = Field(max_length=64)
    status: str = Field(max_length=50, description="Prefect state type: COMPLETED, FAILED, CRASHED, ...")
    execution_time: timedelta = Field(sa_type=sa.Interval(), sa_column_kwargs={"nullable": False})


class ExecutionLog(ExecutionLogBase, table=True):
    __tablename__ = "execution_logs"

    id: uuid.UUID = id_field()
    workflow_id: uuid.UUID | None = Field(
        default=None, foreign_key="workflows.id", ondelete="SET NULL", nullable=True, index=True
    )
    flow_run_id: uuid.UUID | None = Field(default=None, nullable=True, unique=True)
    expected_start_time: datetime | None = Field(default=None, sa_type=UTCDateTime(), nullable=True)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime(), nullable=True)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime(), nullable=True)
    metrics: dict[str, Any] | None = json_field(nullable=True)
    created_at: datetime = created_at_field()


class ExecutionLogPublic(ExecutionLogBase):
    id: uuid.UUID
    workflow_id: uuid.UUID | None
    flow_run_id: uuid.UUID | None
    expected_start_time: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    metrics: dict[str, Any] | None
    created_at: datetime
