"""A parameter pattern that backtracks: the API answers 422 and keeps serving meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from specs.parameters import validate_parameters
from specs.schema_limits import ParameterTimeoutError
from tests.api.support import ApiServer, make_settings, running_api_server, store_active_workflow
from tests.support.servers import PrefectServer

# As found: ~10 s of Python's re on the event loop. The regex module sees through this one...
NESTED_PLUS = {"pattern": "^(a+)+$", "value": "a" * 27 + "b"}
# ...but not through this one, which runs until the time limit stops it.
ALTERNATION = {"pattern": "^(a|aa)+$", "value": "a" * 40 + "!"}


def spec(pattern: str) -> dict[str, Any]:
    return {
        "kind": "Specification",
        "name": "redos",
        "version": "1.0.0",
        "parameters": {"type": "object", "properties": {"word": {"type": "string", "pattern": pattern}}},
    }


def workflow(name: str) -> dict[str, Any]:
    return {
        "kind": "Workflow",
        "name": name,
        "version": "1.0.0",
        "spec": {"name": "redos", "version": "^1.0.0"},
        "tasks": [{"id": "a", "uses": "noop"}],
    }


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, prefect_sqlite_server: PrefectServer
) -> Iterator[ApiServer]:
    folder = tmp_path_factory.mktemp("redos-api")
    settings = make_settings(
        f"sqlite:///{folder / 'trinity.db'}", state_dir=folder, prefect_api_url=prefect_sqlite_server.api_url
    )
    with running_api_server(settings) as server:
        yield server


def test_validation_stops_at_the_time_limit() -> None:
    schema = spec(ALTERNATION["pattern"])["parameters"]
    with pytest.raises(ParameterTimeoutError, match="parameter validation took too long"):
        validate_parameters(schema, {"word": ALTERNATION["value"]}, time_limit=0.2)
    assert validate_parameters(schema, {"word": "aaa"}, time_limit=0.2) == []


def test_the_pattern_as_found_is_a_plain_mismatch() -> None:
    schema = spec(NESTED_PLUS["pattern"])["parameters"]
    [problem] = validate_parameters(schema, {"word": NESTED_PLUS["value"]})
    assert problem.json_path == "$.word"
    assert "does not match" in problem.message


def test_api_answers_422_while_health_keeps_answering(api_server: ApiServer) -> None:
    stored = store_active_workflow(api_server, spec(ALTERNATION["pattern"]), workflow("redos-alternation"))
    answer: dict[str, httpx.Response] = {}

    def execute() -> None:
        answer["execute"] = api_server.client().post(
            f"/workflows/{stored['id']}/execute", json={"parameters": {"word": ALTERNATION["value"]}}
        )

    caller = threading.Thread(target=execute)
    caller.start()
    health: list[int] = []
    with httpx.Client(base_url=api_server.api, timeout=30) as client:
        while caller.is_alive():
            health.append(client.get("/health").status_code)
            time.sleep(0.05)
    caller.join()

    response = answer["execute"]
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"] == "parameter validation took too long"
    assert response.json()["error"]["details"][0]["loc"] == "$.parameters"
    # Answered while the parameters were being checked: the event loop was free.
    assert len(health) >= 3
    assert set(health) == {200}


def test_api_answers_the_pattern_as_found_with_a_located_422(api_server: ApiServer) -> None:
    stored = store_active_workflow(api_server, spec(NESTED_PLUS["pattern"]), workflow("redos-nested"))
    response = api_server.client().post(
        f"/workflows/{stored['id']}/execute", json={"parameters": {"word": NESTED_PLUS["value"]}}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"] == "$.parameters.word"
