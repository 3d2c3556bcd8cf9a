"""A proposed change before it becomes a :class:`~analytics.report_model.Recommendation`, plus the
number formatting every sentence of a report shares."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from analytics.yaml_diff import Edit

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


@dataclass
class Proposal:
    """What a rule found and the document edits it proposes."""

    workflow: str
    task_id: str | None
    kind: str
    title: str
    evidence: dict[str, Any]
    expected_effect: str
    severity: str
    edits: list[Edit] = field(default_factory=list)


def secs(value: float | None) -> str:
    """Seconds for prose: '0.42 s', '12.3 s', '1,234 s'."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if abs(value) < 1:
        return f"{value:.2f} s"
    if abs(value) < 100:
        return f"{value:.1f} s"
    return f"{value:,.0f} s"


def pct(value: float | None) -> str:
    """A fraction as a percentage for prose: 0.0625 -> '6.2%'."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value * 100:.1f}%"


def num(value: float | None, digits: int = 3) -> float | None:
    """Round a number for evidence dicts; None/NaN -> None."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)
