"""Migrations on SQLite and PostgreSQL: they build exactly the core tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from api.db import MIGRATIONS_DIR, current_revision, migrate
from tests.conftest import require_postgres
from tests.support.servers import create_database, drop_database
from trinity.core.tables import METADATA
from trinity.core.urls import normalise_url


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'trinity.db'}"
        return
    require_postgres()
    url = create_database("trinity_migrate_test")
    yield url
    drop_database(url)


def test_migrations_are_idempotent_and_build_the_core_tables(database_url: str) -> None:
    assert current_revision(database_url) is None
    migrate(database_url)
    migrate(database_url)
    assert current_revision(database_url) == head_revision()
    engine = sa.create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            # What `alembic revision --autogenerate` would write: nothing, on either database.
            assert compare_metadata(context, METADATA) == []
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert tables == {*METADATA.tables, "alembic_version"}


def test_postgres_uses_jsonb_uuid_interval_and_timestamptz() -> None:
    require_postgres()
    url = create_database("trinity_types_test")
    try:
        migrate(url)
        engine = sa.create_engine(normalise_url(url))
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'execution_logs'"
                )
            ).all()
        engine.dispose()
        types = dict(rows)
        assert types["id"] == "uuid"
        assert types["metrics"] == "jsonb"
        assert types["execution_time"] == "interval"
        assert types["created_at"] == "timestamp with time zone"
    finally:
        drop_database(url)
