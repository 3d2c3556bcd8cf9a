"""Alembic environment for Trinity's own tables (defined in :mod:`trinity.core.tables`).

Run programmatically by :func:`api.db.migrate`, which passes an open connection in
``config.attributes["connection"]``; ``alembic -x url=...`` works too for manual use.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from trinity.core.tables import METADATA
from trinity.core.urls import normalise_url

target_metadata = METADATA


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs table rebuilds for most ALTERs
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database URL: alembic -x url=postgresql://...")
    engine = create_engine(normalise_url(url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
run_migrations()
