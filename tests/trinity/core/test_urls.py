"""Database URLs: one normalisation for every process."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from trinity.core.urls import DatabaseURLError, anchored, describe_url, normalise_url, sqlite_file


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


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///x/t.db", Path("x/t.db")),
        ("sqlite:////abs/t.db", Path("/abs/t.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql://u@h/db", None),
    ],
)
def test_the_file_of_a_sqlite_url(url: str, path: Path | None) -> None:
    assert sqlite_file(make_url(url)) == path


def test_relative_sqlite_paths_are_anchored_for_another_process(tmp_path: Path) -> None:
    assert anchored("sqlite:///.trinity/trinity.db", tmp_path) == f"sqlite:///{tmp_path}/.trinity/trinity.db"
    assert anchored("sqlite:////srv/t.db", tmp_path) == "sqlite:////srv/t.db"
    assert anchored("postgresql://u:secret@h/db", tmp_path) == "postgresql://u:secret@h/db"


def test_messages_never_show_the_password() -> None:
    assert describe_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert describe_url("not a url") == "<not a database URL>"
