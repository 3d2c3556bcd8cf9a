"""Fixtures of the fault suite: a Prefect server of its own, on PostgreSQL, that tests may kill.

Every test here injects a real fault into real processes (SIGKILL, SIGTERM, SIGSTOP, a restart of
the Prefect server or of a throwaway PostgreSQL) and then checks Prefect's records and the
databases. The suite has its own Prefect server because the tests change what is installed on it
(the heartbeat automation's window follows ``TRINITY_HEARTBEAT_SECONDS``) and restart it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.support import HEARTBEAT_SECONDS, chaos_prefect_server
from tests.conftest import prefect_on_new_database
from tests.support.servers import PrefectServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/chaos carries the ``chaos`` marker."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.chaos)


@pytest.fixture(scope="session")
def chaos_prefect(session_home: Path) -> Iterator[PrefectServer]:
    """A Prefect server on its own PostgreSQL database, for the fault suite only."""
    home = session_home / "prefect-chaos"
    yield from prefect_on_new_database(
        "prefect_chaos", lambda url: chaos_prefect_server(home, database_url=url)
    )


@pytest.fixture
def chaos_api(chaos_prefect: PrefectServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrefectServer]:
    """Point this process's Prefect client at the suite's server; short heartbeats for deploys."""
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("TRINITY_HEARTBEAT_SECONDS", str(HEARTBEAT_SECONDS))
    with temporary_settings(updates={PREFECT_API_URL: chaos_prefect.api_url}):
        EventsWorker.drain_all(timeout=30, at_exit=False)
        yield chaos_prefect
        EventsWorker.drain_all(timeout=30, at_exit=False)
