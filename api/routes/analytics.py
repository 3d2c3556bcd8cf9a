"""/analytics: performance windows, optimisation insights and failure families written by the
analytics flows."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

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


@router.get("/performance", response_model=PerformancePage, summary="Performance metrics per window")
async def performance(
    session: SessionDep,
    _: Viewer,
    workflow: NameFilter = None,
    task_id: TextFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PerformancePage:
    rows, total = await service.list_performance(
        session=session,
        workflow=workflow,
        task_id=task_id,
        since=as_utc(since, name="since"),
        until=as_utc(until, name="until"),
        limit=limit,
        offset=offset,
    )
    items = [PerformancePublic.model_validate(row, from_attributes=True) for row in rows]
    return PerformancePage(items=items, total=total, limit=limit, offset=offset)


@router.get("/insights", response_model=InsightsPage, summary="Bottlenecks, anomalies and recommendations")
async def insights(
    session: SessionDep,
    _: Viewer,
    workflow: NameFilter = None,
    task_id: TextFilter = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
    kind: TextFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> InsightsPage:
    rows, total = await service.list_insights(
        session=session,
        workflow=workflow,
        task_id=task_id,
        severity=severity,
        kind=kind,
        since=as_utc(since, name="since"),
        until=as_utc(until, name="until"),
        limit=limit,
        offset=offset,
    )
    items = [InsightPublic.model_validate(row, from_attributes=True) for row in rows]
    return InsightsPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/failures", response_model=FailuresPage, summary="Failure families per window")
async def failures(
    session: SessionDep,
    _: Viewer,
    workflow: Annotated[NameFilter, Query(description="Families with failures in this workflow.")] = None,
    task_id: Annotated[TextFilter, Query(description="Families with failures of this task.")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> FailuresPage:
    rows, total = await service.list_failures(
        session=session,
        workflow=workflow,
        task_id=task_id,
        since=as_utc(since, name="since"),
        until=as_utc(until, name="until"),
        limit=limit,
        offset=offset,
    )
    items = [FailureFamilyPublic.model_validate(row, from_attributes=True) for row in rows]
    return FailuresPage(items=items, total=total, limit=limit, offset=offset)
