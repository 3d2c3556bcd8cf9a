"""Shared fixtures: real Prefect servers and real PostgreSQL databases.

Fixtures (all real, none mocked):

* ``pg_url`` -- a fresh PostgreSQL database for the session (``postgresql://`` URL).
* ``prefect_sqlite_server`` / ``prefect_postgres_server`` -- ``prefect server start`` child processes.
* ``closed_prefect`` -- a PostgreSQL-backed Prefect server started with an API auth string, as
  ``trinity up`` starts it; ``insider`` points this process's client at it with the auth string.
* ``prefect_api`` -- points this process's Prefect client at a server for one test; defaults to the
  SQLite-backed server, ``@pytest.mark.parametrize("prefect_api", ["sqlite", "postgres"],
  indirect=True)`` runs a test on both backends.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

# Keep every Prefect file of the test session out of the user's home; set before Prefect is imported.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="trinity-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_SESSION_HOME / "client-home"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.pop("PREFECT_API_URL", None)
# Workflows are activated and their stored definitions run only with a definition key; every
# process of the session (API servers, workers, executors) signs and checks with this one.
os.environ["TRINITY_DEFINITION_KEY"] = "trinity-test-definition-key-0123456789abcdefghijklmnopqrstuv"

import pytest  # noqa: E402

from tests.support.servers import (  # noqa: E402
    PrefectServer,
    create_database,
    drop_database,
    postgres_reachable,
    start_prefect_server,
)


def require_postgres() -> None:
    """Skip the test when PostgreSQL is unreachable (fail it under ``CI=true``)."""
    if postgres_reachable():
        return
    message = "PostgreSQL is not reachable (set TRINITY_TEST_PG_ADMIN_URL or run scripts/test)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def session_home() -> Path:
    """A temporary folder for the whole test session."""
    return _SESSION_HOME


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped at the end."""
    require_postgres()
    url = create_database()
    yield url
    drop_database(url)


def prefect_on_new_database(prefix: str, start: Callable[[str], PrefectServer]) -> Iterator[PrefectServer]:
    """A Prefect server ``start``-ed on a fresh PostgreSQL database, both gone afterwards."""
    require_postgres()
    url = create_database(prefix)
    server = start(url)
    yield server
    server.stop()
    drop_database(url)


@pytest.fixture(scope="session")
def prefect_sqlite_server(session_home: Path) -> Iterator[PrefectServer]:
    """A real Prefect server on SQLite."""
    server = start_prefect_server(session_home / "prefect-sqlite")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prefect_postgres_server(session_home: Path) -> Iterator[PrefectServer]:
    """A real Prefect server on its own PostgreSQL database."""
    home = session_home / "prefect-postgres"
    yield from prefect_on_new_database(
        "prefect_test", lambda url: start_prefect_server(home, database_url=url)
    )


@pytest.fixture
def prefect_api(request: pytest.FixtureRequest) -> Iterator[PrefectServer]:
    """Point this process's Prefect client at a real server for the duration of one test."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    backend = getattr(request, "param", "sqlite")
    fixture = {"sqlite": "prefect_sqlite_server", "postgres": "prefect_postgres_server"}[backend]
    server: PrefectServer = request.getfixturevalue(fixture)
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        _stop_event_workers()
        yield server
        # Flushed while this server's URL is still in force, so its events reach it.
        _stop_event_workers()


def _stop_event_workers() -> None:
    """Deliver pending events and stop Prefect's per-process events worker.

    That worker binds to the API URL it first saw; task runs reach the server as events, so without
    this a test on one Prefect server would send its task runs to the previous test's server.
    """
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=30, at_exit=False)


PREFECT_AUTH_STRING = "trinity:closed-stack-test-auth-0123456789"


@pytest.fixture(scope="session")
def closed_prefect(session_home: Path) -> Iterator[PrefectServer]:
    """A real Prefect server on its own PostgreSQL database, refusing requests without the auth string."""
    home = session_home / "prefect-closed"
    yield from prefect_on_new_database(
        "prefect_closed",
        lambda url: start_prefect_server(
            home, database_url=url, extra_env={"PREFECT_SERVER_API_AUTH_STRING": PREFECT_AUTH_STRING}
        ),
    )


@pytest.fixture
def insider(closed_prefect: PrefectServer) -> Iterator[PrefectServer]:
    """This process's Prefect client on the closed server, with the auth string, for one test."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    updates = {PREFECT_API_URL: closed_prefect.api_url, PREFECT_API_AUTH_STRING: PREFECT_AUTH_STRING}
    with temporary_settings(updates=updates):
        _stop_event_workers()
        yield closed_prefect
        _stop_event_workers()
