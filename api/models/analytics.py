"""Analytics reports, written by the analytics flows and served read-only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.common import UTCDateTime, created_at_field, id_field, json_field
from api.models.pagination import Page


class AnalyticsWindow(SQLModel):
    workflow: str = Field(max_length=255, description="Workflow name.")
    task_id: str | None = Field(
        default=None, max_length=255, nullable=True, description="None: the whole run."
    )
    window_start: datetime = Field(sa_type=UTCDateTime(), sa_column_kwargs={"nullable": False})
    window_end: datetime = Field(sa_type=UTCDateTime(), sa_column_kwargs={"nullable": False})


class AnalyticsPerformance(AnalyticsWindow, table=True):
    __tablename__ = "analytics_performance"
    __table_args__ = (sa.Index("ix_analytics_performance_workflow_window", "workflow", "window_start"),)

    id: uuid.UUID = id_field()
    metrics: dict[str, Any] = json_field()
    created_at: datetime = created_at_field()


class AnalyticsInsight(AnalyticsWindow, table=True):
    __tablename__ = "analytics_insights"
    __table_args__ = (sa.Index("ix_analytics_insights_workflow_window", "workflow", "window_start"),)

    id: uuid.UUID = id_field()
    kind: str = Field(max_length=64, description="bottleneck, anomaly, retry_policy, ...")
    title: str = Field(max_length=500)
    severity: str = Field(max_length=20, description="info, warning or critical.")
    evidence: dict[str, Any] = json_field()
    yaml_diff: str | None = Field(default=None, sa_type=sa.Text(), nullable=True)
    created_at: datetime = created_at_field()


class PerformancePublic(AnalyticsWindow):
    id: uuid.UUID
    metrics: dict[str, Any]
    created_at: datetime


class InsightPublic(AnalyticsWindow):
    id: uuid.UUID
    kind: str
    title: str
    severity: str
    evidence: dict[str, Any]
    yaml_diff: str | None
    created_at: datetime


class PerformancePage(Page[PerformancePublic]):
    pass


class InsightsPage(Page[InsightPublic]):
    pass
