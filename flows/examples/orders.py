"""Callables of the ``orders-etl`` example."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def transform(*, orders: Sequence[Mapping[str, Any]], day: str, min_total: float = 0.0) -> dict[str, Any]:
    """Summarise one day of orders: how many there were and the revenue, ignoring small ones."""
    kept = [order for order in orders if float(order.get("total", 0)) >= min_total]
    revenue = round(sum(float(order["total"]) for order in kept), 2)
    customers = len({order.get("customer") for order in kept})
    return {"day": day, "orders": len(kept), "customers": customers, "revenue": revenue}
