"""Waking a watcher (``trinity run --watch``) at each change of a flow run, from the live stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from uuid import UUID

from deployments.events import StreamScope, run_events


class LiveChanges:
    """Wakes a watcher at each state change or log line of a flow run, from the live stream.

    When the stream cannot be had (an older server, no websockets through a proxy), ``wait``
    sleeps the poll interval instead and ``on_fallback`` is told once why.
    """

    LIVE_WAIT_SECONDS = 5.0

    def __init__(self, flow_run_id: UUID, on_fallback: Callable[[str], None]) -> None:
        self.flow_run_id = flow_run_id
        self.on_fallback = on_fallback
        self.live = True
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> LiveChanges:
        self._task = asyncio.create_task(self._follow())
        return self

    async def _follow(self) -> None:
        try:
            async for _event in run_events(StreamScope(flow_run_id=self.flow_run_id)):
                self._changed.set()
        except Exception as exc:  # any failure of the stream: fall back to polling, said once
            self.live = False
            self.on_fallback(f"live events unavailable ({exc}); polling the run instead")
        self._changed.set()

    async def wait(self, poll_seconds: float) -> None:
        """Until the next change (live), or ``poll_seconds`` (polling)."""
        if not self.live:
            await asyncio.sleep(poll_seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), self.LIVE_WAIT_SECONDS)
        self._changed.clear()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
