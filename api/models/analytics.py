"""Analytics reports, written by the analytics flows and served read-only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from api.models.common import column_field, created_at_field, id_field, json_field
from api.models.pagination import Page
from trinity.core import tables

_PERFORMANCE = tables.analytics_performance
_INSIGHTS = tables.analytics_insights


class AnalyticsWindow(SQLModel):
    workflow: str = Field(max_length=255, description="Workflow name.")
    task_id: str | None = Field(default=None, max_length=255, description="None: the whole run.")
    window_start: datetime
    window_end: datetime


class AnalyticsPerformance(SQLModel, table=True):
    __table__ = _PERFORMANCE

    id: uuid.UUID = id_field(_PERFORMANCE)
    workflow: str = column_field(_PERFORMANCE, "workflow")
    task_id: str | None = column_field(_PERFORMANCE, "task_id", default=None)
    window_start: datetime = column_field(_PERFORMANCE, "window_start")
    window_end: datetime = column_field(_PERFORMANCE, "window_end")
    metrics: dict[str, Any] = json_field(_PERFORMANCE, "metrics")
    created_at: datetime = created_at_field(_PERFORMANCE)


class AnalyticsInsight(SQLModel, table=True):
    __table__ = _INSIGHTS

    id: uuid.UUID = id_field(_INSIGHTS)
    workflow: str = column_field(_INSIGHTS, "workflow")
    task_id: str | None = column_field(_INSIGHTS, "task_id", default=None)
    window_start: datetime = column_field(_INSIGHTS, "window_start")
    window_end: datetime = column_field(_INSIGHTS, "window_end")
    kind: str = column_field(_INSIGHTS, "kind", description="bottleneck, anomaly, retry_policy, ...")
    title: str = column_field(_INSIGHTS, "title")
    severity: str = column_field(_INSIGHTS, "severity", description="info, warning or critical.")
    evidence: dict[str, Any] = json_field(_INSIGHTS, "evidence")
    yaml_diff: str | None = column_field(_INSIGHTS, "yaml_diff", default=None)
    created_at: datetime = created_at_field(_INSIGHTS)


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
