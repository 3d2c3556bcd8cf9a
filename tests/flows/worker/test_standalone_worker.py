"""A standalone ``trinity worker`` on "another host": a folder holding only its
``trinity.config.yml``, which names Trinity's PostgreSQL database, the Prefect API and the
definition key. The run's execution log must land in that database, not in a SQLite file of the
folder."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.db import migrate
from tests.conftest import require_postgres
from tests.flows.worker.support import VENV_BIN, create_runs, deploy_tasks, is_final, running_worker, wait_for
from tests.support.servers import PrefectServer, create_database, drop_database
from trinity.core.signing import DEFINITION_KEY_ENV
from trinity.core.tables import execution_logs
from trinity.core.urls import normalise_url

pytestmark = pytest.mark.anyio

TASKS = [
    {"id": "extract", "uses": "noop", "with": {"output": 3}},
    {"id": "load", "uses": "noop", "needs": ["extract"], "for_each": "${{ [1, 2] }}"},
]


@pytest.fixture
def trinity_postgres() -> Iterator[str]:
    """A fresh PostgreSQL database, migrated the way the API migrates it at start."""
    require_postgres()
    url = create_database("trinity_standalone_worker")
    migrate(url)
    yield url
    drop_database(url)


def _host_environment(server: PrefectServer) -> dict[str, str]:
    """The environment of a fresh host: Prefect's home, but no Trinity or Prefect API settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRINITY_")}
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    env["PREFECT_HOME"] = server.env["PREFECT_HOME"]
    return env


def _execution_logs(url: str) -> list[sa.RowMapping]:
    engine = sa.create_engine(normalise_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.select(execution_logs)).mappings())
    finally:
        engine.dispose()


async def _wait_for_rows(url: str, *, timeout: float) -> list[sa.RowMapping]:
    deadline = time.monotonic() + timeout
    while not (rows := _execution_logs(url)) and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    return rows


async def test_a_standalone_worker_records_runs_to_the_database_its_config_names(
    prefect_api: PrefectServer, trinity_postgres: str, tmp_path: Path
) -> None:
    pool = f"standalone-{uuid.uuid4().hex[:6]}"
    host = tmp_path / "host"
    host.mkdir()
    (host / "trinity.config.yml").write_text(
        f"database:\n  url: {trinity_postgres}\n"
        f"prefect:\n  api_url: {prefect_api.api_url}\n  work_pool: {pool}\n"
        # The key the definitions were signed with (this session's), shared like the database URL.
        f"security:\n  definition_key: {os.environ[DEFINITION_KEY_ENV]}\n"
    )
    command = [str(VENV_BIN / "trinity"), "worker", "--processes", "1", "--concurrency", "2"]
    command += ["--poll-seconds", "0.5", "--shutdown-grace", "5"]

    with running_worker(command, _host_environment(prefect_api), tmp_path / "worker.log", cwd=host) as worker:
        deployment = await deploy_tasks("standalone", pool, TASKS)
        (run_id,) = await create_runs(deployment, 1)
        (run,) = await wait_for([run_id], is_final, timeout=120, what="finished")
        assert run.state_name == "Completed", worker.log()
        # The final-state hook writes the row once Prefect has the final state.
        rows = await _wait_for_rows(trinity_postgres, timeout=30)

    log = worker.log()
    assert f"Recording execution logs to {trinity_postgres}" in log
    assert "not written" not in log
    assert [(row["flow_run_id"], row["status"]) for row in rows] == [(run_id, "COMPLETED")]
    assert rows[0]["workflow_name"] == "standalone"
    assert set(rows[0]["metrics"]["tasks"]) == {"extract", "load[0]", "load[1]"}
    # Nothing was written beside the config file: no local SQLite database, no state folder.
    assert sorted(path.name for path in host.iterdir()) == ["trinity.config.yml"]
