"""Subscribing to Prefect's live feeds: nothing is left open when subscribing is cut short."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from websockets.asyncio.server import ServerConnection, serve

from deployments import events
from deployments.events import StreamScope

pytestmark = pytest.mark.anyio


async def test_subscribing_cut_short_while_authenticating_closes_both_websockets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A websocket server that accepts Prefect's subscribers and never answers their auth message:
    # each subscriber is left inside its __aenter__ with the websocket open until _live gives up.
    opened: list[ServerConnection] = []

    async def never_authenticate(connection: ServerConnection) -> None:
        opened.append(connection)
        await connection.wait_closed()

    monkeypatch.setattr(events, "CONNECT_TIMEOUT_SECONDS", 1.0)
    async with serve(never_authenticate, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
            stream = events._Stream(None, StreamScope.for_workflow("leak-check"), None)
            with pytest.raises(events.EventStreamUnavailableError, match="timed out"):
                async with events._live(stream, datetime.now(UTC)):
                    pytest.fail("subscribed without an auth answer")
        assert len(opened) == 2  # the events and the logs feed both got as far as authenticating
        # Left open, a connection would stay registered with the loop and surface later as an
        # "unclosed transport" ResourceWarning in whichever test the garbage collector runs in.
        await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in opened)), timeout=10)
