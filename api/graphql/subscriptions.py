# mypy: disallow-untyped-decorators=False
"""``runEvents``: a run's (or a workflow's) state changes and log lines, live, over WebSocket."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.errors import ApiError
from api.graphql.args import UNSET, given
from api.graphql.errors import api_error_extensions, bad_input
from api.graphql.permissions import IsViewer, caller
from api.graphql.types import RunEvent, parse_id
from api.services import events as event_service
from api.services import runs as run_service
from api.services import workflows as workflow_service
from deployments.events import StreamScope


async def _scope(
    info: Info[Any, Any], run_id: strawberry.ID | None, workflow_id: strawberry.ID | None
) -> tuple[StreamScope, str]:
    async with info.context.session() as session:
        if run_id is not None:
            run = await run_service.get_run(session=session, run_id=parse_id(run_id, "runId"))
            return StreamScope(flow_run_id=run.flow_run_id), f"of run {run.id}"
        assert workflow_id is not None
        workflow = await workflow_service.get_workflow(
            session=session, workflow_id=parse_id(workflow_id, "workflowId")
        )
        return StreamScope.for_workflow(workflow.name), f"of workflow {workflow.name}"


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=[IsViewer],
        description=(
            "State changes and log lines of one run (runId) or of every run of a workflow (workflowId), "
            "in order. A run's stream completes once the run is final and its last events are sent; "
            "resume after a reconnect with after: the id of the last event received."
        ),
    )
    async def run_events(
        self,
        info: Info[Any, Any],
        run_id: strawberry.ID | None = UNSET,
        workflow_id: strawberry.ID | None = UNSET,
        after: str | None = UNSET,
    ) -> AsyncGenerator[RunEvent, None]:
        run_id, workflow_id = given(run_id), given(workflow_id)
        if (run_id is None) == (workflow_id is None):
            raise bad_input("runId", "give exactly one of runId and workflowId")
        try:
            cursor = event_service.parse_cursor(given(after), loc="after")
            scope, description = await _scope(info, run_id, workflow_id)
            async with event_service.open_stream(
                prefect=info.context.app.prefect,
                registry=event_service.stream_registry(info.context.request.app),
                principal=caller(info),
                scope=scope,
                after=cursor,
                description=description,
            ) as subscription:
                async for event in subscription:
                    yield RunEvent.from_value(event)
        except ApiError as exc:
            raise GraphQLError(exc.message, extensions=api_error_extensions(exc)) from exc
