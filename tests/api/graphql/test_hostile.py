"""Hostile operations are refused before anything runs: 4xx with a clear error, never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.graphql.limits import MAX_ALIASES, MAX_DEPTH
from tests.api.support import ADMIN_KEY, ApiServer

TIMEOUT = httpx.Timeout(15.0)  # a refused operation answers well within this


def post(api: ApiServer, body: Any) -> httpx.Response:
    return httpx.post(f"{api.api}/graphql", json=body, headers={"X-API-Key": ADMIN_KEY}, timeout=TIMEOUT)


def _deep(levels: int) -> str:
    inner = "id"
    for _ in range(levels):
        inner = f"workflows {{ edges {{ node {{ {inner} }} }} }}"
    return "{ " + inner + " }"


def test_a_too_deep_query_is_refused(api: ApiServer) -> None:
    response = post(api, {"query": _deep(MAX_DEPTH)})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert "exceeds maximum operation depth" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_many_aliases_are_refused(api: ApiServer) -> None:
    fields = " ".join(f"a{i}: workflows {{ totalCount }}" for i in range(MAX_ALIASES + 1))
    response = post(api, {"query": "{ " + fields + " }"})
    assert response.status_code == 400
    assert "aliases" in response.json()["errors"][0]["message"]


def test_a_too_costly_query_is_refused(api: ApiServer) -> None:
    query = """{ workflows(first: 100) { edges { node { runs(first: 100) { edges { node {
        tasks { name state } } } } } } } }"""
    response = post(api, {"query": query})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "too complex" in error["message"]


def test_a_wide_query_through_fragments_is_refused(api: ApiServer) -> None:
    fragment = "fragment W on Workflow { " + " ".join(f"f{i}: name" for i in range(20)) + " }"
    spreads = " ".join("...W" for _ in range(500))
    query = f"{{ workflows(first: 100) {{ edges {{ node {{ {spreads} }} }} }} }} {fragment}"
    response = post(api, {"query": query})
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{ workflows { " * 2000},  # unbalanced and huge
        {"query": "fragment A on Query { ...B } fragment B on Query { ...A } { ...A }"},
        [{"query": "{ workflows { totalCount } }"}] * 50,  # batches are not accepted
        {"query": "{ nope }"},
        {"query": "mutation { executeWorkflow(id: 1) }"},
        {"query": ""},
        {"nothing": True},
    ],
)
def test_malformed_operations_are_4xx(api: ApiServer, body: Any) -> None:
    response = post(api, body)
    assert 400 <= response.status_code < 500, response.text


def test_a_get_is_not_a_way_in(api: ApiServer) -> None:
    response = httpx.get(
        f"{api.api}/graphql",
        params={"query": "{ workflows { totalCount } }"},
        headers={"X-API-Key": ADMIN_KEY},
        timeout=TIMEOUT,
    )
    assert 400 <= response.status_code < 500
