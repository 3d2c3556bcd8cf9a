"""``http``: one HTTP request with httpx; the output is ``{status, headers, json, text}``.

The request is awaited on the event loop, so a task timeout cancels it. An unexpected status fails
the task (any 2xx unless ``expect_status`` says otherwise) with the start of the response body in
the message (at most :data:`MAX_BODY_IN_MESSAGE` characters, credentials in URLs masked), which is
usually what explains it. Every request and every redirect goes only where the egress policy
(:mod:`trinity.core.egress`, ``security.http``) allows.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
import httpx
from prefect.settings import PREFECT_API_URL

from flows.actions.base import ActionContext, ActionError, ActionTimeoutError
from specs.actions import HttpInputs
from trinity.core.config import load_settings
from trinity.core.egress import egress_policy, resolve_host
from trinity.core.redaction import redact_urls, shorten

MAX_BODY_IN_MESSAGE = 200
MAX_REDIRECTS = 10
# Headers that only the origin they were meant for may see.
_ORIGIN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class HttpStatusError(ActionError):
    """The response status is not one the task expects."""


class EgressDeniedError(ActionError):
    """The egress policy (``security.http``) refuses the address a request would go to."""


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


async def _checked_address(method: str, url: httpx.URL) -> str:
    """The address to connect to for ``url``, after the egress policy checked every one it resolves to."""
    if url.scheme not in ("http", "https"):
        raise ActionError(f"{method} {_shown(url)}: only http:// and https:// URLs are followed")
    port = url.port or (443 if url.scheme == "https" else 80)
    prefect_api_url = PREFECT_API_URL.value()

    def check() -> str:
        policy = egress_policy(load_settings(), prefect_api_url=prefect_api_url)
        addresses = resolve_host(url.host)
        if not addresses:
            raise ActionError(f"{method} {_shown(url)} failed: cannot resolve '{url.host}'")
        for address in addresses:
            rule = policy.refusal(address, port)
            if rule is not None:
                raise EgressDeniedError(
                    f"{method} {_shown(url)} refused: {address} port {port} is denied by the "
                    f"security.http rule {rule.describe()}"
                )
        return str(addresses[0])

    return await anyio.to_thread.run_sync(check)


def _shown(url: httpx.URL | str) -> str:
    return redact_urls(str(url))


def _redirect(request: httpx.Request, response: httpx.Response) -> tuple[str, httpx.URL, bool]:
    """Method, URL and whether the body is kept, for following a redirect as httpx would."""
    target = request.url.join(response.headers["location"])
    method = request.method
    if response.status_code == 303 and method != "HEAD":
        method = "GET"
    if response.status_code in (301, 302) and method == "POST":
        method = "GET"
    return method, target, response.status_code in (307, 308)


class HttpAction:
    """GET/POST/... ``url`` with ``headers``, ``params`` and a ``json`` or ``body`` payload.

    Redirects are followed here, at most :data:`MAX_REDIRECTS`, each to an address the egress
    policy (``security.http``) allows: every name is resolved and checked, and the connection goes
    to the checked address (the name stays in ``Host`` and TLS server name), so a name that
    resolves elsewhere the second time cannot get around it.
    """

    name = "http"
    inputs = HttpInputs

    async def run(self, inputs: HttpInputs, context: ActionContext) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        if inputs.json_ is not None:
            payload["json"] = inputs.json_
        elif inputs.body is not None:
            payload["content"] = inputs.body.encode()
        method: str = inputs.method
        url = httpx.URL(inputs.url, params=inputs.params or None)
        headers = dict(inputs.headers)
        try:
            async with httpx.AsyncClient(timeout=inputs.timeout_seconds) as client:
                for _ in range(MAX_REDIRECTS + 1):
                    request = client.build_request(method, url, headers=headers, **payload)
                    response = await self._send(client, request)
                    if not response.has_redirect_location:
                        break
                    method, target, keep_body = _redirect(request, response)
                    if not keep_body:
                        payload = {}
                    if target.host != url.host or target.scheme != url.scheme:
                        headers = {k: v for k, v in headers.items() if k.lower() not in _ORIGIN_HEADERS}
                    context.logger.info(
                        "%s %s -> %s %s", request.method, _shown(url), response.status_code, _shown(target)
                    )
                    url = target
                else:
                    raise ActionError(f"{inputs.method} {_shown(inputs.url)}: over {MAX_REDIRECTS} redirects")
        except httpx.TimeoutException as exc:
            limit = f"{inputs.timeout_seconds:g}s"
            raise ActionTimeoutError(
                f"{inputs.method} {_shown(url)} timed out after {limit} ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            reason = redact_urls(f"{type(exc).__name__}: {exc}")
            raise ActionError(f"{inputs.method} {_shown(url)} failed: {reason}") from None
        context.logger.info("%s %s -> %s", method, _shown(url), response.status_code)
        if not status_expected(response.status_code, inputs.expect_status):
            wanted = "2xx" if inputs.expect_status is None else str(inputs.expect_status)
            body = shorten(redact_urls(response.text[: MAX_BODY_IN_MESSAGE * 4]), MAX_BODY_IN_MESSAGE)
            raise HttpStatusError(
                f"{method} {_shown(url)} returned {response.status_code}, expected {wanted}"
                + (f": {body}" if body else "")
            )
        return response_output(response)

    async def _send(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        address = await _checked_address(request.method, request.url)
        # The Host header was set from the name when the request was built; TLS checks the name.
        request.url = request.url.copy_with(host=address)
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": request.headers["host"].split(":")[0]}
        return await client.send(request, follow_redirects=False)
