"""Lifecycle and execution against a real Prefect server (deployments via deployments.service)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from api.db import Database, create_engine, normalise_url
from api.services.runs import purge_idempotency_keys
from tests.api.support import ADMIN_KEY, ApiServer, spec_document, store_active_workflow, workflow_document
from tests.support.servers import PrefectServer
from tests.support.shell import run_command

REPO = Path(__file__).resolve().parents[2]
DAY = {"day": "2024-05-01"}


def prefect_get(prefect: PrefectServer, path: str) -> httpx.Response:
    return httpx.get(f"{prefect.api_url}{path}", timeout=30)


def deployment_flow_runs(prefect: PrefectServer, deployment_id: str) -> list[dict[str, Any]]:
    """The flow runs Prefect holds for a deployment."""
    response = httpx.post(
        f"{prefect.api_url}/flow_runs/filter",
        json={"deployments": {"id": {"any_": [deployment_id]}}},
        timeout=30,
    )
    runs: list[dict[str, Any]] = response.json()
    return runs


def active_workflow(api: ApiServer, name: str = "orders-export", **kwargs: Any) -> dict[str, Any]:
    return store_active_workflow(api, spec_document(), workflow_document(name, **kwargs))


def test_lifecycle_drives_the_prefect_deployment(
    prefect_api_server: ApiServer, prefect_sqlite_server: PrefectServer
) -> None:
    client = prefect_api_server.client()
    assert client.post("/specs", json=spec_document()).status_code == 201
    draft = client.post(
        "/workflows", json=workflow_document("lifecycle", schedule={"interval_seconds": 3600})
    )
    workflow = draft.json()
    url = f"/workflows/{workflow['id']}"

    active = client.put(url, json={"status": "active"})
    assert active.status_code == 200, active.text
    deployment_id = active.json()["deployment_id"]
    assert active.json()["deployment_name"] == "lifecycle/trinity"
    deployment = prefect_get(prefect_sqlite_server, f"/deployments/{deployment_id}").json()
    assert deployment["name"] == "trinity"
    flow = prefect_get(prefect_sqlite_server, f"/flows/{deployment['flow_id']}").json()
    assert flow["name"] == "lifecycle"
    assert deployment["paused"] is False
    assert [s["active"] for s in deployment["schedules"]] == [True]
    assert deployment["parameter_openapi_schema"]["properties"]["day"]["type"] == "string"

    paused = client.put(url, json={"status": "paused"})
    assert paused.status_code == 200
    assert prefect_get(prefect_sqlite_server, f"/deployments/{deployment_id}").json()["paused"] is True
    resumed = client.put(url, json={"status": "active"})
    assert resumed.json()["deployment_id"] == deployment_id
    assert prefect_get(prefect_sqlite_server, f"/deployments/{deployment_id}").json()["paused"] is False

    archived = client.put(url, json={"status": "archived"})
    assert archived.status_code == 200
    assert archived.json()["deployment_id"] is None
    assert prefect_get(prefect_sqlite_server, f"/deployments/{deployment_id}").status_code == 404


def test_a_live_document_change_redeploys(
    prefect_api_server: ApiServer, prefect_sqlite_server: PrefectServer
) -> None:
    workflow = active_workflow(prefect_api_server, "redeploy")
    changed = workflow_document("redeploy", version="1.1.0", schedule={"cron": "0 3 * * *"})
    response = prefect_api_server.client().put(f"/workflows/{workflow['id']}", json=changed)
    assert response.status_code == 200, response.text
    deployment = prefect_get(prefect_sqlite_server, f"/deployments/{response.json()['deployment_id']}").json()
    assert deployment["version"] == "1.1.0"
    assert deployment["schedules"][0]["schedule"]["cron"] == "0 3 * * *"


def test_deleting_an_active_workflow_removes_its_deployment(
    prefect_api_server: ApiServer, prefect_sqlite_server: PrefectServer
) -> None:
    workflow = active_workflow(prefect_api_server, "deleted")
    assert prefect_api_server.client().delete(f"/workflows/{workflow['id']}").status_code == 204
    assert prefect_get(prefect_sqlite_server, f"/deployments/{workflow['deployment_id']}").status_code == 404


def test_only_one_version_of_a_name_is_deployed(prefect_api_server: ApiServer) -> None:
    active_workflow(prefect_api_server, "single")
    client = prefect_api_server.client()
    second = client.post("/workflows", params={"status": "active"}, json=workflow_document("single", "2.0.0"))
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "deployment_in_use"


def test_execute_starts_a_flow_run(
    prefect_api_server: ApiServer, prefect_sqlite_server: PrefectServer
) -> None:
    workflow = active_workflow(prefect_api_server, "runs-once")
    response = prefect_api_server.client().post(
        f"/workflows/{workflow['id']}/execute", json={"parameters": DAY}
    )
    assert response.status_code == 202, response.text
    run = response.json()
    assert response.headers["location"] == f"/api/v1/runs/{run['id']}"
    assert run["state"]["type"] == "SCHEDULED"
    assert run["ui_url"] == f"{prefect_sqlite_server.ui_url}/runs/flow-run/{run['flow_run_id']}"
    flow_run = prefect_get(prefect_sqlite_server, f"/flow_runs/{run['flow_run_id']}").json()
    assert flow_run["deployment_id"] == workflow["deployment_id"]
    assert flow_run["parameters"] == {"day": "2024-05-01", "limit": 10}  # the spec's default filled in

    detail = prefect_api_server.client().get(f"/runs/{run['id']}").json()
    assert detail["flow_run_id"] == run["flow_run_id"]
    assert detail["state"]["type"] == "SCHEDULED"
    assert detail["tasks"] == []
    by_flow_run = prefect_api_server.client().get(f"/runs/{run['flow_run_id']}").json()
    assert by_flow_run["id"] == run["id"]

    listed = prefect_api_server.client().get(f"/workflows/{workflow['id']}/runs").json()
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == run["id"]


def test_parameters_are_validated_against_the_spec(prefect_api_server: ApiServer) -> None:
    workflow = active_workflow(prefect_api_server, "strict")
    client = prefect_api_server.client()
    url = f"/workflows/{workflow['id']}/execute"
    wrong = client.post(url, json={"parameters": {"day": "yesterday", "limit": 0}})
    assert wrong.status_code == 422
    locs = {detail["loc"] for detail in wrong.json()["error"]["details"]}
    assert locs == {"$.parameters.day", "$.parameters.limit"}
    missing = client.post(url, json={"parameters": {}})
    assert missing.status_code == 422
    assert prefect_api_server.client().get(f"/workflows/{workflow['id']}/runs").json()["total"] == 0


def test_only_active_workflows_execute(prefect_api_server: ApiServer) -> None:
    workflow = active_workflow(prefect_api_server, "pausable")
    client = prefect_api_server.client()
    client.put(f"/workflows/{workflow['id']}", json={"status": "paused"})
    response = client.post(f"/workflows/{workflow['id']}/execute", json={"parameters": DAY})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "workflow_not_active"


def test_idempotency_key_returns_the_same_run(
    prefect_api_server: ApiServer, prefect_sqlite_server: PrefectServer
) -> None:
    workflow = active_workflow(prefect_api_server, "idempotent")
    client = prefect_api_server.client()
    url = f"/workflows/{workflow['id']}/execute"
    headers = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = client.post(url, json={"parameters": DAY}, headers=headers)
    again = client.post(url, json={"parameters": DAY}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    different = client.post(url, json={"parameters": {"day": "2024-05-02"}}, headers=headers)
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "idempotency_key_reused"
    no_key = client.post(url, json={"parameters": DAY})
    assert no_key.json()["id"] != first.json()["id"]
    runs = deployment_flow_runs(prefect_sqlite_server, workflow["deployment_id"])
    assert len(runs) == 2


def test_concurrent_retries_with_one_key_make_one_run(
    prefect_api_server: ApiServer, prefect_sqlite_server: PrefectServer
) -> None:
    workflow = active_workflow(prefect_api_server, "racing")
    url = f"/workflows/{workflow['id']}/execute"
    headers = {"Idempotency-Key": "same-key", "X-API-Key": ADMIN_KEY}

    def attempt(_: int) -> httpx.Response:
        with httpx.Client(base_url=prefect_api_server.api, timeout=60) as client:
            return client.post(url, json={"parameters": DAY}, headers=headers)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(attempt, range(8)))
    # A burst may find Prefect's SQLite busy (503, retry later); nothing else is acceptable.
    assert {r.status_code for r in responses} <= {202, 503}, [r.text for r in responses]
    retried = attempt(0)
    for _ in range(10):
        if retried.status_code == 202:
            break
        retried = attempt(0)
    assert retried.status_code == 202, retried.text
    run_ids = {r.json()["id"] for r in [*responses, retried] if r.status_code == 202}
    assert len(run_ids) == 1
    runs = deployment_flow_runs(prefect_sqlite_server, workflow["deployment_id"])
    assert len(runs) == 1


def test_a_deployment_deleted_in_prefect_is_409_on_execute(
    prefect_api_server: ApiServer, prefect_sqlite_server: PrefectServer
) -> None:
    workflow = active_workflow(prefect_api_server, "orphaned")
    httpx.delete(f"{prefect_sqlite_server.api_url}/deployments/{workflow['deployment_id']}", timeout=30)
    response = prefect_api_server.client().post(
        f"/workflows/{workflow['id']}/execute", json={"parameters": DAY}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "deployment_missing"


@pytest.mark.slow
def test_run_status_has_per_task_states_after_the_run(
    prefect_api_server: ApiServer, prefect_sqlite_server: PrefectServer
) -> None:
    workflow = active_workflow(prefect_api_server, "executed")
    run = (
        prefect_api_server.client()
        .post(f"/workflows/{workflow['id']}/execute", json={"parameters": DAY})
        .json()
    )
    env = dict(prefect_sqlite_server.env, PREFECT_API_URL=prefect_sqlite_server.api_url)
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    env["TRINITY_DATABASE_URL"] = prefect_api_server.settings.database_url
    result = run_command(
        [sys.executable, "-m", "prefect", "flow-run", "execute", run["flow_run_id"]], cwd=REPO, env=env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    detail = prefect_api_server.client().get(f"/runs/{run['id']}").json()
    assert detail["state"]["type"] == "COMPLETED"
    states = {task["task_id"]: task["state"]["type"] for task in detail["tasks"]}
    assert states == {"extract": "COMPLETED", "load": "COMPLETED"}


def test_an_unknown_parameter_is_refused_before_a_run_exists(
    prefect_api_server: ApiServer, prefect_sqlite_server: PrefectServer
) -> None:
    names = {"type": "object", "properties": {"names": {"type": "array", "items": {"type": "string"}}}}
    client = prefect_api_server.client()
    assert client.post("/specs", json=spec_document("greeting", parameters=names)).status_code == 201
    document = workflow_document("greet", spec_name="greeting")
    document["tasks"] = [{"id": "greet", "uses": "noop", "with": {"output": "${{ params.names }}"}}]
    created = client.post("/workflows", params={"status": "active"}, json=document)
    assert created.status_code == 201, created.text
    workflow = created.json()
    url = f"/workflows/{workflow['id']}/execute"

    misspelt = client.post(url, json={"parameters": {"nams": ["ada"]}})
    unlike = client.post(url, json={"parameters": {"qqq": 1}})

    assert misspelt.status_code == 422, misspelt.text
    assert misspelt.json()["error"]["details"] == [
        {"loc": "$.parameters.nams", "msg": "unknown parameter 'nams'; did you mean 'names'?"}
    ]
    assert unlike.json()["error"]["details"] == [
        {"loc": "$.parameters.qqq", "msg": "unknown parameter 'qqq'"}
    ]
    assert client.get(f"/workflows/{workflow['id']}/runs").json()["total"] == 0
    runs = deployment_flow_runs(prefect_sqlite_server, workflow["deployment_id"])
    assert runs == []
    assert client.post(url, json={"parameters": {"names": ["ada"]}}).status_code == 202


def _age_keys(api: ApiServer, seconds: int) -> None:
    """Make every stored Idempotency-Key ``seconds`` older, as if time had passed."""
    engine = sa.create_engine(normalise_url(api.settings.database_url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE idempotency_keys SET created_at = created_at - make_interval(secs => :s)"),
                {"s": seconds},
            )
    finally:
        engine.dispose()


def _key_count(api: ApiServer) -> int:
    engine = sa.create_engine(normalise_url(api.settings.database_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM idempotency_keys")).scalar_one())
    finally:
        engine.dispose()


def test_an_expired_key_starts_a_new_run_and_expired_keys_are_purged(
    prefect_api_server: ApiServer, prefect_sqlite_server: PrefectServer
) -> None:
    workflow = active_workflow(prefect_api_server, "expiring")
    client = prefect_api_server.client()
    url = f"/workflows/{workflow['id']}/execute"
    headers = {"Idempotency-Key": "nightly-2024-05-01"}
    first = client.post(url, json={"parameters": DAY}, headers=headers)
    assert first.status_code == 202
    ttl = prefect_api_server.settings.server.idempotency_ttl_seconds
    assert ttl == 86400
    _age_keys(prefect_api_server, ttl - 60)
    assert client.post(url, json={"parameters": DAY}, headers=headers).json()["id"] == first.json()["id"]
    _age_keys(prefect_api_server, 120)
    later = client.post(url, json={"parameters": DAY}, headers=headers)
    assert later.status_code == 202
    assert "idempotent-replayed" not in later.headers
    assert later.json()["flow_run_id"] != first.json()["flow_run_id"]
    assert _key_count(prefect_api_server) == 1

    _age_keys(prefect_api_server, ttl + 1)
    database = Database(create_engine(prefect_api_server.settings.database_url))

    async def purge() -> int:
        async with database.session() as session:
            purged = await purge_idempotency_keys(session=session, ttl_seconds=ttl)
        await database.dispose()
        return purged

    assert asyncio.run(purge()) == 1
    assert _key_count(prefect_api_server) == 0


def test_a_crashed_run_and_its_rerun_link_each_other(
    prefect_api_server: ApiServer, prefect_sqlite_server: PrefectServer
) -> None:
    client = prefect_api_server.client()
    assert client.post("/specs", json=spec_document()).status_code in (201, 409)
    document = workflow_document("crashy") | {"on_crash": {"rerun": 1}}
    workflow = client.post("/workflows", params={"status": "active"}, json=document).json()
    run = client.post(f"/workflows/{workflow['id']}/execute", json={"parameters": DAY}).json()
    flow_run_id = uuid.UUID(run["flow_run_id"])

    async def crash_and_rerun() -> uuid.UUID:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings
        from prefect.states import Crashed

        from flows.worker.reruns import CrashPolicies, rerun_if_allowed

        with temporary_settings(updates={PREFECT_API_URL: prefect_sqlite_server.api_url}):
            async with get_client() as prefect:
                await prefect.set_flow_run_state(flow_run_id, Crashed(message="worker killed"), force=True)
                rerun = await rerun_if_allowed(prefect, flow_run_id, CrashPolicies(prefect))
        assert rerun is not None
        return rerun.id

    rerun_id = asyncio.run(crash_and_rerun())
    crashed = client.get(f"/runs/{run['id']}").json()
    assert crashed["state"]["type"] == "CRASHED"
    assert crashed["rerun_of"] is None
    assert crashed["reruns"] == [str(rerun_id)]
    rerun = client.get(f"/runs/{rerun_id}")
    assert rerun.status_code == 200, rerun.text
    assert rerun.json()["rerun_of"] == run["flow_run_id"]
    assert rerun.json()["workflow_id"] == workflow["id"]
    assert rerun.json()["parameters"] == DAY
    listed = client.get(f"/workflows/{workflow['id']}/runs").json()
    assert sorted(item["flow_run_id"] for item in listed["items"]) == sorted(
        [run["flow_run_id"], str(rerun_id)]
    )
    assert client.get(f"/runs/{uuid.uuid4()}").status_code == 404
