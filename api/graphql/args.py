"""Optional arguments: declared without a default in the schema (``first: Int``), read as None."""

from __future__ import annotations

from typing import Any, TypeVar

from strawberry import UNSET

T = TypeVar("T")


def given(value: T | Any) -> T | None:
    """The argument's value, or None when the client left it out."""
    return None if value is UNSET else value


__all__ = ["UNSET", "given"]
