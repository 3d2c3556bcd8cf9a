"""Relay-style connections over the services' offset pages.

A cursor is an opaque token for a position in a list (``edges[].cursor``, ``pageInfo.endCursor``);
``after: <cursor>`` continues after it. ``first`` is the page size (default 20, at most 100).
"""

from __future__ import annotations

import base64
import binascii
from typing import Generic, TypeVar

import strawberry

from api.graphql.args import given
from api.graphql.errors import bad_input
from api.graphql.limits import page_window

T = TypeVar("T")
_PREFIX = "offset:"


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    node: T
    cursor: str


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Items across all pages.")


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{offset}".encode()).decode()


def decode_cursor(after: str | None) -> int:
    """The offset just past ``after`` (0 without one); BAD_USER_INPUT for a foreign cursor."""
    if after is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(after.encode("ascii")).decode()
        if not text.startswith(_PREFIX):
            raise ValueError(text)
        offset = int(text.removeprefix(_PREFIX))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise bad_input("after", "not a cursor of this list") from exc
    if not 0 <= offset < 2**31:
        raise bad_input("after", "not a cursor of this list")
    return offset + 1


def window(first: int | None, after: str | None) -> tuple[int, int]:
    """(limit, offset) for ``first`` items after the ``after`` cursor."""
    return page_window(given(first), decode_cursor(given(after)))


def connection(items: list[T], *, total: int, offset: int) -> Connection[T]:
    """The page ``items`` (starting at ``offset``) of a list of ``total`` items."""
    edges = [Edge(node=item, cursor=encode_cursor(offset + i)) for i, item in enumerate(items)]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=offset + len(items) < total,
            has_previous_page=offset > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=total,
    )
