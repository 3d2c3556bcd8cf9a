"""Helpers for the live-event and GraphQL tests: a Prefect server that streams logs, an API on it,
a workflow with a fan-out, a retry and a failure, and running its flow runs for real.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from flows.worker.tuning import server_environment
from tests.api.support import ApiServer, make_settings, start_api_server, store_active_workflow
from tests.support.servers import PrefectServer, create_database, drop_database, start_prefect_server

REPO = Path(__file__).resolve().parents[2]
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@contextlib.contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_live_prefect(home: Path) -> PrefectServer:
    """A Prefect server as ``trinity up`` starts it: streaming logs, with the tuned flush intervals."""
    with _environ(server_environment({})):
        return start_prefect_server(home)


@contextlib.contextmanager
def live_api(prefect: PrefectServer, folder: Path, *, work_pool: str | None = None) -> Iterator[ApiServer]:
    """The API on PostgreSQL, talking to ``prefect`` (deploying to ``work_pool``, else the default)."""
    url = create_database("trinity_live_test")
    settings = make_settings(url, state_dir=folder, prefect_api_url=prefect.api_url, work_pool=work_pool)
    server = start_api_server(settings)
    try:
        yield server
    finally:
        server.stop()
        drop_database(url)


def live_stack_fixtures(scope: Literal["module", "package"], name: str) -> tuple[Any, Any]:
    """The fixtures ``live_prefect`` and ``api`` (on it), shared at ``scope``; assign them to those names."""

    @pytest.fixture(scope=scope)
    def live_prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
        server = start_live_prefect(tmp_path_factory.mktemp(f"prefect-{name}"))
        yield server
        server.stop()

    @pytest.fixture(scope=scope)
    def api(live_prefect: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
        with live_api(live_prefect, tmp_path_factory.mktemp(f"api-{name}")) as server:
            yield server

    return live_prefect, api


def fanout_spec(name: str = "fan") -> dict[str, Any]:
    return {
        "kind": "Specification",
        "name": name,
        "version": "1.0.0",
        "description": "A fan-out, a retry and a failure.",
        "parameters": {
            "type": "object",
            "properties": {"items": {"type": "array"}, "counter": {"type": "string"}},
            "required": ["items", "counter"],
        },
    }


def fanout_workflow(name: str, *, spec: str = "fan", nap: float = 2.0, fail: bool = True) -> dict[str, Any]:
    """``start`` -> ``fan`` (one run per item) and ``flaky`` (fails once, retried) -> ``nap`` -> ``end``."""
    end_argv = ["sh", "-c", "echo failing; exit 3"] if fail else ["echo", "done"]
    return {
        "kind": "Workflow",
        "name": name,
        "version": "1.0.0",
        "spec": {"name": spec, "version": "^1.0.0"},
        "tasks": [
            {"id": "start", "uses": "shell", "with": {"argv": ["echo", "starting"]}},
            {
                "id": "fan",
                "uses": "shell",
                "needs": ["start"],
                "for_each": "${{ params.items }}",
                "with": {"argv": ["echo", "item ${{ item }}"]},
            },
            {
                "id": "flaky",
                "uses": "python",
                "needs": ["start"],
                "retries": 1,
                "retry_delay_seconds": 0,
                "with": {
                    "callable": "flows.examples.flaky:succeed_after",
                    "kwargs": {"counter_path": "${{ params.counter }}", "failures": 1},
                },
            },
            {"id": "nap", "uses": "sleep", "needs": ["fan", "flaky"], "with": {"seconds": nap}},
            {"id": "end", "uses": "shell", "needs": ["nap"], "with": {"argv": end_argv}},
        ],
    }


def active_fanout(api: ApiServer, name: str, **kwargs: Any) -> dict[str, Any]:
    """Store the spec (once) and an active workflow through REST; returns the workflow."""
    return store_active_workflow(api, fanout_spec(), fanout_workflow(name, **kwargs))


def run_parameters(folder: Path, items: int = 3) -> dict[str, Any]:
    return {"items": list(range(1, items + 1)), "counter": str(folder / f"counter-{uuid.uuid4().hex}")}


def execute(api: ApiServer, workflow_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
    response = api.client().post(f"/workflows/{workflow_id}/execute", json={"parameters": parameters})
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    return run


def start_flow_run(prefect: PrefectServer, api: ApiServer, flow_run_id: str) -> subprocess.Popen[bytes]:
    """Run the flow run in a child process, as a worker would (``prefect flow-run execute``)."""
    env = dict(prefect.env, PREFECT_API_URL=prefect.api_url, PREFECT_LOGGING_LEVEL="INFO")
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    env["TRINITY_DATABASE_URL"] = api.settings.database_url
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", "flow-run", "execute", flow_run_id],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def recorded(prefect: PrefectServer, flow_run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What Prefect recorded for a flow run: its state events (own and tasks') and its log lines."""
    events: list[dict[str, Any]] = []
    body = {
        "filter": {
            "any_resource": {"id": [f"prefect.flow-run.{flow_run_id}"]},
            "event": {"prefix": ["prefect.flow-run.", "prefect.task-run."]},
            "occurred": {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"},
            "order": "ASC",
        },
        "limit": 50,
    }
    page = httpx.post(f"{prefect.api_url}/events/filter", json=body, timeout=30).json()
    while True:
        events += [e for e in page["events"] if "prefect.state-type" in e["resource"]]
        if not page.get("next_page"):
            break
        page = httpx.get(page["next_page"], timeout=30).json()
    logs: list[dict[str, Any]] = []
    while True:
        page = httpx.post(
            f"{prefect.api_url}/logs/filter",
            json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200, "offset": len(logs)},
            timeout=30,
        ).json()
        logs += page
        if len(page) < 200:
            return events, logs


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def assert_complete_stream(received: list[dict[str, Any]], prefect: PrefectServer, flow_run_id: str) -> None:
    """Every state change and log line Prefect recorded arrived exactly once, each feed in order."""
    events, logs = recorded(prefect, flow_run_id)
    states = [e for e in received if e["type"] != "log"]
    lines = [e for e in received if e["type"] == "log"]
    got_states = Counter((_at(e["timestamp"]), e["state_name"]) for e in states)
    want_states = Counter((_at(e["occurred"]), e["resource"]["prefect.state-name"]) for e in events)
    assert got_states == want_states, (got_states - want_states, want_states - got_states)
    assert max(got_states.values()) == 1, "a state change arrived twice"
    assert Counter(e["message"] for e in lines) == Counter(log["message"] for log in logs)
    assert len(lines) == len(logs)
    assert [_at(e["timestamp"]) for e in states] == sorted(_at(e["timestamp"]) for e in states)
    assert [_at(e["timestamp"]) for e in lines] == sorted(_at(e["timestamp"]) for e in lines)
    ids = [e["id"] for e in received]
    assert len(set(ids)) == len(ids), "two events share an id"


def task_states(received: list[dict[str, Any]], task: str) -> list[str]:
    """The state names one spec task went through, in the order they arrived."""
    return [e["state_name"] for e in received if e["type"] == "task_run.state" and e["task"] == task]


def assert_fanout_story(received: list[dict[str, Any]], *, items: int = 3) -> None:
    """The fan-out ran once per item, the flaky task was retried, the last task failed the run."""
    assert task_states(received, "flaky") == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    assert task_states(received, "end") == ["Pending", "Running", "Failed"]
    assert task_states(received, "fan").count("Completed") == items
    flow = [e["state"] for e in received if e["type"] == "flow_run.state"]
    assert flow[0] == "SCHEDULED"
    assert flow[-1] == "FAILED"
    last_state = [e for e in received if e["type"] != "log"][-1]
    assert last_state["type"] == "flow_run.state"
    logged = [e["message"] for e in received if e["type"] == "log"]
    assert {f"stdout: item {i}" for i in range(1, items + 1)} <= set(logged)
    assert any(e["task"] == "fan" for e in received if e["type"] == "log")
