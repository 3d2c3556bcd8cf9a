"""Callables of the ``regional-report`` example (fan-out over regions)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any


def region_report(*, region: str, day: str) -> dict[str, Any]:
    """A deterministic stand-in for a per-region query: the same inputs give the same figures."""
    digest = hashlib.sha256(f"{region}/{day}".encode()).digest()
    return {"region": region, "day": day, "orders": digest[0] + 100, "revenue": digest[1] * 10 + 1000}


def combine(*, reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over all regions, plus the best region by revenue."""
    if not reports:
        return {"regions": 0, "orders": 0, "revenue": 0, "best_region": None}
    best = max(reports, key=lambda report: report["revenue"])
    return {
        "regions": len(reports),
        "orders": sum(report["orders"] for report in reports),
        "revenue": sum(report["revenue"] for report in reports),
        "best_region": best["region"],
    }
