"""Plain Prefect flows for worker mechanics Trinity workflows do not have (importable by executors
as ``tests.flows.worker.sample_flows``): flow-level retries, and a sync flow to cancel."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from prefect import flow, task


@task
def tick(index: int) -> int:
    return index


@flow(name="crash-once", retries=1, retry_delay_seconds=0)
async def crash_once(marker: str) -> str:
    """First attempt: leave a marker and wait (long enough to be killed). Later attempts: finish."""
    path = Path(marker)
    if not path.exists():
        path.write_text("first attempt")
        await asyncio.sleep(120)
    return "finished"


@flow(name="sync-sleeper")
def sync_sleeper(seconds: float) -> int:
    """A sync flow that runs a task now and then while it waits."""
    deadline = time.monotonic() + seconds
    ticks = 0
    while time.monotonic() < deadline:
        tick(ticks)
        ticks += 1
        time.sleep(0.2)
    return ticks
