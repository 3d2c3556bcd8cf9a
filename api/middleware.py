"""ASGI middleware: request body size limit.

Pure ASGI (not ``BaseHTTPMiddleware``) so it can refuse a declared ``Content-Length`` before reading
anything, and stop a chunked upload as soon as it crosses the limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLargeError


def _too_large_body(limit: int) -> bytes:
    message = f"the request body exceeds the limit of {limit} bytes"
    return json.dumps({"error": {"code": "payload_too_large", "message": message, "details": []}}).encode()


class BodySizeLimitMiddleware:
    """Answer 413 (with the error body) to requests whose body is larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the app, so the exception handlers answer 413.
                    raise PayloadTooLargeError(
                        f"the request body exceeds the limit of {self.max_bytes} bytes"
                    )
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, send: Send) -> None:
        body = _too_large_body(self.max_bytes)
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    headers: Any = scope.get("headers") or []
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
