"""Fixtures for the API tests: the real app under uvicorn on SQLite and on PostgreSQL.

Each test module gets its own database (a fresh PostgreSQL database or a new SQLite file) and its
own server; ``api`` empties the data tables before each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.api.support import ApiServer, make_settings, running_api_server
from tests.conftest import require_postgres
from tests.support.servers import PrefectServer, create_database, drop_database
from tests.support.services import service_missing

REDIS_URL = os.environ.get("TRINITY_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def _database_url(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'trinity.db'}"
        return
    require_postgres()
    url = create_database("trinity_api_test")
    try:
        yield url
    finally:
        drop_database(url)


def _serve(backend: str, folder: Path, *, prefect_api_url: str | None = None) -> Iterator[ApiServer]:
    for url in _database_url(backend, folder):
        with running_api_server(
            make_settings(url, state_dir=folder, prefect_api_url=prefect_api_url)
        ) as server:
            yield server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api_module(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """A server per module and backend, without Prefect."""
    yield from _serve(request.param, tmp_path_factory.mktemp(f"api-{request.param}"))


@pytest.fixture
def api(api_module: ApiServer) -> ApiServer:
    """The module's server with empty data tables."""
    api_module.reset()
    return api_module


@pytest.fixture(scope="module")
def pg_api_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A PostgreSQL-backed server per module, without Prefect."""
    yield from _serve("postgres", tmp_path_factory.mktemp("api-pg"))


@pytest.fixture(scope="module")
def prefect_api_module(
    tmp_path_factory: pytest.TempPathFactory, prefect_sqlite_server: PrefectServer
) -> Iterator[ApiServer]:
    """A PostgreSQL-backed server talking to a real Prefect server."""
    folder = tmp_path_factory.mktemp("api-prefect")
    yield from _serve("postgres", folder, prefect_api_url=prefect_sqlite_server.api_url)


@pytest.fixture
def prefect_api_server(prefect_api_module: ApiServer) -> ApiServer:
    prefect_api_module.reset()
    return prefect_api_module


@pytest.fixture
def redis_url() -> str:
    """The machine's Redis server (``scripts/test`` starts it when it does not answer)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        service_missing(f"Redis is not reachable at {REDIS_URL} ({exc}); scripts/test starts one")
    finally:
        client.close()
    return REDIS_URL
