"""Analytics reports, written by the analytics flows and served read-only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from api.models.common import column_field, created_at_field, id_field, json_field
from api.models.pagination import Page
from trinity.core import tables

_PERFORMANCE = tables.analytics_performance
_INSIGHTS = tables.analytics_insights
_FAMILIES = tables.analytics_failure_families


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


class AnalyticsFailureFamily(SQLModel, table=True):
    __table__ = _FAMILIES

    id: uuid.UUID = id_field(_FAMILIES)
    family_id: str = column_field(_FAMILIES, "family_id")
    window_start: datetime = column_field(_FAMILIES, "window_start")
    window_end: datetime = column_field(_FAMILIES, "window_end")
    signature: str = column_field(_FAMILIES, "signature")
    exception_type: str | None = column_field(_FAMILIES, "exception_type", default=None)
    count: int = column_field(_FAMILIES, "count")
    flow_runs: int = column_field(_FAMILIES, "flow_runs")
    example: str = column_field(_FAMILIES, "example")
    workflows: list[str] = column_field(_FAMILIES, "workflows", default_factory=list)
    tasks: list[str] = column_field(_FAMILIES, "tasks", default_factory=list)
    first_seen: datetime | None = column_field(_FAMILIES, "first_seen", default=None)
    last_seen: datetime | None = column_field(_FAMILIES, "last_seen", default=None)
    flow_run_ids: list[str] = column_field(_FAMILIES, "flow_run_ids", default_factory=list)
    trend: str = column_field(_FAMILIES, "trend")
    is_new: bool = column_field(_FAMILIES, "is_new", default=False)
    details: dict[str, Any] = json_field(_FAMILIES, "details")
    created_at: datetime = created_at_field(_FAMILIES)


class FailureFamilyPublic(BaseModel):
    """One failure family of one report window (the fields of ``patterns/failure_families.json``)."""

    signature: str = PydanticField(description="The family's most common normalised error message.")
    count: int = PydanticField(description="Failed task runs in the window.")
    example: str = PydanticField(description="The most recent error message, as it was.")
    workflows: list[str]
    tasks: list[str] = PydanticField(description="'workflow/task' of every task that failed this way.")
    first_seen: datetime | None = PydanticField(description="The family's first failure ever seen.")
    last_seen: datetime | None
    flow_run_ids: list[str] = PydanticField(
        description="The flow runs in it, most recent first (at most 500)."
    )
    id: uuid.UUID
    family_id: str = PydanticField(description="Stable from window to window.")
    window_start: datetime
    window_end: datetime
    exception_type: str | None
    flow_runs: int
    trend: str = PydanticField(
        description="rising, falling, steady or new (first half of the window vs second)."
    )
    new: bool = PydanticField(
        validation_alias=AliasChoices("is_new", "new"), description="First seen by this report."
    )
    details: dict[str, Any] = PydanticField(
        description="Centroid terms, variants, the model revision behind it."
    )
    created_at: datetime


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


class FailuresPage(Page[FailureFamilyPublic]):
    pass
