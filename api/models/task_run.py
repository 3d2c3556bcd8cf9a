"""Run history harvested from Prefect by the analytics flows (flows/analytics), read by the reports.

* ``task_runs``: one row per Prefect task run of a Trinity workflow run, keyed by the Prefect task
  run id, with the per-task figures the executor recorded (CPU, memory, hashes, error) merged in.
* ``harvested_runs``: what the harvest learnt about each flow run beyond ``execution_logs``
  (how it was triggered, its deployment and parent) and when it last changed; the performance
  report recomputes only the windows whose runs changed since its last pass.
* ``analytics_watermarks``: named high-water marks of the incremental jobs.

The flows write these with SQLAlchemy Core on reflected tables (``flows`` may not import ``api``),
so this module and migration ``0002`` are the single definition of their shape.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.common import UTCDateTime


class TaskRun(SQLModel, table=True):
    __tablename__ = "task_runs"
    __table_args__ = (
        sa.Index("ix_task_runs_flow_run_id", "flow_run_id"),
        sa.Index("ix_task_runs_workflow_task", "workflow_name", "task_id"),
    )

    task_run_id: uuid.UUID = Field(primary_key=True, description="Prefect's task run id.")
    flow_run_id: uuid.UUID = Field(description="Prefect's flow run id (execution_logs.flow_run_id).")
    workflow_name: str = Field(max_length=255)
    task_id: str = Field(max_length=255, description="The spec task id ('load' for 'load[3]').")
    task_run_name: str = Field(max_length=255, description="'id', or 'id[3]' for fan-out item 3.")
    map_index: int | None = Field(default=None, nullable=True, description="The fan-out item index.")
    state_type: str = Field(max_length=50, description="COMPLETED, FAILED, CRASHED, PENDING, ...")
    state_name: str | None = Field(default=None, max_length=100, nullable=True)
    start_time: datetime | None = Field(default=None, sa_type=UTCDateTime(), nullable=True)
    end_time: datetime | None = Field(default=None, sa_type=UTCDateTime(), nullable=True)
    duration_seconds: float | None = Field(default=None, nullable=True)
    attempts: int = Field(default=0, description="How many times it ran (Prefect's run_count).")
    cpu_seconds: float | None = Field(default=None, nullable=True)
    peak_memory_bytes: int | None = Field(default=None, sa_type=sa.BigInteger(), nullable=True)
    error_message: str | None = Field(default=None, sa_type=sa.Text(), nullable=True)
    inputs_hash: str | None = Field(default=None, max_length=64, nullable=True)
    output_hash: str | None = Field(default=None, max_length=64, nullable=True)


class HarvestedRun(SQLModel, table=True):
    __tablename__ = "harvested_runs"
    __table_args__ = (sa.Index("ix_harvested_runs_harvested_at", "harvested_at"),)

    flow_run_id: uuid.UUID = Field(primary_key=True)
    workflow_name: str = Field(max_length=255)
    trigger: str = Field(max_length=32, description="schedule, manual, automation, subflow or local.")
    state_name: str | None = Field(default=None, max_length=100, nullable=True)
    deployment_id: uuid.UUID | None = Field(default=None, nullable=True)
    parent_flow_run_id: uuid.UUID | None = Field(default=None, nullable=True)
    reference_time: datetime | None = Field(
        default=None,
        sa_type=UTCDateTime(),
        nullable=True,
        description="Expected start, else start, else end: where the run falls in report windows.",
    )
    task_runs: int = Field(default=0)
    fingerprint: str = Field(max_length=64, description="Hash of what was harvested: unchanged re-reads.")
    harvested_at: datetime = Field(sa_type=UTCDateTime(), sa_column_kwargs={"nullable": False})


class AnalyticsWatermark(SQLModel, table=True):
    __tablename__ = "analytics_watermarks"

    name: str = Field(primary_key=True, max_length=100)
    value: datetime = Field(sa_type=UTCDateTime(), sa_column_kwargs={"nullable": False})
    updated_at: datetime = Field(sa_type=UTCDateTime(), sa_column_kwargs={"nullable": False})
