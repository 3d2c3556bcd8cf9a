"""A throwaway PostgreSQL holding both Trinity's database and Prefect's, restarted while runs are in
progress: the API answers 503 with Retry-After and its error body meanwhile (never a 500, never a
hang), serves again within 10 s of the database being back, and every run completes once."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.api.support import ADMIN_KEY, make_settings, running_api_server, spec_document, workflow_document
from tests.chaos.support import (
    SERVER_ENV,
    is_final,
    is_running,
    running_state_count,
    running_worker,
    wait_until,
    worker_env,
)
from tests.support.postgres import ThrowawayPostgres, throwaway_postgres
from tests.support.servers import start_prefect_server

__all__ = ["throwaway_postgres"]  # the fixture
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]
SLOW_TASK = {
    "id": "work",
    "uses": "shell",
    "with": {"argv": ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1; done"]},
}


def _answers_while_down(api: str, run_id: str) -> list[httpx.Response]:
    headers = {"X-API-Key": ADMIN_KEY}
    return [
        httpx.get(f"{api}/workflows", headers=headers, timeout=30),
        httpx.get(f"{api}/runs/{run_id}", headers=headers, timeout=30),
    ]


async def test_postgres_restarted_under_runs(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRINITY_HEARTBEAT_SECONDS", "30")  # slower than the outage
    prefect = start_prefect_server(
        tmp_path / "prefect", database_url=throwaway_postgres.create_database("prefect"), extra_env=SERVER_ENV
    )
    settings = make_settings(
        throwaway_postgres.create_database("trinity"), state_dir=tmp_path, prefect_api_url=prefect.api_url
    )
    pool = f"pg-{uuid.uuid4().hex[:6]}"
    settings.prefect.work_pool = pool
    try:
        with (
            temporary_settings(updates={PREFECT_API_URL: prefect.api_url}),
            running_api_server(settings) as api,
        ):
            client = api.client()
            assert client.post("/specs", json=spec_document()).status_code == 201
            document = workflow_document("survives-postgres") | {"tasks": [SLOW_TASK]}
            workflow = client.post("/workflows", params={"status": "active"}, json=document).json()
            env = worker_env(prefect, tmp_path, TRINITY_HEARTBEAT_SECONDS="30")
            with running_worker(pool, env, tmp_path / "worker.log") as worker:
                runs = [
                    client.post(
                        f"/workflows/{workflow['id']}/execute", json={"parameters": {"day": "2024-05-01"}}
                    ).json()
                    for _ in range(3)
                ]
                ids = [uuid.UUID(run["flow_run_id"]) for run in runs]
                await wait_until(ids, is_running, timeout=90, what="running", worker=worker)

                throwaway_postgres.stop()
                started = time.monotonic()
                down = _answers_while_down(api.api, runs[0]["id"])
                slowest = time.monotonic() - started
                time.sleep(2)
                throwaway_postgres.start()
                back_at = time.monotonic()
                while time.monotonic() < back_at + 10:
                    if client.get("/workflows").status_code == 200:
                        break
                    time.sleep(0.2)
                recovered = time.monotonic() - back_at
                served = client.get("/workflows").status_code

                done = await wait_until(ids, is_final, timeout=180, what="finished", worker=worker)
                log = worker.log()
            executions = [await running_state_count(run_id) for run_id in ids]
    finally:
        prefect.stop()

    assert [answer.status_code for answer in down] == [503, 503], [answer.text for answer in down]
    for answer in down:
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.json()["error"]["code"] in {"database_unavailable", "prefect_unavailable"}
    assert slowest < 30, "a request hung longer than the request timeout"
    assert served == 200, (
        f"the API did not serve again within 10 s of PostgreSQL coming back ({recovered:.1f}s)"
    )
    assert [run.state_name for run in done] == ["Completed"] * 3, log[-3000:]
    assert executions == [1, 1, 1]
    print(f"API served again {recovered:.1f}s after PostgreSQL came back")
