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
    """Count the child runs and the rows they loaded.

    Each result is a child run's outputs by task id (``{"ingest": {"rows": ...}}``), so rows are
    looked for in nested outputs too.
    """
    return {"partitions": len(results), "rows": sum(_rows(result) for result in results)}


def _rows(value: Any) -> int:
    if not isinstance(value, dict):
        return 0
    if "rows" in value:
        return int(value["rows"] or 0)
    return sum(_rows(item) for item in value.values())
