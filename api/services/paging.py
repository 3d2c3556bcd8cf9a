"""One-query pages: the rows and the total matching the filters, via ``count(*) OVER ()``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession


async def fetch_page(
    session: AsyncSession, statement: sa.Select[*tuple[Any, ...]], *, limit: int, offset: int
) -> tuple[list[tuple[Any, ...]], int]:
    """Run an ordered ``sqlalchemy.select(...)`` for one page: its rows (tuples of the selected
    columns) and the total across pages.

    The window count is evaluated before LIMIT/OFFSET, so one round trip gives both; only a page
    past the end needs a second query for the total. (A plain SQLAlchemy select, because
    sqlmodel's single-entity select would return scalars and drop the count.)
    """
    windowed: Any = statement.add_columns(func.count().over().label("_total")).limit(limit).offset(offset)
    rows = (await session.exec(windowed)).all()
    if rows:
        return [tuple(row)[:-1] for row in rows], int(rows[0][-1])
    if offset == 0:
        return [], 0
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    return [], int((await session.exec(counted)).one())


async def fetch_model_page(
    session: AsyncSession, statement: sa.Select[*tuple[Any, ...]], *, limit: int, offset: int
) -> tuple[list[Any], int]:
    """:func:`fetch_page` for a select of one model: the model rows of the page and the total."""
    rows, total = await fetch_page(session, statement, limit=limit, offset=offset)
    return [row[0] for row in rows], total
