"""Database access: the async engine, sessions and schema migrations.

SQLite by default, PostgreSQL through psycopg 3 (URLs normalised by :mod:`trinity.core.urls`).
Requests use an async engine (``sqlite+aiosqlite`` or ``postgresql+psycopg``); migrations run
synchronously through Alembic on the same database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from trinity.core.urls import ensure_sqlite_dir, is_sqlite, normalise_url, sqlite_file

logger = logging.getLogger("trinity.api")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any fixed 64-bit number: serialises concurrent migrations of several API processes.
_MIGRATION_LOCK_ID = 7_283_104_552


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the one writer.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(
    url: str,
    *,
    pool_size: int = 20,
    max_overflow: int = 30,
    pool_timeout: float = 10.0,
    connect_timeout: int = 5,
) -> AsyncEngine:
    """The async engine for request handling (pre-ping, so a restarted server is noticed)."""
    target = normalise_url(url, async_driver=True)
    if is_sqlite(target):
        ensure_sqlite_dir(target)
        engine = create_async_engine(target, connect_args={"timeout": 10})
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        target,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": connect_timeout},
    )


class Database:
    """The engine and the session factory of one application."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        # Reads need no transaction: autocommit saves the BEGIN and ROLLBACK round trips.
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.read_sessionmaker = async_sessionmaker(autocommit, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def session(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """A session that is closed (and rolled back if uncommitted) on exit.

        ``read_only`` sessions run each statement on its own (autocommit): for requests that
        only read.
        """
        maker = self.read_sessionmaker if read_only else self.sessionmaker
        async with maker() as session:
            yield session

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises when the database is unreachable."""
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (Alembic ``upgrade head``)."""
    target = normalise_url(url)
    if is_sqlite(target):
        ensure_sqlite_dir(target)
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    if is_sqlite(target):
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.begin() as connection:
            if not is_sqlite(target):
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The schema revision the database at ``url`` is at (None: never migrated)."""
    target = normalise_url(url)
    path = sqlite_file(target)
    if path is not None and not path.exists():
        return None
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
