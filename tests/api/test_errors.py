"""One error body everywhere, and no input that produces a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.support import ApiServer, spec_document, workflow_document

ERROR_KEYS = {"code", "message", "details"}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    for detail in body["error"]["details"]:
        assert {"loc", "msg"} <= set(detail)
    if code is not None:
        assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error


def test_framework_404_405_and_422_use_the_error_body(api: ApiServer) -> None:
    client = api.client()
    assert_error(client.get("/nowhere"), 404, "not_found")
    assert_error(httpx.get(api.url + "/not-api", timeout=30), 404, "not_found")
    not_allowed = client.patch("/specs")
    assert_error(not_allowed, 405, "method_not_allowed")
    assert set(not_allowed.headers["allow"].split(", ")) == {"GET", "POST"}
    by_id = client.patch(f"/specs/{'0' * 8}-0000-0000-0000-{'0' * 12}")
    assert set(by_id.headers["allow"].split(", ")) == {"GET", "PUT", "DELETE"}
    error = assert_error(client.get("/specs", params={"limit": 0}), 422, "validation_error")
    assert error["details"][0]["loc"] == "query.limit"


def test_non_uuid_ids_are_422_with_the_path_located(api: ApiServer) -> None:
    error = assert_error(api.client().get("/specs/not-a-uuid"), 422)
    assert error["details"][0]["loc"] == "path.spec_id"


def test_bad_execute_bodies_are_located(api: ApiServer) -> None:
    client = api.client()
    url = "/workflows/00000000-0000-0000-0000-000000000000/execute"
    error = assert_error(client.post(url, json={"parameters": [1]}), 422)
    assert error["details"][0]["loc"] == "$.parameters"
    error = assert_error(client.post(url, json={"params": {}}), 422)
    assert error["details"][0]["loc"] == "$.params"
    assert_error(client.post(url, content=b"{not json", headers={"Content-Type": "application/json"}), 422)


def bad_bodies() -> Iterator[tuple[str, bytes, str]]:
    yield "bad json", b'{"kind": "Specification", ', "application/json"
    yield "bad yaml", b"kind: [unclosed\n  name: x", "application/yaml"
    yield "yaml tab", b"kind: Specification\n\tname: x\n", "application/yaml"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(20):
        previous, name = chr(97 + i), chr(98 + i)
        bomb += f"{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}]\n"
    yield "alias bomb", bomb.encode(), "application/yaml"
    yield "not utf-8", b"\xff\xfe\x00k\x00i\x00n\x00d", "application/json"
    yield "lone surrogate", b'{"kind": "Specification", "name": "\\ud800"}', "application/json"
    yield "nul in key", b'{"kind": "Specification", "na\\u0000me": "x"}', "application/json"
    yield "raw nul", b"kind: Specification\x00\n", "application/yaml"
    yield "empty", b"", "application/json"
    yield "whitespace", b"   \n  ", "application/yaml"
    yield "json array", b"[1, 2, 3]", "application/json"
    yield "scalar", b"42", "application/json"
    yield "deep", b"[" * 5000 + b"]" * 5000, "application/json"
    yield "huge number", b'{"kind": "Specification", "name": "x", "version": 1e999}', "application/json"
    yield (
        "nan",
        b'{"kind": "Specification", "name": "a", "version": "1.0.0", "tags": [NaN]}',
        "application/json",
    )
    yield "python tag", b"!!python/object:os.system {}", "application/yaml"
    yield "binary", bytes(range(256)), "application/yaml"


@pytest.mark.parametrize(
    ("label", "body", "content_type"), list(bad_bodies()), ids=[b[0] for b in bad_bodies()]
)
def test_bad_document_bodies_are_4xx(api: ApiServer, label: str, body: bytes, content_type: str) -> None:
    client = api.client()
    for method, path in (("POST", "/specs"), ("POST", "/workflows")):
        response = client.request(method, path, content=body, headers={"Content-Type": content_type})
        assert 400 <= response.status_code < 500, f"{label} {method} {path}: {response.status_code}"
        assert_error(response, response.status_code)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "multipart/form-data", "image/png"]
)
def test_unsupported_content_types_are_415(api: ApiServer, content_type: str) -> None:
    response = api.client().post(
        "/specs", content=json.dumps(spec_document()), headers={"Content-Type": content_type}
    )
    assert_error(response, 415, "unsupported_media_type")


def test_a_missing_content_type_is_sniffed(api: ApiServer) -> None:
    response = api.client().post("/specs", content=json.dumps(spec_document("sniffed")).encode())
    assert response.status_code == 201, response.text


def test_oversized_bodies_are_413_by_length_and_by_stream(api: ApiServer) -> None:
    client = api.client()
    big = b"x" * (api.settings.server.max_body_bytes + 1)
    assert_error(client.post("/specs", content=big, headers={"Content-Type": "application/yaml"}), 413)

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"#" * 32768

    streamed = client.post("/specs", content=chunks(), headers={"Content-Type": "application/yaml"})
    assert_error(streamed, 413, "payload_too_large")
    execute = client.post(
        "/workflows/00000000-0000-0000-0000-000000000000/execute",
        json={"parameters": {"blob": "y" * (api.settings.server.max_body_bytes + 10)}},
    )
    assert_error(execute, 413)


@pytest.mark.parametrize(
    "params",
    [
        {"name": "\x00"},
        {"name": "a" * 1000},
        {"limit": "-1"},
        {"limit": "99999999999999999999"},
        {"offset": "1e3"},
        {"status": "nope"},
        {"spec_id": "zzz"},
    ],
)
def test_bad_query_parameters_are_422(api: ApiServer, params: dict[str, str]) -> None:
    assert_error(api.client().get("/workflows", params=params), 422, "validation_error")


@pytest.mark.parametrize(
    "params",
    [
        {"since": "0001-01-01T00:00:00+01:00"},
        {"until": "9999-12-31T23:59:59-01:00"},
        {"since": "not a date"},
        {"until": "2024-13-45"},
    ],
)
def test_out_of_range_dates_are_422(api: ApiServer, params: dict[str, str]) -> None:
    assert_error(api.client().get("/analytics/performance", params=params), 422)


def test_unicode_in_query_and_paths_is_fine(api: ApiServer) -> None:
    client = api.client()
    assert client.get("/specs", params={"name": "注文-📦"}).json()["total"] == 0
    assert client.get("/specs/💥").status_code == 422
    for raw in ("%ED%B3%BF", "%FF%FE", "%C0%AF"):  # a UTF-8 surrogate, invalid and overlong UTF-8
        assert client.get(f"/workflows?name={raw}").status_code in (200, 422)


def test_bad_idempotency_keys_are_422(api: ApiServer) -> None:
    response = api.client().post(
        "/workflows/00000000-0000-0000-0000-000000000000/execute",
        json={"parameters": {}},
        headers={"Idempotency-Key": "has space"},
    )
    assert_error(response, 422)


BIG = "1" * 5000  # past Python's 4300-digit limit on reading integers


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        ("POST", "/specs", '{"kind": "Specification", "name": "x", "version": "1.0.0", "n": %s}', "json"),
        ("POST", "/specs", '[{"kind": "Specification", "name": "x", "version": %s}]', "json"),
        ("POST", "/workflows", '{"kind": "Workflow", "name": "w", "tasks": [%s]}', "json"),
        ("PUT", "/workflows/{id}", '{"status": %s}', "json"),
        ("POST", "/workflows/{id}/execute", '{"parameters": {"day": %s}}', "json"),
        ("POST", "/keys", '{"name": "k", "role": %s}', "json"),
        ("POST", "/graphql", '{"query": "{ __typename }", "variables": {"n": %s}}', "json"),
    ],
)
def test_numbers_too_large_to_read_are_422(
    api: ApiServer, method: str, path: str, body: str, content_type: str
) -> None:
    client = api.client()
    assert client.post("/specs", json=spec_document()).status_code == 201
    workflow = client.post("/workflows", json=workflow_document()).json()
    response = client.request(
        method,
        path.format(id=workflow["id"]),
        content=body % BIG,
        headers={"content-type": f"application/{content_type}"},
    )
    error = assert_error(response, 422, "validation_error")
    assert error["message"] == "the request body holds a number too large to read"
    assert error["details"] == [{"loc": "$", "msg": "integers may have at most 4300 digits"}]
    # The connection and the server are fine afterwards.
    assert client.get("/specs").status_code == 200
