"""Prometheus on the API: ``GET /metrics`` and the request latency it reports.

``/metrics`` answers without credentials unless ``metrics.require_auth`` is true; then it asks
for an API key or a bearer token like the other routes (any role). Latency is observed per route
*template* (``/api/v1/runs/{run_id}``), never the raw path, so ids do not multiply the series;
requests that match no route count as ``unmatched``.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import get_current_principal
from trinity.core import metrics

UNMATCHED = "unmatched"


def metrics_router(*, require_auth: bool) -> APIRouter:
    """The ``/metrics`` route, behind authentication when ``require_auth``."""
    dependencies = [Depends(get_current_principal)] if require_auth else []
    router = APIRouter(tags=["metrics"], dependencies=dependencies)

    @router.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(content=metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    return router


def route_template(scope: Scope) -> str:
    """The template of the route that served ``scope`` (after the app ran), else ``unmatched``.

    A route of an included router knows its path without the router's prefix; the prefix is the
    raw path's leading segments (routers here have literal prefixes such as ``/api/v1``).
    """
    route = scope.get("route")
    template = getattr(route, "path", None) or getattr(route, "path_format", None)
    if not template:
        return UNMATCHED
    raw = str(scope.get("path", "")).lstrip("/").split("/")
    tail = str(template).lstrip("/").split("/")
    extra = len(raw) - len(tail)
    if extra <= 0:
        return str(template)
    literal_tail_matches = all(
        part.startswith("{") or part == raw[extra + index] for index, part in enumerate(tail)
    )
    return "/" + "/".join(raw[:extra]) + str(template) if literal_tail_matches else str(template)


class RequestMetricsMiddleware:
    """Observe every HTTP request's latency by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            metrics.API_LATENCY.labels(scope.get("method", ""), route_template(scope), str(status)).observe(
                time.perf_counter() - started
            )
