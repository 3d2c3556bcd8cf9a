"""One Prefect server (streaming logs) and one API on PostgreSQL for the GraphQL tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.graphql.support import Keys
from tests.api.live_support import live_api, start_live_prefect
from tests.api.support import ApiServer
from tests.support.servers import PrefectServer


@pytest.fixture(scope="package")
def live_prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    server = start_live_prefect(tmp_path_factory.mktemp("prefect-graphql"))
    yield server
    server.stop()


@pytest.fixture(scope="package")
def api(live_prefect: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with live_api(live_prefect, tmp_path_factory.mktemp("api-graphql")) as server:
        yield server


@pytest.fixture(scope="package")
def keys(api: ApiServer) -> Keys:
    """A key per role."""
    return Keys.create(api)
