"""Trinity's tables as the analytics flows use them: the core tables, with dialect-specific upserts.

The tables are those of :mod:`trinity.core.tables`, the very objects the API's models and the
migrations are checked against; :func:`migrated_tables` only checks that the database has them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from trinity.core import tables as core
from trinity.core.config import load_settings
from trinity.core.types import as_utc
from trinity.core.urls import DatabaseURLError, describe_url, ensure_sqlite_dir, is_sqlite, normalise_url

REQUIRED_TABLES = (
    core.execution_logs,
    core.task_runs,
    core.harvested_runs,
    core.analytics_watermarks,
    core.analytics_performance,
    core.analytics_insights,
    core.analytics_failure_families,
    core.analytics_models,
    core.workflows,
    core.specifications,
)


class HistoryStoreError(Exception):
    """Trinity's database cannot be used for run history (unreachable, not migrated, bad URL)."""


def open_engine(url: str | None = None) -> sa.Engine:
    """An engine on ``url`` (default: the configured database, as the settings resolve it)."""
    try:
        target = normalise_url(url or load_settings().database_url)
    except DatabaseURLError as exc:
        raise HistoryStoreError(str(exc)) from exc
    if is_sqlite(target):
        ensure_sqlite_dir(target)
        engine = sa.create_engine(target, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(target, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API and the executor read while the harvest writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def describe(engine: sa.Engine) -> str:
    """The engine's URL without its password, for messages."""
    return describe_url(engine.url)


@dataclass(frozen=True)
class Tables:
    """The tables the analytics use."""

    execution_logs: sa.Table = core.execution_logs
    task_runs: sa.Table = core.task_runs
    harvested_runs: sa.Table = core.harvested_runs
    watermarks: sa.Table = core.analytics_watermarks
    performance: sa.Table = core.analytics_performance
    insights: sa.Table = core.analytics_insights
    families: sa.Table = core.analytics_failure_families
    models: sa.Table = core.analytics_models
    workflows: sa.Table = core.workflows
    specifications: sa.Table = core.specifications


def migrated_tables(engine: sa.Engine) -> Tables:
    """The tables, once the database is known to have them; :class:`HistoryStoreError` when it is
    unreachable or not migrated."""
    try:
        with engine.connect() as connection:
            present = set(sa.inspect(connection).get_table_names())
    except sa.exc.OperationalError as exc:
        where = describe(engine)
        raise HistoryStoreError(f"cannot reach the database at {where}: {first_line(exc)}") from exc
    missing = [table.name for table in REQUIRED_TABLES if table.name not in present]
    if missing:
        raise HistoryStoreError(
            f"{describe(engine)} has no table(s) {', '.join(missing)}: migrate it first "
            "(`trinity api` or `trinity report` migrate on start)"
        )
    return Tables()


def first_line(exc: BaseException) -> str:
    """The first line of a database error (the driver's message, not SQLAlchemy's wrapper)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def upsert(
    connection: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str],
    unless_equal: str | None = None,
) -> None:
    """Insert ``rows``; where ``key`` already exists, overwrite only the ``update`` columns (and,
    with ``unless_equal``, only rows whose value in that column differs).

    One ``INSERT ... ON CONFLICT DO UPDATE`` per batch (PostgreSQL and SQLite); SQLAlchemy splits
    the rows into multi-row statements within each database's parameter limits.
    """
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise HistoryStoreError(f"unsupported database dialect {dialect!r}")
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.on_conflict_do_update(
        index_elements=[table.c[name] for name in key],
        set_={name: insert.excluded[name] for name in update},
        where=(table.c[unless_equal] != insert.excluded[unless_equal]) if unless_equal else None,
    )
    connection.execute(statement, [dict(row) for row in rows])


def database_now(connection: sa.Connection) -> dt.datetime:
    """The database's clock (PostgreSQL), or this host's for SQLite (a local file), in UTC."""
    if connection.dialect.name == "postgresql":
        value = connection.execute(sa.text("SELECT now()")).scalar_one()
        return as_utc(value)
    return dt.datetime.now(dt.UTC)


def read_watermark(connection: sa.Connection, tables: Tables, name: str) -> dt.datetime | None:
    """The named watermark, or None before the first successful pass."""
    table = tables.watermarks
    value = connection.execute(sa.select(table.c.value).where(table.c.name == name)).scalar_one_or_none()
    return None if value is None else as_utc(value)


def write_watermark(connection: sa.Connection, tables: Tables, name: str, value: dt.datetime) -> None:
    """Set the named watermark (upsert)."""
    row = {"name": name, "value": as_utc(value), "updated_at": dt.datetime.now(dt.UTC)}
    upsert(connection, tables.watermarks, [row], key=["name"], update=["value", "updated_at"])
