"""Database URLs: what a user may write, and the driver Trinity uses for each database.

SQLite by default, PostgreSQL through psycopg 3. ``postgres://``, ``postgresql://`` and any
``postgresql+<driver>://`` get psycopg; SQLite URLs get the standard driver, or aiosqlite for
the API's async engine.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError


class DatabaseURLError(ValueError):
    """The database URL is not one Trinity can use."""


def normalise_url(url: str | URL, *, async_driver: bool = False) -> URL:
    """Map ``postgres://``, ``postgresql://``, ``sqlite://`` (and driver variants) to our drivers."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseURLError(f"not a database URL: {str(url)!r}") from exc
    backend = parsed.get_backend_name()
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite" if async_driver else "sqlite")
    raise DatabaseURLError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def is_sqlite(url: URL) -> bool:
    """True for a SQLite URL."""
    return url.get_backend_name() == "sqlite"


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for other databases, ``:memory:`` and ``file:`` URIs."""
    if not is_sqlite(url) or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database)


def ensure_sqlite_dir(url: URL) -> None:
    """Create the folder of a SQLite database file (SQLite creates the file, not the folder)."""
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def anchored(url: str, base: Path) -> str:
    """``url`` with a relative SQLite path made absolute against ``base``; other URLs unchanged.

    For handing a URL to another process, which may run in another folder.
    """
    parsed = normalise_url(url)
    path = sqlite_file(parsed)
    if path is None or path.is_absolute():
        return url
    return make_url(url).set(database=str(base / path)).render_as_string(hide_password=False)


def describe_url(url: str | URL) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a database URL>"
