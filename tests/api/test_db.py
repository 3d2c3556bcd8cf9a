"""Database URLs and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import api.models  # noqa: F401  (registers the tables)
from api.db import MIGRATIONS_DIR, DatabaseURLError, current_revision, migrate, normalise_url
from tests.api.conftest import require_postgres
from tests.support.servers import create_database, drop_database


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


@pytest.mark.parametrize(
    ("url", "sync", "async_"),
    [
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x/t.db", "sqlite:///x/t.db", "sqlite+aiosqlite:///x/t.db"),
        ("sqlite+aiosqlite:///t.db", "sqlite:///t.db", "sqlite+aiosqlite:///t.db"),
    ],
)
def test_urls_are_normalised(url: str, sync: str, async_: str) -> None:
    assert normalise_url(url).render_as_string(hide_password=False) == sync
    assert normalise_url(url, async_driver=True).render_as_string(hide_password=False) == async_


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url", ""])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(DatabaseURLError):
        normalise_url(url)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'trinity.db'}"
        return
    require_postgres()
    url = create_database("trinity_migrate_test")
    yield url
    drop_database(url)


def test_migrations_are_idempotent_and_match_the_models(database_url: str) -> None:
    assert current_revision(database_url) is None
    migrate(database_url)
    migrate(database_url)
    assert current_revision(database_url) == head_revision()
    engine = sa.create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            # Tables written by the flows through SQLAlchemy Core have no SQLModel model here.
            diffs = [d for d in compare_metadata(context, SQLModel.metadata) if d[0] != "remove_table"]
            assert diffs == []
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    expected = {
        "specifications",
        "workflows",
        "execution_logs",
        "runs",
        "idempotency_keys",
        "api_keys",
        "analytics_performance",
        "analytics_insights",
    }
    assert expected <= tables


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
