"""Calls to Prefect from a command: at the Prefect API the CLI resolves, with failures as one line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
from prefect.exceptions import PrefectHTTPStatusError

from trinity.commands.common import fail
from trinity.core.settings import ConfigError
from trinity.prefect_target import resolve_prefect_api_url, using_prefect_api

T = TypeVar("T")


def prefect_api_url() -> str | None:
    """The Prefect API the command talks to (None: Prefect's ephemeral default); see
    :func:`trinity.prefect_target.resolve_prefect_api_url`."""
    try:
        return resolve_prefect_api_url()
    except ConfigError as exc:
        fail(f"error: {exc}")


def call_prefect(url: str | None, work: Callable[[], Coroutine[Any, Any, T]], *, hint: str = "") -> T:
    """Run the coroutine ``work()`` with Prefect's client pointed at ``url``.

    An unreachable or refusing Prefect API ends the command with one line (``hint`` appended to
    the unreachable case); every other exception is the caller's.
    """
    try:
        with using_prefect_api(url):
            return asyncio.run(work())
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout) as exc:
        where = url or "(ephemeral)"
        fail(f"error: cannot reach the Prefect API at {where}: {exc or type(exc).__name__}{hint}")
    except PrefectHTTPStatusError as exc:
        fail(f"error: Prefect refused the request: {exc.response.status_code} {exc.response.text[:300]}")
