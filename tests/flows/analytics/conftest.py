"""Fixtures for the analytics flow tests: a migrated Trinity database the executor writes to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flows.analytics.support import Store, database_url, reset_events_worker, store


@pytest.fixture(autouse=True)
def events_follow_the_server() -> Iterator[None]:
    """Each test's events go to that test's Prefect server (see ``reset_events_worker``)."""
    reset_events_worker()
    yield
    reset_events_worker()


@pytest.fixture(params=["sqlite"])
def trinity_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """A migrated, empty Trinity database (``sqlite`` by default; parametrize indirectly with
    ``"postgres"``), which the executor writes to through ``TRINITY_DATABASE_URL``."""
    url = database_url(request, request.param, tmp_path)
    monkeypatch.setenv("TRINITY_DATABASE_URL", url)
    yield from store(url)
