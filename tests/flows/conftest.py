"""Executor tests run as coroutines on asyncio (the loop Prefect's async engine uses)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.db import migrate


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def fresh_events_worker(request: pytest.FixtureRequest) -> Iterator[None]:
    """Flush and stop Prefect's events worker after each test.

    prefect 3.8.8 keeps one events worker per API URL, but the orchestration client it uses to
    enrich events is created with the settings of the first worker's thread; after a test switches
    ``prefect_api`` to another server, task-run events would be enriched against the old server and
    dropped. Stopping the workers makes the next test start them against its own server.

    The test's server is set up first (so it is torn down last): the workers flush while its
    settings are still in force, instead of restarting without an API URL, which would make
    Prefect start a temporary server of its own.
    """
    if "prefect_api" in request.fixturenames:
        request.getfixturevalue("prefect_api")
    yield
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10)


@pytest.fixture
def sqlite_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite Trinity database that this process's runs write execution_logs to."""
    url = f"sqlite:///{tmp_path / 'trinity.db'}"
    migrate(url)
    monkeypatch.setenv("TRINITY_DATABASE_URL", url)
    return url
