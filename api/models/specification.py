"""Specifications: the stored, immutable contract documents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from api.models.common import column_field, created_at_field, id_field, json_field, updated_at_field
from api.models.pagination import Page
from trinity.core import tables

_SPECIFICATIONS = tables.specifications


class SpecificationBase(SQLModel):
    name: str = Field(max_length=255)
    version: str = Field(max_length=64, description="Semantic version; immutable once stored.")


class SpecificationCreate(SpecificationBase):
    """A validated specification document, ready to store."""

    document: dict[str, Any]
    content_hash: str = Field(max_length=64)


class SpecificationUpdate(SpecificationCreate):
    """PUT replaces the whole document; the rules on versions live in the service."""


class Specification(SQLModel, table=True):
    __table__ = _SPECIFICATIONS

    id: uuid.UUID = id_field(_SPECIFICATIONS)
    name: str = column_field(_SPECIFICATIONS, "name")
    version: str = column_field(_SPECIFICATIONS, "version")
    # The seed calls the document column "schema"; the attribute avoids pydantic's old `schema()`.
    document: dict[str, Any] = json_field(_SPECIFICATIONS, "schema")
    content_hash: str = column_field(_SPECIFICATIONS, "content_hash")
    created_at: datetime = created_at_field(_SPECIFICATIONS)
    updated_at: datetime = updated_at_field(_SPECIFICATIONS)


class SpecificationPublic(SpecificationBase):
    id: uuid.UUID
    description: str = ""
    document: dict[str, Any] = Field(description="The specification document as stored (normalised).")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Specification) -> SpecificationPublic:
        """Build the public view of a stored specification (valid already: no second validation)."""
        return cls.model_construct(
            id=row.id,
            name=row.name,
            version=row.version,
            description=str(row.document.get("description", "")),
            document=row.document,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class SpecificationsPublic(Page[SpecificationPublic]):
    pass
