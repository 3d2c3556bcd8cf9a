"""/runs/{id}/events and /workflows/{id}/events: live run events as Server-Sent Events.

Each event is ``id: <cursor>`` and ``data: <JSON>`` (``type`` ``flow_run.state``,
``task_run.state`` or ``log``, ``state``, ``task``, ``timestamp``, ...). A client that reconnects
with ``Last-Event-ID`` gets exactly the events after that one. A run's stream ends with
``event: end`` once the run is final and its last events are sent; resuming a stream that has
nothing more to send answers 204, which tells an ``EventSource`` to stop reconnecting. A dropped
stream ends with ``event: error`` naming the reason (a client that reads too slowly, Prefect
unreachable).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Request, Security
from fastapi.responses import Response, StreamingResponse

from api.deps import StateDep, api_key_scheme, oauth2_scheme
from api.errors import ApiError
from api.routes.common import PROTECTED, errors
from api.security import Principal
from api.services import events as service
from api.services import runs as run_service
from api.services import workflows as workflow_service
from api.services.audit import AuditTrail
from deployments.event_order import CURSOR_PATTERN, Cursor, RunEvent
from deployments.events import StreamScope

router = APIRouter(tags=["events"], responses=PROTECTED)

HEARTBEAT_SECONDS = 15.0
RESUME_PEEK_SECONDS = 2.0

# A plain string (absent: empty), so the published schema has no null a client could send.
LastEventId = Annotated[
    str,
    Header(
        alias="Last-Event-ID",
        max_length=200,
        pattern=CURSOR_PATTERN,
        description="Resume after this event (its `id:`).",
    ),
]

_STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `id:` (the cursor) and `data:` (JSON) per event.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    204: {"description": "Resumed after the last event of a finished run: nothing more to send."},
}


async def stream_principal(
    request: Request,
    state: StateDep,
    api_key: Annotated[str | None, Security(api_key_scheme)] = None,
    authorization: Annotated[str | None, Security(oauth2_scheme)] = None,
) -> Principal:
    """The caller, authenticated as REST does (any role may watch), without holding a session."""
    trail = AuditTrail.of(request)
    return await service.authenticate(state, trail, api_key=api_key, authorization=authorization)


StreamPrincipal = Annotated[Principal, Depends(stream_principal)]


def frame(event: RunEvent) -> str:
    """One SSE message: the cursor as ``id:``, the event as one ``data:`` line of JSON."""
    return f"id: {event.cursor}\ndata: {json.dumps(event.to_json(), separators=(',', ':'))}\n\n"


def _closing(kind: str, body: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n"


async def _sse(
    request: Request,
    state: Any,
    principal: Principal,
    scope: StreamScope,
    cursor: Cursor | None,
    description: str,
) -> Response:
    stack = contextlib.AsyncExitStack()
    subscription = await stack.enter_async_context(
        service.open_stream(
            prefect=state.prefect,
            registry=service.stream_registry(request.app),
            principal=principal,
            scope=scope,
            after=cursor,
            description=description,
        )
    )
    first: RunEvent | None = None
    ended = False
    if cursor is not None:
        # A resumed stream of a finished run may have nothing left: say so with 204.
        try:
            first = await asyncio.wait_for(anext(subscription), RESUME_PEEK_SECONDS)
        except TimeoutError:
            pass
        except StopAsyncIteration:
            ended = True
        except BaseException:
            await stack.aclose()
            raise
        if ended and first is None:
            await stack.aclose()
            return Response(status_code=204)

    async def body() -> AsyncIterator[str]:
        try:
            if first is not None:
                yield frame(first)
            while not ended:
                try:
                    event = await asyncio.wait_for(anext(subscription), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                except StopAsyncIteration:
                    yield _closing("end", {"reason": "the run is final and its last events were sent"})
                    return
                except ApiError as exc:
                    yield _closing("error", {"code": exc.code, "message": exc.message})
                    return
                yield frame(event)
            yield _closing("end", {"reason": "the run is final and its last events were sent"})
        finally:
            with anyio.CancelScope(shield=True):
                await stack.aclose()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    summary="Live events of a run (Server-Sent Events), by run id or Prefect flow-run id",
    responses={**_STREAM_RESPONSE, **errors(404)},
)
async def run_events(
    run_id: uuid.UUID,
    request: Request,
    state: StateDep,
    principal: StreamPrincipal,
    last_event_id: LastEventId = "",
) -> Response:
    cursor = service.parse_cursor(last_event_id, loc="header.Last-Event-ID")
    async with state.db.session(read_only=True) as session:
        run = await run_service.get_run(session=session, run_id=run_id)
    scope = StreamScope(flow_run_id=run.flow_run_id)
    return await _sse(request, state, principal, scope, cursor, f"of run {run.id}")


@router.get(
    "/workflows/{workflow_id}/events",
    response_class=StreamingResponse,
    summary="Live events of every run of a workflow (Server-Sent Events)",
    responses={200: _STREAM_RESPONSE[200], **errors(404)},
)
async def workflow_events(
    workflow_id: uuid.UUID,
    request: Request,
    state: StateDep,
    principal: StreamPrincipal,
    last_event_id: LastEventId = "",
) -> Response:
    cursor = service.parse_cursor(last_event_id, loc="header.Last-Event-ID")
    async with state.db.session(read_only=True) as session:
        workflow = await workflow_service.get_workflow(session=session, workflow_id=workflow_id)
    scope = StreamScope.for_workflow(workflow.name)
    return await _sse(request, state, principal, scope, cursor, f"of workflow {workflow.name}")
