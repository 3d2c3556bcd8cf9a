"""Live run events as Server-Sent Events, against a real Prefect server, real runs and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from api.models.api_key import Role
from api.prefect import PrefectGateway
from api.security import Principal
from api.services import events as event_service
from deployments.events import StreamScope
from tests.api.live_support import (
    active_fanout,
    assert_complete_stream,
    assert_fanout_story,
    execute,
    fanout_spec,
    live_stack_fixtures,
    run_parameters,
    start_flow_run,
    task_states,
)
from tests.api.support import ADMIN_KEY, ApiServer
from tests.support.servers import PrefectServer

pytestmark = pytest.mark.slow


live_prefect, api = live_stack_fixtures("module", "live")


def read_stream(
    api: ApiServer,
    path: str,
    *,
    last_event_id: str | None = None,
    stop_when: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The ``data:`` events of one SSE connection and how it closed (``end``, ``error`` or None)."""
    headers = {"X-API-Key": ADMIN_KEY}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    received: list[dict[str, Any]] = []
    with (
        httpx.Client(base_url=api.api, timeout=60) as client,
        connect_sse(client, "GET", path, headers=headers) as source,
    ):
        source.response.raise_for_status()
        for message in source.iter_sse():
            if message.event in ("end", "error"):
                return received, message.event
            if not message.data:
                continue  # a keep-alive comment
            event = json.loads(message.data)
            assert event["id"] == message.id
            received.append(event)
            if stop_when is not None and stop_when(event):
                return received, None
    return received, None


def test_a_run_streams_every_state_change_and_log_line_once_in_order(
    api: ApiServer, live_prefect: PrefectServer, tmp_path: Path
) -> None:
    workflow = active_fanout(api, "sse-whole")
    run = execute(api, workflow["id"], run_parameters(tmp_path))
    process = start_flow_run(live_prefect, api, run["flow_run_id"])
    try:
        received, closing = read_stream(api, f"/runs/{run['id']}/events")
    finally:
        assert process.wait(timeout=120) == 0
    assert closing == "end"
    assert {e["type"] for e in received} == {"flow_run.state", "task_run.state", "log"}
    assert all(e["flow_run_id"] == run["flow_run_id"] for e in received)
    assert_fanout_story(received)
    assert_complete_stream(received, live_prefect, run["flow_run_id"])


def test_a_dropped_stream_resumes_with_last_event_id_without_loss_or_repeats(
    api: ApiServer, live_prefect: PrefectServer, tmp_path: Path
) -> None:
    workflow = active_fanout(api, "sse-resume", nap=3.0)
    run = execute(api, workflow["id"], run_parameters(tmp_path))
    process = start_flow_run(live_prefect, api, run["flow_run_id"])
    path = f"/runs/{run['id']}/events"
    try:
        # Drop the connection mid-run: after the first task's states, before the run ends.
        first, closing = read_stream(
            api, path, stop_when=lambda e: e["task"] == "start" and e["state_name"] == "Completed"
        )
        assert closing is None
        time.sleep(1.0)  # events go on while the client is away
        rest, closing = read_stream(api, path, last_event_id=first[-1]["id"])
    finally:
        assert process.wait(timeout=120) == 0
    assert closing == "end"
    received = first + rest
    assert_fanout_story(received)
    assert_complete_stream(received, live_prefect, run["flow_run_id"])

    # Once everything is settled, resuming after the last event has nothing to send: 204.
    deadline = time.monotonic() + 60
    while True:
        time.sleep(3.0)
        response = api.client().get(path, headers={"Last-Event-ID": received[-1]["id"]})
        if response.status_code == 204 or time.monotonic() > deadline:
            break
    assert response.status_code == 204, response.text[:300]


def test_the_stream_needs_credentials_and_a_valid_last_event_id(api: ApiServer, tmp_path: Path) -> None:
    workflow = active_fanout(api, "sse-auth")
    run = execute(api, workflow["id"], run_parameters(tmp_path))
    path = f"/runs/{run['id']}/events"
    anonymous = api.anonymous().get(path)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    bad = api.client().get(path, headers={"Last-Event-ID": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == "header.Last-Event-ID"
    missing = api.client().get("/runs/00000000-0000-0000-0000-000000000000/events")
    assert missing.status_code == 404


def test_streams_per_key_are_limited(api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_service, "MAX_STREAMS_PER_KEY", 2)
    workflow = active_fanout(api, "sse-limit")
    path = f"/workflows/{workflow['id']}/events"
    client = httpx.Client(base_url=api.api, headers={"X-API-Key": ADMIN_KEY}, timeout=60)
    with client:
        with client.stream("GET", path) as one, client.stream("GET", path) as two:
            assert one.status_code == two.status_code == 200
            third = client.get(path)
            assert third.status_code == 429
            assert third.json()["error"]["code"] == "too_many_streams"
            assert int(third.headers["Retry-After"]) >= 1
        # Closed streams give their slots back.
        deadline = time.monotonic() + 30
        while True:
            with client.stream("GET", path) as again:
                if again.status_code == 200 or time.monotonic() > deadline:
                    break
            time.sleep(0.2)
        assert again.status_code == 200


def test_a_workflow_stream_follows_its_runs(
    api: ApiServer, live_prefect: PrefectServer, tmp_path: Path
) -> None:
    workflow = active_fanout(api, "sse-workflow", nap=0.5)
    other = active_fanout(api, "sse-other", nap=0.5)
    headers = {"X-API-Key": ADMIN_KEY}
    received: list[dict[str, Any]] = []
    with (
        httpx.Client(base_url=api.api, timeout=60) as client,
        connect_sse(client, "GET", f"/workflows/{workflow['id']}/events", headers=headers) as source,
    ):
        source.response.raise_for_status()
        run = execute(api, workflow["id"], run_parameters(tmp_path))
        unrelated = execute(api, other["id"], run_parameters(tmp_path))
        processes = [start_flow_run(live_prefect, api, r["flow_run_id"]) for r in (unrelated, run)]
        try:
            for message in source.iter_sse():
                if not message.data:
                    continue  # a keep-alive comment
                event = json.loads(message.data)
                received.append(event)
                if event["type"] == "flow_run.state" and event["state"] == "FAILED":
                    break
        finally:
            assert [p.wait(timeout=120) for p in processes] == [0, 0]
    assert {e["flow_run_id"] for e in received} == {run["flow_run_id"]}
    assert task_states(received, "flaky") == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    assert [e["state"] for e in received if e["type"] == "flow_run.state"][-1] == "FAILED"


def test_a_slow_client_is_dropped_without_slowing_the_others(
    api: ApiServer, live_prefect: PrefectServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two readers of one run through the stream service: one reads along, one reads nothing.
    # (Over HTTP the kernel's and the server's send buffers would first absorb megabytes.)
    monkeypatch.setattr(event_service, "QUEUE_SIZE", 16)
    monkeypatch.setattr(event_service, "SLOW_CONSUMER_SECONDS", 1.0)
    spec = {**fanout_spec("chatty"), "parameters": {"type": "object"}}
    assert api.client().post("/specs", json=spec).status_code in (201, 409)
    chatty = {
        "kind": "Workflow",
        "name": "sse-chatty",
        "version": "1.0.0",
        "spec": {"name": "chatty", "version": "^1.0.0"},
        "tasks": [{"id": "talk", "uses": "shell", "with": {"argv": ["sh", "-c", TALK]}}],
    }
    created = api.client().post("/workflows", params={"status": "active"}, json=chatty)
    assert created.status_code == 201, created.text
    run = execute(api, created.json()["id"], {})
    process = start_flow_run(live_prefect, api, run["flow_run_id"])
    try:
        fast, slow_error = asyncio.run(_one_fast_one_stalled(live_prefect, uuid.UUID(run["flow_run_id"])))
    finally:
        assert process.wait(timeout=180) == 0
    assert "dropped" in slow_error
    received = [event.to_json() for event in fast]
    assert len([e for e in received if e["type"] == "log"]) >= TALK_LINES
    assert_complete_stream(received, live_prefect, run["flow_run_id"])


async def _one_fast_one_stalled(prefect: PrefectServer, flow_run_id: uuid.UUID) -> tuple[list[Any], str]:
    gateway = PrefectGateway(api_url=prefect.api_url)
    await gateway.start()
    registry = event_service.StreamRegistry()
    principal = Principal(key_id=uuid.uuid4(), name="test", role=Role.VIEWER, via="api_key")
    scope = StreamScope(flow_run_id=flow_run_id)
    streams = functools.partial(
        event_service.open_stream,
        prefect=gateway,
        registry=registry,
        principal=principal,
        scope=scope,
        after=None,
    )
    try:
        async with streams(description="stalled") as stalled, streams(description="fast") as reader:
            fast = [event async for event in reader]
            with pytest.raises(event_service.SlowConsumerError) as dropped:
                await anext(stalled)
            return fast, dropped.value.message
    finally:
        await gateway.close()


TALK_LINES = 300
TALK = f"for i in $(seq {TALK_LINES}); do printf 'line %s %0200d\\n' $i 0; done"
