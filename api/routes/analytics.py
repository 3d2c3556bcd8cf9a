"""/analytics: performance windows, optimisation insights and failure families written by the
analytics flows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, TypedDict

from fastapi import APIRouter, Depends, Query

from api.deps import SessionDep, Viewer
from api.models.analytics import (
    FailureFamilyPublic,
    FailuresPage,
    InsightPublic,
    InsightsPage,
    PerformancePage,
    PerformancePublic,
)
from api.routes.common import PROTECTED, DateTimeQuery, Limit, NameFilter, Offset, TextFilter, as_utc
from api.services import analytics as service

router = APIRouter(prefix="/analytics", tags=["analytics"], responses=PROTECTED)

Since = Annotated[DateTimeQuery | None, Query(description="Windows ending at or after this time (RFC 3339).")]
Until = Annotated[DateTimeQuery | None, Query(description="Windows starting before this time (RFC 3339).")]


class WindowFilters(TypedDict):
    """The filters and page every analytics list takes, as the service functions name them."""

    workflow: str | None
    task_id: str | None
    since: datetime | None
    until: datetime | None
    limit: int
    offset: int


def window_filters(
    workflow: Annotated[NameFilter, Query(description="Only this workflow.")] = None,
    task_id: Annotated[TextFilter, Query(description="Only this task.")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> WindowFilters:
    """The common query parameters, with the times made UTC."""
    return WindowFilters(
        workflow=workflow,
        task_id=task_id,
        since=as_utc(since, name="since"),
        until=as_utc(until, name="until"),
        limit=limit,
        offset=offset,
    )


Window = Annotated[WindowFilters, Depends(window_filters)]


@router.get("/performance", response_model=PerformancePage, summary="Performance metrics per window")
async def performance(session: SessionDep, _: Viewer, window: Window) -> PerformancePage:
    rows, total = await service.list_performance(session=session, **window)
    items = [PerformancePublic.model_validate(row, from_attributes=True) for row in rows]
    return PerformancePage(items=items, total=total, limit=window["limit"], offset=window["offset"])


@router.get("/insights", response_model=InsightsPage, summary="Bottlenecks, anomalies and recommendations")
async def insights(
    session: SessionDep,
    _: Viewer,
    window: Window,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
    kind: TextFilter = None,
) -> InsightsPage:
    rows, total = await service.list_insights(session=session, severity=severity, kind=kind, **window)
    items = [InsightPublic.model_validate(row, from_attributes=True) for row in rows]
    return InsightsPage(items=items, total=total, limit=window["limit"], offset=window["offset"])


@router.get("/failures", response_model=FailuresPage, summary="Failure families per window")
async def failures(session: SessionDep, _: Viewer, window: Window) -> FailuresPage:
    """Families with failures in the window; ``workflow`` and ``task_id`` pick families by their members."""
    rows, total = await service.list_failures(session=session, **window)
    items = [FailureFamilyPublic.model_validate(row, from_attributes=True) for row in rows]
    return FailuresPage(items=items, total=total, limit=window["limit"], offset=window["offset"])
