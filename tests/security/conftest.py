"""A closed Prefect server for the security tests: PostgreSQL-backed, started with an API auth string.

``closed_prefect`` is the server (for the session); ``insider`` points this process's Prefect
client at it with the auth string, as every Trinity process of a closed stack is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import prefect_on_new_database
from tests.support.servers import PrefectServer, start_prefect_server

AUTH_STRING = "trinity:closed-stack-test-auth-0123456789"


@pytest.fixture(scope="session")
def closed_prefect(session_home: Path) -> Iterator[PrefectServer]:
    """A real Prefect server on its own PostgreSQL database, refusing requests without the auth string."""
    home = session_home / "prefect-closed"
    yield from prefect_on_new_database(
        "prefect_closed",
        lambda url: start_prefect_server(
            home, database_url=url, extra_env={"PREFECT_SERVER_API_AUTH_STRING": AUTH_STRING}
        ),
    )


@pytest.fixture
def insider(closed_prefect: PrefectServer) -> Iterator[PrefectServer]:
    """This process's Prefect client on the closed server, with the auth string, for one test."""
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    updates = {PREFECT_API_URL: closed_prefect.api_url, PREFECT_API_AUTH_STRING: AUTH_STRING}
    with temporary_settings(updates=updates):
        # Prefect's events worker binds to the API (and auth) it first saw: start it afresh.
        EventsWorker.drain_all(timeout=30, at_exit=False)
        yield closed_prefect
        EventsWorker.drain_all(timeout=30, at_exit=False)
