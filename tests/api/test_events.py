"""Live run events as Server-Sent Events, against a real Prefect server, real runs and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from api.services import events as event_service
from tests.api.live_support import (
    active_fanout,
    assert_complete_stream,
    assert_fanout_story,
    execute,
    live_api,
    run_parameters,
    start_flow_run,
    start_live_prefect,
)
from tests.api.support import ADMIN_KEY, ApiServer
from tests.support.servers import PrefectServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    server = start_live_prefect(tmp_path_factory.mktemp("prefect-live"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(live_prefect: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with live_api(live_prefect, tmp_path_factory.mktemp("api-live")) as server:
        yield server


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
    time.sleep(6.0)
    response = api.client().get(path, headers={"Last-Event-ID": received[-1]["id"]})
    assert response.status_code == 204


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
