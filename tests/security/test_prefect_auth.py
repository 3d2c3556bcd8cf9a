"""Prefect closed: the attacks on its open API, reproduced as found and refused (401).

As found: with no credentials, ``POST /api/deployments/{id}/create_flow_run`` started any workflow
with any parameters, and ``PATCH /api/block_documents/{id}`` rewrote a stored definition. With the
auth string ``trinity up`` starts Prefect with, both answer 401 and change nothing; the same
requests with the auth string go through, so it is the auth string that refuses them. Prefect's
websockets (the live events and logs ``trinity run --watch`` and the API's event streams read)
keep working for a client that has the auth string.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings

from blocks.workflow_definition import BLOCK_TYPE_SLUG, definition_block_name
from deployments import events
from deployments.events import StreamScope
from tests.conftest import PREFECT_AUTH_STRING as AUTH_STRING
from tests.flows.conftest import anyio_backend
from tests.flows.worker.support import deploy_tasks, deployment_run_count
from tests.support.servers import PrefectServer
from trinity.stack_setup import prefect_auth_headers

__all__ = ["anyio_backend"]
pytestmark = pytest.mark.anyio

POOL = "closed-auth-pool"  # no worker serves it: runs created here stay Scheduled
SHELL = [{"id": "pwn", "uses": "shell", "with": {"argv": ["sh", "-c", "id > /tmp/pwned"]}}]
NO_CREDENTIALS: list[dict[str, str]] = [
    {},
    prefect_auth_headers("trinity:a-guess"),
    {"Authorization": "Bearer x"},
]


async def test_create_flow_run_without_the_auth_string_is_refused(insider: PrefectServer) -> None:
    name = f"auth-victim-{uuid.uuid4().hex[:6]}"
    deployment_id = await deploy_tasks(name, POOL, [{"id": "only", "uses": "noop"}])
    route = f"{insider.api_url}/deployments/{deployment_id}/create_flow_run"
    for headers in NO_CREDENTIALS:
        refused = httpx.post(route, json={"parameters": {}}, headers=headers, timeout=30)
        assert refused.status_code == 401, (headers, refused.text)
    assert await deployment_run_count(deployment_id) == 0
    # The same request with the auth string is served: the refusal was the auth string's.
    created = httpx.post(
        route, json={"parameters": {}}, headers=prefect_auth_headers(AUTH_STRING), timeout=30
    )
    assert created.status_code == 201, created.text
    assert await deployment_run_count(deployment_id) == 1


async def test_patching_a_stored_definition_without_the_auth_string_is_refused(
    insider: PrefectServer,
) -> None:
    name = f"auth-block-{uuid.uuid4().hex[:6]}"
    await deploy_tasks(name, POOL, [{"id": "only", "uses": "noop"}])
    block_name = definition_block_name(name, "1.0.0")
    async with get_client() as client:
        document = await client.read_block_document_by_name(block_name, BLOCK_TYPE_SLUG)
    tampered = dict(document.data["workflow"], tasks=SHELL)
    route = f"{insider.api_url}/block_documents/{document.id}"
    for headers in NO_CREDENTIALS:
        refused = httpx.patch(route, json={"data": {"workflow": tampered}}, headers=headers, timeout=30)
        assert refused.status_code == 401, (headers, refused.text)
    async with get_client() as client:
        stored = await client.read_block_document_by_name(block_name, BLOCK_TYPE_SLUG)
    assert [task["uses"] for task in stored.data["workflow"]["tasks"]] == ["noop"]
    # Reads are closed too: without the auth string nothing of the definition is shown.
    assert httpx.get(route, timeout=30).status_code == 401


async def test_health_stays_open_for_probes(closed_prefect: PrefectServer) -> None:
    # `trinity up` and load balancers probe /health without credentials.
    assert httpx.get(f"{closed_prefect.api_url}/health", timeout=30).status_code == 200
    assert httpx.post(f"{closed_prefect.api_url}/flows/filter", json={}, timeout=30).status_code == 401


async def test_websockets_work_with_the_auth_string_and_refuse_without(insider: PrefectServer) -> None:
    scope = StreamScope.for_workflow("closed-websockets")
    # Both feeds (events and logs) authenticate with the auth string the client has.
    async with events._live(events._Stream(None, scope, None), datetime.now(UTC)):
        pass
    wrong = temporary_settings(updates={PREFECT_API_AUTH_STRING: "trinity:a-guess"})
    with wrong, pytest.raises(events.EventStreamUnavailableError):
        async with events._live(events._Stream(None, scope, None), datetime.now(UTC)):
            pytest.fail("subscribed to a closed Prefect with a wrong auth string")
