"""One Prefect server (streaming logs) and one API on PostgreSQL for the GraphQL tests."""

from __future__ import annotations

import pytest

from tests.api.graphql.support import Keys
from tests.api.live_support import live_stack_fixtures
from tests.api.support import ApiServer

live_prefect, api = live_stack_fixtures("package", "graphql")


@pytest.fixture(scope="package")
def keys(api: ApiServer) -> Keys:
    """A key per role."""
    return Keys.create(api)
