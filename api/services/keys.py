"""API keys: create (shown once), list, delete, and the bootstrap admin key."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import ConflictError, NotFoundError
from api.models.api_key import ApiKey, ApiKeyCreate, Role
from api.security import generate_api_key, hash_api_key, key_prefix
from api.services.audit import AuditTrail
from api.services.paging import fetch_model_page

RESOURCE = "api_key"


async def create_api_key(
    *, session: AsyncSession, key_in: ApiKeyCreate, audit: AuditTrail | None = None
) -> tuple[ApiKey, str]:
    """Store a new key's digest; returns the row and the key itself (never stored)."""
    key = generate_api_key()
    row = ApiKey(name=key_in.name, role=key_in.role, key_hash=hash_api_key(key), prefix=key_prefix(key))
    session.add(row)
    if audit is not None:
        details = {"name": row.name, "role": Role(row.role).value, "prefix": row.prefix}
        audit.stage(session, resource_type=RESOURCE, resource_id=row.id, details=details)
    await session.commit()
    return row, key


async def list_api_keys(*, session: AsyncSession, limit: int, offset: int) -> tuple[list[ApiKey], int]:
    """One page of keys, oldest first, and the total."""
    statement = sa.select(ApiKey).order_by(col(ApiKey.created_at), col(ApiKey.id))
    return await fetch_model_page(session, statement, limit=limit, offset=offset)


async def delete_api_key(
    *, session: AsyncSession, key_id: uuid.UUID, audit: AuditTrail | None = None
) -> None:
    """Delete a key (tokens issued for it stop working at once); the last admin key stays."""
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise NotFoundError(f"no API key with id {key_id}")
    if row.role == Role.ADMIN:
        admins = (
            await session.exec(select(func.count()).select_from(ApiKey).where(ApiKey.role == Role.ADMIN))
        ).one()
        if admins <= 1:
            raise ConflictError(
                "this is the last admin key; create another admin key first", code="last_admin_key"
            )
    if audit is not None:
        details = {"name": row.name, "role": Role(row.role).value, "prefix": row.prefix}
        audit.stage(session, resource_type=RESOURCE, resource_id=row.id, details=details)
    await session.delete(row)
    await session.commit()


async def ensure_bootstrap_key(*, session: AsyncSession, key: str) -> ApiKey:
    """Make sure ``key`` exists as an admin key (idempotent; for TRINITY_BOOTSTRAP_API_KEY)."""
    digest = hash_api_key(key)
    existing = (await session.exec(select(ApiKey).where(ApiKey.key_hash == digest))).first()
    if existing is not None:
        return existing
    row = ApiKey(name="bootstrap", role=Role.ADMIN, key_hash=digest, prefix=key_prefix(key))
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        # Another API process seeded it at the same moment.
        await session.rollback()
        return (await session.exec(select(ApiKey).where(ApiKey.key_hash == digest))).one()
    return row
