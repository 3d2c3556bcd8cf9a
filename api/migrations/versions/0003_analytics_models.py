"""What the analytics learn: analytics_models, and the failure families of each report window.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trinity.core.types import JSONVariant, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"

NOW = sa.text("CURRENT_TIMESTAMP")


def _timestamp(name: str, *, nullable: bool = True, default: bool = False) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(), nullable=nullable, server_default=NOW if default else None)


def upgrade() -> None:
    op.create_table(
        "analytics_failure_families",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("family_id", sa.String(64), nullable=False),
        _timestamp("window_start", nullable=False),
        _timestamp("window_end", nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("exception_type", sa.String(255), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("flow_runs", sa.Integer(), nullable=False),
        sa.Column("example", sa.Text(), nullable=False),
        sa.Column("workflows", JSONVariant, nullable=False),
        sa.Column("tasks", JSONVariant, nullable=False),
        _timestamp("first_seen"),
        _timestamp("last_seen"),
        sa.Column("flow_run_ids", JSONVariant, nullable=False),
        sa.Column("trend", sa.String(16), nullable=False),
        sa.Column("is_new", sa.Boolean(), nullable=False),
        sa.Column("details", JSONVariant, nullable=False),
        _timestamp("created_at", nullable=False, default=True),
    )
    op.create_index(
        "ix_analytics_failure_families_window", "analytics_failure_families", ["window_start", "window_end"]
    )

    op.create_table(
        "analytics_models",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("workflow", sa.String(255), nullable=True),
        sa.Column("task_id", sa.String(255), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        _timestamp("window_start", nullable=False),
        _timestamp("window_end", nullable=False),
        sa.Column("state", JSONVariant, nullable=False),
        _timestamp("created_at", nullable=False, default=True),
        _timestamp("updated_at", nullable=False, default=True),
        sa.UniqueConstraint("kind", "key", name="uq_analytics_models_kind_key"),
    )


def downgrade() -> None:
    op.drop_table("analytics_models")
    op.drop_table("analytics_failure_families")
