"""Trinity's tables as the analytics flows see them: reflected, with dialect-specific upserts.

``flows`` may not import ``api``, so the tables are reflected from the database the API migrated.
Reflection alone is not enough on SQLite, which reports a UUID as ``CHAR(32)``, an interval as
``DATETIME`` and JSON as ``JSON`` of no particular flavour: binding a ``uuid.UUID`` to a reflected
``CHAR(32)`` would store a different text than the executor and the API store. So the columns whose
Python type matters are overridden with the types the API declares; everything else is as reflected.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchTableError

from flows.recording import database_url

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCTimestamp(sa.types.TypeDecorator[dt.datetime]):
    """``timestamptz`` on PostgreSQL, the UTC wall time on SQLite; aware UTC in Python either way
    (the same storage as the API's ``UTCDateTime``)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        return None if value is None else as_utc(value)


TIMESTAMP = UTCTimestamp()

_UUID_COLUMNS = {
    "id",
    "workflow_id",
    "flow_run_id",
    "task_run_id",
    "deployment_id",
    "parent_flow_run_id",
    "spec_id",
}
_TIME_COLUMNS = {
    "expected_start_time",
    "started_at",
    "ended_at",
    "created_at",
    "updated_at",
    "start_time",
    "end_time",
    "reference_time",
    "harvested_at",
    "window_start",
    "window_end",
    "value",
}
_JSON_COLUMNS = {"metrics", "evidence", "definition", "schema"}
_INTERVAL_COLUMNS = {"execution_time"}

REQUIRED_TABLES = (
    "execution_logs",
    "task_runs",
    "harvested_runs",
    "analytics_watermarks",
    "analytics_performance",
    "analytics_insights",
)
OPTIONAL_TABLES = ("specifications", "workflows")


class HistoryStoreError(Exception):
    """Trinity's database cannot be used for run history (unreachable, not migrated, bad URL)."""


def normalise_url(url: str) -> str:
    """``postgres://``/``postgresql://`` get the psycopg 3 driver; SQLite URLs are kept."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise HistoryStoreError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite")
    else:
        raise HistoryStoreError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed.render_as_string(hide_password=False)


def open_engine(url: str | None = None) -> sa.Engine:
    """An engine on ``url`` (default: ``TRINITY_DATABASE_URL``, else ``.trinity/trinity.db``)."""
    target = normalise_url(url or database_url())
    if target.startswith("sqlite"):
        database = make_url(target).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
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
    return engine.url.render_as_string(hide_password=True)


def _override_type(column: str) -> sa.types.TypeEngine[Any] | None:
    if column in _UUID_COLUMNS:
        return sa.Uuid()
    if column in _TIME_COLUMNS:
        return TIMESTAMP
    if column in _JSON_COLUMNS:
        return JSON
    if column in _INTERVAL_COLUMNS:
        return sa.Interval()
    return None


def _column_overrides(inspector: sa.Inspector, table: str) -> list[sa.Column[Any]]:
    primary = set(inspector.get_pk_constraint(table).get("constrained_columns") or [])
    columns: list[sa.Column[Any]] = []
    for info in inspector.get_columns(table):
        kind = _override_type(info["name"])
        if kind is not None:
            columns.append(
                sa.Column(info["name"], kind, primary_key=info["name"] in primary, nullable=info["nullable"])
            )
    return columns


@dataclass(frozen=True)
class Tables:
    """The reflected tables the analytics use (``workflows``/``specifications`` when present)."""

    execution_logs: sa.Table
    task_runs: sa.Table
    harvested_runs: sa.Table
    watermarks: sa.Table
    performance: sa.Table
    insights: sa.Table
    workflows: sa.Table | None
    specifications: sa.Table | None


def reflect_tables(engine: sa.Engine) -> Tables:
    """Reflect Trinity's tables; :class:`HistoryStoreError` when unreachable or not migrated."""
    metadata = sa.MetaData()
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            present = set(inspector.get_table_names())
            missing = [name for name in REQUIRED_TABLES if name not in present]
            if missing:
                raise HistoryStoreError(
                    f"{describe(engine)} has no table(s) {', '.join(missing)}: migrate it first "
                    "(`trinity api` or `trinity report` migrate on start)"
                )
            tables: dict[str, sa.Table] = {}
            # Referenced tables first: reflecting a foreign key pulls its target table in as is.
            for name in (*(t for t in OPTIONAL_TABLES if t in present), *REQUIRED_TABLES):
                tables[name] = sa.Table(
                    name,
                    metadata,
                    *_column_overrides(inspector, name),
                    autoload_with=connection,
                    extend_existing=True,
                )
    except NoSuchTableError as exc:
        raise HistoryStoreError(f"{describe(engine)}: table {exc} disappeared while reading it") from exc
    except sa.exc.OperationalError as exc:
        where = describe(engine)
        raise HistoryStoreError(f"cannot reach the database at {where}: {first_line(exc)}") from exc
    return Tables(
        execution_logs=tables["execution_logs"],
        task_runs=tables["task_runs"],
        harvested_runs=tables["harvested_runs"],
        watermarks=tables["analytics_watermarks"],
        performance=tables["analytics_performance"],
        insights=tables["analytics_insights"],
        workflows=tables.get("workflows"),
        specifications=tables.get("specifications"),
    )


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


def as_utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; naive values (SQLite) are UTC wall times."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def read_watermark(connection: sa.Connection, tables: Tables, name: str) -> dt.datetime | None:
    """The named watermark, or None before the first successful pass."""
    table = tables.watermarks
    value = connection.execute(sa.select(table.c.value).where(table.c.name == name)).scalar_one_or_none()
    return None if value is None else as_utc(value)


def write_watermark(connection: sa.Connection, tables: Tables, name: str, value: dt.datetime) -> None:
    """Set the named watermark (upsert)."""
    row = {"name": name, "value": as_utc(value), "updated_at": dt.datetime.now(dt.UTC)}
    upsert(connection, tables.watermarks, [row], key=["name"], update=["value", "updated_at"])
