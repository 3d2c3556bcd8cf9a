"""API keys: stored as SHA-256 digests, shown in clear exactly once."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from api.models.common import column_field, created_at_field, id_field
from api.models.pagination import Page
from trinity.core import tables

_KEYS = tables.api_keys


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """True when this role includes everything ``needed`` may do."""
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class ApiKeyBase(SQLModel):
    name: str = Field(min_length=1, max_length=255, schema_extra={"pattern": r"^[^\x00-\x1f\x7f]+$"})
    role: Role = Field(default=Role.VIEWER)


class ApiKeyCreate(ApiKeyBase):
    pass


class ApiKey(SQLModel, table=True):
    __table__ = _KEYS

    id: uuid.UUID = id_field(_KEYS)
    name: str = column_field(_KEYS, "name")
    role: Role = column_field(_KEYS, "role", default=Role.VIEWER)
    key_hash: str = column_field(_KEYS, "key_hash")
    prefix: str = column_field(_KEYS, "prefix", description="The first characters, to recognise a key.")
    created_at: datetime = created_at_field(_KEYS)


class ApiKeyPublic(ApiKeyBase):
    id: uuid.UUID
    prefix: str
    created_at: datetime


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself; it is not stored and cannot be shown again.")


class ApiKeysPublic(Page[ApiKeyPublic]):
    pass
