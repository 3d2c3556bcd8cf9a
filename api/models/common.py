"""Column types and field helpers shared by every table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlmodel import Field

JSONVariant = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
"""JSON everywhere, JSONB on PostgreSQL (indexable, compact)."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """``timestamptz`` on PostgreSQL; on SQLite, UTC without offset. Always aware UTC in Python."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite has no time zones: store the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def id_field() -> Any:
    """A UUID primary key generated in Python (the same on SQLite and PostgreSQL)."""
    return Field(default_factory=uuid.uuid4, primary_key=True)


def created_at_field() -> Any:
    """``created_at`` set on insert."""
    return Field(
        default_factory=utcnow,
        sa_type=UTCDateTime(),
        sa_column_kwargs={"server_default": sa.func.now(), "nullable": False},
    )


def updated_at_field() -> Any:
    """``updated_at`` set on insert and refreshed on every ORM update."""
    return Field(
        default_factory=utcnow,
        sa_type=UTCDateTime(),
        sa_column_kwargs={"server_default": sa.func.now(), "nullable": False, "onupdate": utcnow},
    )


def json_field(name: str | None = None, *, nullable: bool = False) -> Any:
    """A JSON (JSONB on PostgreSQL) column; ``name`` sets the column name when it differs."""
    column = (
        sa.Column(name, JSONVariant, nullable=nullable) if name else sa.Column(JSONVariant, nullable=nullable)
    )
    if nullable:
        return Field(default=None, sa_column=column)
    return Field(default_factory=dict, sa_column=column)
