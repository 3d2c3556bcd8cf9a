"""Fields of the API's table classes, each stored in a column of a core table.

The tables themselves (types, constraints, indexes) are :mod:`trinity.core.tables`; a table class
sets ``__table__`` to one of them and declares each column as a field made here, which adds only
what the Python side needs: the attribute's type and its default.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from trinity.core.types import utcnow


def column_field(table: sa.Table, name: str, **field: Any) -> Any:
    """A field stored in ``table``'s column ``name``; ``field`` adds the default (and description)."""
    return Field(sa_column=table.c[name], **field)


def id_field(table: sa.Table) -> Any:
    """The UUID primary key, generated in Python (the same on SQLite and PostgreSQL)."""
    return column_field(table, "id", default_factory=uuid.uuid4)


def created_at_field(table: sa.Table) -> Any:
    """``created_at``, set on insert."""
    return column_field(table, "created_at", default_factory=utcnow)


def updated_at_field(table: sa.Table) -> Any:
    """``updated_at``, set on insert (the column refreshes it on every update)."""
    return column_field(table, "updated_at", default_factory=utcnow)


def json_field(table: sa.Table, name: str) -> Any:
    """A JSON column holding an object; ``{}`` by default, None for a nullable column."""
    if table.c[name].nullable:
        return column_field(table, name, default=None)
    return column_field(table, name, default_factory=dict)
