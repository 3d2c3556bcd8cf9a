"""Callables used by ``python`` tasks in the tests (importable as ``tests.flows.helpers``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any


def add(a: float, b: float) -> float:
    return a + b


def flaky(counter_path: str, fail_times: int) -> str:
    """Fail ``fail_times`` times (counted in a file), then succeed."""
    path = Path(counter_path)
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    if count < fail_times:
        raise RuntimeError(f"flaky failure {count + 1}")
    return f"succeeded on attempt {count + 1}"


def boom(message: str = "boom") -> None:
    raise ValueError(message)


def burn_cpu(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i
    return total


async def async_echo(value: Any) -> Any:
    await asyncio.sleep(0)
    return value
