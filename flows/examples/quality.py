"""Callables of the ``conditional-refresh`` example."""

from __future__ import annotations

from typing import Any


def changed_rows(*, table: str, simulated_changes: int) -> int:
    """How many rows changed since the last load (simulated so the example runs anywhere)."""
    if simulated_changes < 0:
        raise ValueError(f"simulated_changes must be >= 0, got {simulated_changes}")
    return simulated_changes


def refresh(*, table: str, mode: str, rows: int) -> dict[str, Any]:
    """Pretend to refresh a table and say what was done."""
    return {"table": table, "mode": mode, "rows": rows}
