"""Callables of the ``nightly-ingest`` example (a parent running a child workflow per partition)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def list_partitions(*, day: str, count: int) -> list[str]:
    """The partitions to ingest for a day, e.g. ``2024-01-01/p0`` .. ``p{count-1}``."""
    return [f"{day}/p{index}" for index in range(count)]


def ingest(*, partition: str) -> dict[str, Any]:
    """Pretend to ingest one partition; the row count is derived from its name."""
    return {"partition": partition, "rows": 1000 + sum(map(ord, partition)) % 1000}


def summarize(*, results: Sequence[Any]) -> dict[str, Any]:
    """Count the child runs and the rows they loaded (results may be nested child outputs)."""
    rows = 0
    for result in results:
        if isinstance(result, dict):
            rows += int(result.get("rows", 0) or 0)
    return {"partitions": len(results), "rows": rows}
