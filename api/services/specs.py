"""Specifications: create, read, replace and delete, with immutable versions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import (
    AlreadyExistsError,
    ConflictError,
    Detail,
    ImmutableVersionError,
    InUseError,
    NotFoundError,
    UnprocessableError,
)
from api.models.specification import Specification, SpecificationCreate, SpecificationUpdate
from api.models.workflow import LIVE_STATUSES, Workflow
from api.services.audit import AuditTrail
from api.services.paging import fetch_model_page
from specs.errors import SpecError
from specs.versions import best_match


async def list_specifications(
    *, session: AsyncSession, name: str | None, version: str | None, limit: int, offset: int
) -> tuple[list[Specification], int]:
    """One page of specifications (newest first) and the total matching the filters."""
    statement = sa.select(Specification).order_by(col(Specification.created_at).desc(), col(Specification.id))
    if name is not None:
        statement = statement.where(col(Specification.name) == name)
    if version is not None:
        statement = statement.where(col(Specification.version) == version)
    return await fetch_model_page(session, statement, limit=limit, offset=offset)


async def get_specification(*, session: AsyncSession, spec_id: uuid.UUID) -> Specification:
    """The specification with this id (404 otherwise)."""
    row = await session.get(Specification, spec_id)
    if row is None:
        raise NotFoundError(f"no specification with id {spec_id}")
    return row


async def _find(session: AsyncSession, name: str, version: str) -> Specification | None:
    statement = select(Specification).where(Specification.name == name, Specification.version == version)
    return (await session.exec(statement)).first()


RESOURCE = "specification"


def _audit(audit: AuditTrail | None, session: AsyncSession, row: Specification) -> None:
    if audit is not None:
        audit.stage(session, resource_type=RESOURCE, resource_id=row.id, version=row.version)


async def _audit_unchanged(audit: AuditTrail | None, session: AsyncSession, row: Specification) -> None:
    """A request that changed nothing is still recorded, in a transaction of its own."""
    if audit is not None:
        _audit(audit, session, row)
        await session.commit()


async def create_specification(
    *, session: AsyncSession, spec_in: SpecificationCreate, audit: AuditTrail | None = None
) -> Specification:
    """Store a new specification; 409 when this name and version already exist."""
    existing = await _find(session, spec_in.name, spec_in.version)
    if existing is not None:
        raise AlreadyExistsError(
            f"specification {spec_in.name} {spec_in.version} already exists (id {existing.id}); "
            "versions are immutable: publish a new version",
            details=[Detail(loc="$.version", msg="this name and version are taken")],
        )
    row = Specification.model_validate(spec_in)
    session.add(row)
    _audit(audit, session, row)
    await _commit(session, spec_in.name, spec_in.version)
    return row


async def _commit(session: AsyncSession, name: str, version: str) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise AlreadyExistsError(f"specification {name} {version} already exists") from exc


async def _live_users(session: AsyncSession, spec_id: uuid.UUID) -> Sequence[Workflow]:
    statement = select(Workflow).where(Workflow.spec_id == spec_id, col(Workflow.status).in_(LIVE_STATUSES))
    return (await session.exec(statement.limit(10))).all()


async def update_specification(
    *,
    session: AsyncSession,
    spec: Specification,
    spec_in: SpecificationUpdate,
    audit: AuditTrail | None = None,
) -> tuple[Specification, bool]:
    """Replace a specification's document; returns (row, changed).

    The name is fixed. The same version with the same content is a no-op; the same version with
    other content is refused (versions are immutable). A new version replaces the stored one only
    while no live workflow is bound to it -- otherwise publish it with POST.
    """
    if spec_in.name != spec.name:
        raise ConflictError(
            f"a specification's name is fixed ({spec.name}); create {spec_in.name} with POST",
            details=[Detail(loc="$.name", msg=f"expected {spec.name}")],
        )
    if spec_in.version == spec.version:
        if spec_in.content_hash == spec.content_hash:
            await _audit_unchanged(audit, session, spec)
            return spec, False
        raise ImmutableVersionError(
            f"specification {spec.name} {spec.version} is immutable; give the new content a new version",
            details=[Detail(loc="$.version", msg="this version already has other content")],
        )
    users = await _live_users(session, spec.id)
    if users:
        names = ", ".join(f"{w.name} {w.version}" for w in users)
        raise InUseError(
            f"live workflows use {spec.name} {spec.version} ({names}); publish the new version with POST"
        )
    clash = await _find(session, spec_in.name, spec_in.version)
    if clash is not None:
        raise AlreadyExistsError(
            f"specification {spec_in.name} {spec_in.version} already exists (id {clash.id})"
        )
    spec.version = spec_in.version
    spec.document = spec_in.document
    spec.content_hash = spec_in.content_hash
    session.add(spec)
    _audit(audit, session, spec)
    await _commit(session, spec_in.name, spec_in.version)
    return spec, True


async def delete_specification(
    *, session: AsyncSession, spec: Specification, audit: AuditTrail | None = None
) -> None:
    """Delete a specification no live (non-archived) workflow uses (409 otherwise)."""
    users = await _live_users(session, spec.id)
    if users:
        names = ", ".join(f"{w.name} {w.version} ({w.status})" for w in users)
        raise InUseError(f"specification {spec.name} {spec.version} is used by live workflows: {names}")
    _audit(audit, session, spec)
    await session.delete(spec)
    await session.commit()


async def resolve_specification(*, session: AsyncSession, name: str, version_range: str) -> Specification:
    """The stored specification with this name whose version best matches the range (422 if none)."""
    statement = select(Specification.id, Specification.version).where(Specification.name == name)
    rows = (await session.exec(statement)).all()
    if not rows:
        raise UnprocessableError(
            f"no specification named {name} is stored",
            details=[Detail(loc="$.spec.name", msg=f"unknown specification {name}")],
        )
    try:
        chosen = best_match([version for _, version in rows], version_range)
    except SpecError as exc:
        raise UnprocessableError(
            "the specification version range is not valid",
            details=[Detail(loc="$.spec.version", msg=exc.message)],
        ) from exc
    if chosen is None:
        stored = ", ".join(sorted(version for _, version in rows)[:20])
        raise UnprocessableError(
            f"no stored version of {name} satisfies {version_range!r}",
            details=[Detail(loc="$.spec.version", msg=f"stored versions: {stored}")],
        )
    spec_id = next(spec_id for spec_id, version in rows if version == chosen)
    return await get_specification(session=session, spec_id=spec_id)
