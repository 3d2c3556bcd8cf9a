"""Analytics reports: filtered, paginated reads of what the analytics flows wrote."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.models.analytics import AnalyticsFailureFamily, AnalyticsInsight, AnalyticsPerformance
from api.services.paging import fetch_model_page

Row = TypeVar("Row", AnalyticsPerformance, AnalyticsInsight, AnalyticsFailureFamily)


def _window_filters(
    model: Any, *, workflow: str | None, task_id: str | None, since: datetime | None, until: datetime | None
) -> list[sa.ColumnElement[bool]]:
    # A window matches when it overlaps [since, until).
    conditions: list[sa.ColumnElement[bool]] = []
    if workflow is not None:
        conditions.append(col(model.workflow) == workflow)
    if task_id is not None:
        conditions.append(col(model.task_id) == task_id)
    if since is not None:
        conditions.append(col(model.window_end) >= since)
    if until is not None:
        conditions.append(col(model.window_start) < until)
    return conditions


async def _page(
    session: AsyncSession,
    model: type[Row],
    conditions: list[sa.ColumnElement[bool]],
    limit: int,
    offset: int,
    order: tuple[sa.ColumnElement[Any], ...] | None = None,
) -> tuple[list[Row], int]:
    """One page, newest window first; then ``order`` (default: newest row first)."""
    then = order if order is not None else (col(model.created_at).desc(),)
    statement = (
        sa.select(model).where(*conditions).order_by(col(model.window_start).desc(), *then, col(model.id))
    )
    return await fetch_model_page(session, statement, limit=limit, offset=offset)


async def list_performance(
    *,
    session: AsyncSession,
    workflow: str | None,
    task_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AnalyticsPerformance], int]:
    """Performance windows, newest window first."""
    conditions = _window_filters(
        AnalyticsPerformance, workflow=workflow, task_id=task_id, since=since, until=until
    )
    return await _page(session, AnalyticsPerformance, conditions, limit, offset)


async def list_insights(
    *,
    session: AsyncSession,
    workflow: str | None,
    task_id: str | None,
    severity: str | None,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AnalyticsInsight], int]:
    """Insights (bottlenecks, anomalies, recommendations), newest window first."""
    conditions = _window_filters(
        AnalyticsInsight, workflow=workflow, task_id=task_id, since=since, until=until
    )
    if severity is not None:
        conditions.append(col(AnalyticsInsight.severity) == severity)
    if kind is not None:
        conditions.append(col(AnalyticsInsight.kind) == kind)
    return await _page(session, AnalyticsInsight, conditions, limit, offset)


def _json_text(column: Any) -> sa.ColumnElement[str]:
    """A JSON column as its text (``["a", "b"]``), on SQLite and PostgreSQL alike."""
    return sa.cast(column, sa.Text)


async def list_failures(
    *,
    session: AsyncSession,
    workflow: str | None,
    task_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AnalyticsFailureFamily], int]:
    """Failure families, newest window first, largest family first within a window."""
    model = AnalyticsFailureFamily
    conditions = _window_filters(model, workflow=None, task_id=None, since=since, until=until)
    # Names never hold quotes, so '"name"' matches exactly one element of the JSON list.
    if workflow is not None:
        conditions.append(_json_text(col(model.workflows)).contains(f'"{workflow}"', autoescape=True))
    if task_id is not None:
        pattern = f'"{workflow}/{task_id}"' if workflow is not None else f'/{task_id}"'
        conditions.append(_json_text(col(model.tasks)).contains(pattern, autoescape=True))
    return await _page(session, model, conditions, limit, offset, order=(col(model.count).desc(),))
