"""The list envelope every collection answers with."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    """One page of a collection: ``items`` plus the ``total`` matching the filters."""

    items: list[T]
    total: int = Field(ge=0, description="Items matching the filters, across all pages.")
    limit: int = Field(ge=1, le=MAX_LIMIT)
    offset: int = Field(ge=0)
