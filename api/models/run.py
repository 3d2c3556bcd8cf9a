"""Runs started through the API, and the idempotency keys that guard ``execute``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from api.models.common import column_field, created_at_field, id_field, json_field
from api.models.pagination import Page
from trinity.core import tables

_RUNS = tables.runs
_KEYS = tables.idempotency_keys


class ExecuteRequest(BaseModel):
    """The body of ``POST /workflows/{id}/execute``."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = PydanticField(default_factory=dict, description="Workflow parameters.")


class RunBase(SQLModel):
    workflow_name: str = Field(max_length=255)
    workflow_version: str = Field(max_length=64)
    flow_run_id: uuid.UUID


class Run(SQLModel, table=True):
    __table__ = _RUNS

    id: uuid.UUID = id_field(_RUNS)
    workflow_id: uuid.UUID | None = column_field(_RUNS, "workflow_id", default=None)
    workflow_name: str = column_field(_RUNS, "workflow_name")
    workflow_version: str = column_field(_RUNS, "workflow_version")
    flow_run_id: uuid.UUID = column_field(_RUNS, "flow_run_id")
    parameters: dict[str, Any] = json_field(_RUNS, "parameters")
    state_type: str = column_field(_RUNS, "state_type")
    state_name: str = column_field(_RUNS, "state_name")
    created_at: datetime = created_at_field(_RUNS)


class IdempotencyKey(SQLModel, table=True):
    """One ``Idempotency-Key`` of ``execute``; the body hash tells a replay from a different request."""

    __table__ = _KEYS

    id: uuid.UUID = id_field(_KEYS)
    workflow_id: uuid.UUID = column_field(_KEYS, "workflow_id")
    key: str = column_field(_KEYS, "key")
    body_hash: str = column_field(_KEYS, "body_hash")
    run_id: uuid.UUID | None = column_field(_KEYS, "run_id", default=None)
    created_at: datetime = created_at_field(_KEYS)


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
