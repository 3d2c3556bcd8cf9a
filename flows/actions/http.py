"""``http``: one HTTP request with httpx; the output is ``{status, headers, json, text}``.

The request is awaited on the event loop, so a task timeout cancels it. An unexpected status fails
the task (any 2xx unless ``expect_status`` says otherwise) with the start of the response body in
the message, which is usually what explains it.
"""

from __future__ import annotations

from typing import Any

import httpx

from flows.actions.base import ActionContext, ActionError, ActionTimeoutError
from specs.actions import HttpInputs

MAX_BODY_IN_MESSAGE = 300


class HttpStatusError(ActionError):
    """The response status is not one the task expects."""


def status_expected(status: int, expect: int | list[int] | None) -> bool:
    """Whether ``status`` is acceptable: any 2xx by default, else one of ``expect``."""
    if expect is None:
        return 200 <= status < 300
    if isinstance(expect, int):
        return status == expect
    return status in expect


def response_output(response: httpx.Response) -> dict[str, Any]:
    """The task output for a response: ``json`` is the parsed body, or None when it is not JSON."""
    parsed: Any = None
    if "json" in response.headers.get("content-type", ""):
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "json": parsed,
        "text": response.text,
    }


class HttpAction:
    """GET/POST/... ``url`` with ``headers``, ``params`` and a ``json`` or ``body`` payload."""

    name = "http"
    inputs = HttpInputs

    async def run(self, inputs: HttpInputs, context: ActionContext) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        if inputs.json_ is not None:
            payload["json"] = inputs.json_
        elif inputs.body is not None:
            payload["content"] = inputs.body.encode()
        try:
            async with httpx.AsyncClient(timeout=inputs.timeout_seconds) as client:
                response = await client.request(
                    inputs.method, inputs.url, headers=inputs.headers, params=inputs.params, **payload
                )
        except httpx.TimeoutException as exc:
            limit = f"{inputs.timeout_seconds:g}s"
            raise ActionTimeoutError(
                f"{inputs.method} {inputs.url} timed out after {limit} ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise ActionError(f"{inputs.method} {inputs.url} failed: {type(exc).__name__}: {exc}") from None
        context.logger.info("%s %s -> %s", inputs.method, inputs.url, response.status_code)
        if not status_expected(response.status_code, inputs.expect_status):
            wanted = "2xx" if inputs.expect_status is None else str(inputs.expect_status)
            body = response.text[:MAX_BODY_IN_MESSAGE]
            raise HttpStatusError(
                f"{inputs.method} {inputs.url} returned {response.status_code}, expected {wanted}"
                + (f": {body}" if body else "")
            )
        return response_output(response)
