# mypy: disallow-untyped-decorators=False
"""Query fields: specifications, workflows (with their runs and findings), runs, analytics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from strawberry.types import Info

from api.graphql.args import UNSET, given
from api.graphql.errors import bad_input
from api.graphql.pagination import Connection, connection, window
from api.graphql.permissions import IsViewer
from api.graphql.types import (
    Insight,
    Performance,
    Run,
    Specification,
    Workflow,
    parse_id,
)
from api.models.workflow import WorkflowStatus
from api.routes.common import as_utc
from api.services import analytics as analytics_service
from api.services import runs as run_service
from api.services import specs as spec_service
from api.services import workflows as workflow_service

SEVERITIES = ("info", "warning", "critical")
MAX_FILTER_CHARS = 255

R = TypeVar("R")
N = TypeVar("N")


def _text(value: str | None, argument: str) -> str | None:
    value = given(value)
    if value is not None and not 1 <= len(value) <= MAX_FILTER_CHARS:
        raise bad_input(argument, f"1 to {MAX_FILTER_CHARS} characters")
    return value


def _utc(value: datetime | None, argument: str) -> datetime | None:
    return as_utc(given(value), name=argument)


async def _page(
    info: Info[Any, Any],
    page: tuple[int, int],
    fetch: Callable[..., Awaitable[tuple[list[R], int]]],
    node: Callable[[R], N],
    **filters: Any,
) -> Connection[N]:
    """The ``(limit, offset)`` page of a service's list, filtered, as a connection of nodes."""
    limit, offset = page
    async with info.context.session() as session:
        rows, total = await fetch(session=session, limit=limit, offset=offset, **filters)
    return connection([node(row) for row in rows], total=total, offset=offset)


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsViewer], description="Specifications, newest first.")
    async def specifications(
        self,
        info: Info[Any, Any],
        first: int | None = UNSET,
        after: str | None = UNSET,
        name: str | None = UNSET,
        version: str | None = UNSET,
    ) -> Connection[Specification]:
        page = window(first, after)
        return await _page(
            info,
            page,
            spec_service.list_specifications,
            Specification.from_row,
            name=_text(name, "name"),
            version=_text(version, "version"),
        )

    @strawberry.field(permission_classes=[IsViewer])
    async def specification(self, info: Info[Any, Any], id: strawberry.ID) -> Specification:
        async with info.context.session() as session:
            row = await spec_service.get_specification(session=session, spec_id=parse_id(id))
        return Specification.from_row(row)

    @strawberry.field(permission_classes=[IsViewer], description="Workflows, newest first.")
    async def workflows(
        self,
        info: Info[Any, Any],
        first: int | None = UNSET,
        after: str | None = UNSET,
        name: str | None = UNSET,
        status: WorkflowStatus | None = UNSET,
    ) -> Connection[Workflow]:
        page = window(first, after)
        return await _page(
            info,
            page,
            workflow_service.list_workflows,
            lambda row: Workflow.from_row(row[0]),
            name=_text(name, "name"),
            status=given(status),
            spec_id=None,
        )

    @strawberry.field(permission_classes=[IsViewer])
    async def workflow(self, info: Info[Any, Any], id: strawberry.ID) -> Workflow:
        async with info.context.session() as session:
            row = await workflow_service.get_workflow(session=session, workflow_id=parse_id(id))
        return Workflow.from_row(row)

    @strawberry.field(permission_classes=[IsViewer], description="A run by its id or Prefect flow-run id.")
    async def run(self, info: Info[Any, Any], id: strawberry.ID) -> Run:
        async with info.context.session() as session:
            row = await run_service.get_run(session=session, run_id=parse_id(id))
        return Run.from_row(row)

    @strawberry.field(permission_classes=[IsViewer], description="Performance windows, newest first.")
    async def performance(
        self,
        info: Info[Any, Any],
        first: int | None = UNSET,
        after: str | None = UNSET,
        workflow: str | None = UNSET,
        task_id: str | None = UNSET,
        since: datetime | None = UNSET,
        until: datetime | None = UNSET,
    ) -> Connection[Performance]:
        page = window(first, after)
        return await _page(
            info,
            page,
            analytics_service.list_performance,
            Performance.from_row,
            workflow=_text(workflow, "workflow"),
            task_id=_text(task_id, "taskId"),
            since=_utc(since, "since"),
            until=_utc(until, "until"),
        )

    @strawberry.field(
        permission_classes=[IsViewer], description="Bottlenecks, anomalies and recommendations, newest first."
    )
    async def insights(
        self,
        info: Info[Any, Any],
        first: int | None = UNSET,
        after: str | None = UNSET,
        workflow: str | None = UNSET,
        task_id: str | None = UNSET,
        severity: str | None = UNSET,
        kind: str | None = UNSET,
        since: datetime | None = UNSET,
        until: datetime | None = UNSET,
    ) -> Connection[Insight]:
        page = window(first, after)
        severity = given(severity)
        if severity is not None and severity not in SEVERITIES:
            raise bad_input("severity", f"one of {', '.join(SEVERITIES)}")
        return await _page(
            info,
            page,
            analytics_service.list_insights,
            Insight.from_row,
            workflow=_text(workflow, "workflow"),
            task_id=_text(task_id, "taskId"),
            severity=severity,
            kind=_text(kind, "kind"),
            since=_utc(since, "since"),
            until=_utc(until, "until"),
        )
