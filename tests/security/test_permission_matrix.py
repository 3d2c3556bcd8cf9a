"""The permission matrix: every /api/v1 route x 9 kinds of credentials -> the status it answers.

The table below is the contract, the same text as README's "Permission matrix" (checked here),
and every cell is requested from the real API (PostgreSQL, a real Prefect server). A row per route
of the application (checked against the app's own routes, so a new route needs a row).

Bodies are minimal, often invalid: the point is who gets past authentication and roles. A refused
caller gets 401 or 403 before the body is looked at; an allowed one gets the route's answer to
that body (404 for a random id, 422 for an invalid document). For ``WS /graphql``, ``ack`` is
graphql-transport-ws's ``connection_ack`` and ``4403`` its close code for a refused connection.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, WebSocketRoute
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from api.app import API_PREFIX
from tests.api.conftest import prefect_api_module
from tests.api.support import ADMIN_KEY, ApiServer, create_key, forged, none_token, request_token

__all__ = ["prefect_api_module"]

README = Path(__file__).resolve().parents[2] / "README.md"

MATRIX = """
| route | none | forged JWT | alg=none | expired JWT | revoked | viewer | viewer as admin | operator | admin |
|---|---|---|---|---|---|---|---|---|---|
| `GET /health` | 200 | 200 | 200 | 200 | 200 | 200 | 200 | 200 | 200 |
| `POST /auth/token` | 401 | 401 | 401 | 401 | 401 | 200 | 401 | 200 | 200 |
| `GET /openapi.json` | 200 | 200 | 200 | 200 | 200 | 200 | 200 | 200 | 200 |
| `GET /docs` | 200 | 200 | 200 | 200 | 200 | 200 | 200 | 200 | 200 |
| `GET /docs/oauth2-redirect` | 200 | 200 | 200 | 200 | 200 | 200 | 200 | 200 | 200 |
| `GET /docs/assets/{path}` | 200 | 200 | 200 | 200 | 200 | 200 | 200 | 200 | 200 |
| `GET /specs` | 401 | 401 | 401 | 401 | 401 | 200 | 200 | 200 | 200 |
| `POST /specs` | 401 | 401 | 401 | 401 | 401 | 403 | 403 | 403 | 422 |
| `GET /specs/{spec_id}` | 401 | 401 | 401 | 401 | 401 | 404 | 404 | 404 | 404 |
| `PUT /specs/{spec_id}` | 401 | 401 | 401 | 401 | 401 | 403 | 403 | 403 | 404 |
| `DELETE /specs/{spec_id}` | 401 | 401 | 401 | 401 | 401 | 403 | 403 | 403 | 404 |
| `GET /workflows` | 401 | 401 | 401 | 401 | 401 | 200 | 200 | 200 | 200 |
| `POST /workflows` | 401 | 401 | 401 | 401 | 401 | 403 | 403 | 403 | 422 |
| `GET /workflows/{workflow_id}` | 401 | 401 | 401 | 401 | 401 | 404 | 404 | 404 | 404 |
| `PUT /workflows/{workflow_id}` | 401 | 401 | 401 | 401 | 401 | 403 | 403 | 403 | 404 |
| `DELETE /workflows/{workflow_id}` | 401 | 401 | 401 | 401 | 401 | 403 | 403 | 403 | 404 |
| `POST /workflows/{workflow_id}/execute` | 401 | 401 | 401 | 401 | 401 | 403 | 403 | 404 | 404 |
| `GET /workflows/{workflow_id}/runs` | 401 | 401 | 401 | 401 | 401 | 404 | 404 | 404 | 404 |
| `GET /workflows/{workflow_id}/events` | 401 | 401 | 401 | 401 | 401 | 404 | 404 | 404 | 404 |
| `GET /runs/{run_id}` | 401 | 401 | 401 | 401 | 401 | 404 | 404 | 404 | 404 |
| `GET /runs/{run_id}/events` | 401 | 401 | 401 | 401 | 401 | 404 | 404 | 404 | 404 |
| `GET /analytics/performance` | 401 | 401 | 401 | 401 | 401 | 200 | 200 | 200 | 200 |
| `GET /analytics/insights` | 401 | 401 | 401 | 401 | 401 | 200 | 200 | 200 | 200 |
| `GET /analytics/failures` | 401 | 401 | 401 | 401 | 401 | 200 | 200 | 200 | 200 |
| `GET /keys` | 401 | 401 | 401 | 401 | 401 | 403 | 403 | 403 | 200 |
| `POST /keys` | 401 | 401 | 401 | 401 | 401 | 403 | 403 | 403 | 422 |
| `DELETE /keys/{key_id}` | 401 | 401 | 401 | 401 | 401 | 403 | 403 | 403 | 404 |
| `GET /audit` | 401 | 401 | 401 | 401 | 401 | 403 | 403 | 403 | 200 |
| `GET /graphql` | 404 | 404 | 404 | 404 | 404 | 404 | 404 | 404 | 404 |
| `POST /graphql` | 401 | 401 | 401 | 401 | 401 | 200 | 200 | 200 | 200 |
| `WS /graphql` | 4403 | 4403 | 4403 | 4403 | 4403 | ack | ack | ack | ack |
"""

# What each row sends besides the credentials: a JSON body, or form fields for the token endpoint.
BODIES: dict[str, Any] = {
    "POST /specs": {"kind": "Specification"},
    "PUT /specs/{spec_id}": {"kind": "Specification"},
    "POST /workflows": {"kind": "Workflow"},
    "PUT /workflows/{workflow_id}": {"status": "active"},
    "POST /workflows/{workflow_id}/execute": {"parameters": {}},
    "POST /keys": {"name": "", "role": "viewer"},
    "POST /graphql": {"query": "{ __typename }"},
}
PATH_VALUES = {"path": "swagger-ui.css"}  # any other {name} is a random UUID
GRAPHQL_WS = Subprotocol("graphql-transport-ws")


@dataclass(frozen=True)
class Credential:
    """A kind of caller: the headers it sends, and what it would give the token endpoint."""

    headers: dict[str, str]
    secret: str | None


def parse(table: str) -> tuple[list[str], dict[str, list[str]]]:
    """The kinds (columns) and, per route, the expected answers of a Markdown table."""
    lines = [line.strip() for line in table.strip().splitlines()]
    header, rows = lines[0], lines[2:]
    kinds = [cell.strip() for cell in header.strip("|").split("|")][1:]
    expected = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        expected[cells[0].strip("`")] = cells[1:]
    return kinds, expected


KINDS, EXPECTED = parse(MATRIX)


def claims(key_id: str, role: str, *, age: int = 0) -> dict[str, object]:
    now = int(time.time()) - age
    return {"sub": key_id, "role": role, "iss": "trinity", "iat": now, "exp": now + 300}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token(api: ApiServer, key: str) -> str:
    response = request_token(api, key)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def credentials(prefect_api_module: ApiServer) -> Iterator[dict[str, Credential]]:
    """One credential of each kind, made once for the whole table."""
    api = prefect_api_module
    api.reset()
    admin_id = next(k["id"] for k in api.client().get("/keys").json()["items"] if k["name"] == "bootstrap")
    viewer, viewer_id = create_key(api, "viewer", "matrix-viewer")
    operator, _ = create_key(api, "operator", "matrix-operator")
    revoked, revoked_id = create_key(api, "operator", "matrix-revoked")
    revoked_token = token(api, revoked)
    assert api.client().delete(f"/keys/{revoked_id}").status_code == 204
    as_admin = claims(admin_id, "admin")
    claiming = forged(claims(viewer_id, "admin"))
    made = {
        "none": Credential({}, None),
        "forged JWT": Credential(bearer(jwt := forged(as_admin, secret="x" * 64)), jwt),
        "alg=none": Credential(bearer(unsigned := none_token(as_admin)), unsigned),
        "expired JWT": Credential(bearer(old := forged(claims(admin_id, "admin", age=3600))), old),
        "revoked": Credential(bearer(revoked_token), revoked),
        "viewer": Credential({"X-API-Key": viewer}, viewer),
        "viewer as admin": Credential(bearer(claiming), claiming),
        "operator": Credential(bearer(token(api, operator)), operator),
        "admin": Credential({"X-API-Key": ADMIN_KEY}, ADMIN_KEY),
    }
    assert list(made) == KINDS
    yield made
    api.reset()


def websocket_answer(api: ApiServer, headers: dict[str, str]) -> str:
    """``ack`` when the connection is accepted, else the close code."""
    url = api.url.replace("http", "ws", 1) + f"{API_PREFIX}/graphql"
    with connect(url, subprotocols=[GRAPHQL_WS], additional_headers=headers, open_timeout=30) as socket:
        socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        try:
            message = json.loads(socket.recv(timeout=30))
        except ConnectionClosed as closed:
            return str(closed.rcvd.code) if closed.rcvd else "closed without a code"
    return "ack" if message.get("type") == "connection_ack" else f"unexpected {message}"


def answer(api: ApiServer, route: str, credential: Credential) -> str:
    method, template = route.split(" ", 1)
    path = template.format(**PATH_VALUES) if "{path}" in template else template
    if "{" in path:
        path = path.split("{", 1)[0] + str(uuid.uuid4()) + path.split("}", 1)[1]
    if method == "WS":
        return websocket_answer(api, credential.headers)
    if route == "POST /auth/token":
        return str(request_token(api, credential.secret).status_code)
    response = api.anonymous().request(method, path, json=BODIES.get(route), headers=credential.headers)
    if response.status_code in (401, 403) and template != "/graphql":
        code = response.json()["error"]["code"]
        assert code == {401: "unauthorized", 403: "forbidden"}[response.status_code], (route, code)
    return str(response.status_code)


def app_routes(api: ApiServer) -> set[str]:
    """``METHOD /path`` of every route the served application has under /api/v1."""
    routes = set()
    app = api.server.config.app
    assert isinstance(app, FastAPI)
    for route in iter_route_contexts(app.routes):
        path = str(route.path_format)
        if not path.startswith(API_PREFIX + "/"):
            continue
        path = path.removeprefix(API_PREFIX)
        if isinstance(route.original_route, Mount):
            methods = {"GET"}
        elif isinstance(route.original_route, WebSocketRoute) or route.methods is None:
            methods = {"WS"}
        else:
            methods = set(route.methods) - {"HEAD"}
        routes |= {f"{method} {path}" for method in methods}
    return routes


def test_the_table_has_a_row_for_every_route_of_the_app(prefect_api_module: ApiServer) -> None:
    assert set(EXPECTED) == app_routes(prefect_api_module)
    assert all(len(cells) == len(KINDS) == 9 for cells in EXPECTED.values())


def test_the_readme_shows_the_same_table() -> None:
    lines = [line.strip() for line in README.read_text().splitlines()]
    header = MATRIX.strip().splitlines()[0]
    assert header in lines, "README has no permission matrix with this header"
    start = lines.index(header)
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    assert lines[start:end] == MATRIX.strip().splitlines()


def test_every_cell_answers_as_the_table_says(
    prefect_api_module: ApiServer, credentials: dict[str, Credential]
) -> None:
    wrong = []
    for route, cells in EXPECTED.items():
        for kind, expected in zip(KINDS, cells, strict=True):
            got = answer(prefect_api_module, route, credentials[kind])
            if got != expected:
                wrong.append(f"{route} as {kind}: {got}, expected {expected}")
    assert wrong == []
