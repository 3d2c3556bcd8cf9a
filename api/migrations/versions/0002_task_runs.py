"""Harvested run history: task_runs, harvested_runs and analytics_watermarks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trinity.core.types import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "task_runs",
        sa.Column("task_run_id", sa.Uuid(), primary_key=True),
        sa.Column("flow_run_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_name", sa.String(255), nullable=False),
        sa.Column("task_id", sa.String(255), nullable=False),
        sa.Column("task_run_name", sa.String(255), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=True),
        sa.Column("state_type", sa.String(50), nullable=False),
        sa.Column("state_name", sa.String(100), nullable=True),
        _timestamp("start_time"),
        _timestamp("end_time"),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cpu_seconds", sa.Float(), nullable=True),
        sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("inputs_hash", sa.String(64), nullable=True),
        sa.Column("output_hash", sa.String(64), nullable=True),
    )
    op.create_index("ix_task_runs_flow_run_id", "task_runs", ["flow_run_id"])
    op.create_index("ix_task_runs_workflow_task", "task_runs", ["workflow_name", "task_id"])

    op.create_table(
        "harvested_runs",
        sa.Column("flow_run_id", sa.Uuid(), primary_key=True),
        sa.Column("workflow_name", sa.String(255), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("state_name", sa.String(100), nullable=True),
        sa.Column("deployment_id", sa.Uuid(), nullable=True),
        sa.Column("parent_flow_run_id", sa.Uuid(), nullable=True),
        _timestamp("reference_time"),
        sa.Column("task_runs", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        _timestamp("harvested_at", nullable=False),
    )
    op.create_index("ix_harvested_runs_harvested_at", "harvested_runs", ["harvested_at"])

    op.create_table(
        "analytics_watermarks",
        sa.Column("name", sa.String(100), primary_key=True),
        _timestamp("value", nullable=False),
        _timestamp("updated_at", nullable=False),
    )


def downgrade() -> None:
    op.drop_table("analytics_watermarks")
    op.drop_table("harvested_runs")
    op.drop_table("task_runs")
