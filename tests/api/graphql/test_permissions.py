"""Roles on GraphQL: a viewer reads and subscribes but cannot write; no key, no answer."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from gql.transport.exceptions import TransportQueryError
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.api.graphql.support import CREATE_SPEC, CREATE_WORKFLOW, EXECUTE, Keys, graphql, run
from tests.api.support import ApiServer, spec_document, workflow_document


def test_a_viewer_can_query_but_not_mutate(api: ApiServer, keys: Keys) -> None:
    name = f"perm-{uuid.uuid4().hex[:6]}"
    with graphql(api) as session:
        run(session, CREATE_SPEC, d=spec_document(name))
        workflow = run(session, CREATE_WORKFLOW, d=workflow_document(name, spec_name=name), s="ACTIVE")[
            "createWorkflow"
        ]
    with graphql(api, keys.viewer) as session:
        listed = run(session, "query($n: String) { workflows(name: $n) { edges { node { id } } } }", n=name)
        assert listed["workflows"]["edges"] == [{"node": {"id": workflow["id"]}}]
        for mutation, variables in (
            (EXECUTE, {"id": workflow["id"], "p": {"day": "2024-05-01"}}),
            (CREATE_SPEC, {"d": spec_document(f"{name}-x")}),
        ):
            with pytest.raises(TransportQueryError) as refused:
                run(session, mutation, **variables)
            error = refused.value.errors[0]  # type: ignore[index]
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert "role" in error["message"]
            assert refused.value.data is None  # no data for the refused field
    with graphql(api, keys.operator) as session:
        assert run(session, EXECUTE, id=workflow["id"], p={"day": "2024-05-01"})["executeWorkflow"]["state"]
        with pytest.raises(TransportQueryError) as refused:
            run(session, "mutation($id: ID!) { deleteWorkflow(id: $id) }", id=workflow["id"])
        assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"  # type: ignore[index]
    with graphql(api) as session:
        listed = run(session, "query($n: String) { workflows(name: $n) { totalCount } }", n=name)
        assert listed["workflows"]["totalCount"] == 1  # nothing was deleted


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "trn_not-a-key"}, {"Authorization": "Bearer nope"}])
def test_without_valid_credentials_nothing_runs(api: ApiServer, headers: dict[str, str]) -> None:
    response = httpx.post(
        f"{api.api}/graphql", json={"query": "{ workflows { totalCount } }"}, headers=headers, timeout=30
    )
    assert response.status_code == 401
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_bearer_token_works_like_the_key(api: ApiServer, keys: Keys) -> None:
    token = httpx.post(
        f"{api.api}/auth/token",
        data={"grant_type": "client_credentials", "client_secret": keys.viewer},
        timeout=30,
    )
    assert token.status_code == 200, token.text
    response = httpx.post(
        f"{api.api}/graphql",
        json={"query": "{ specifications(first: 1) { totalCount } }"},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["data"]["specifications"]["totalCount"] >= 0


def test_a_websocket_without_credentials_is_refused(api: ApiServer) -> None:
    url = api.url.replace("http", "ws", 1) + "/api/v1/graphql"
    with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=30) as socket:
        socket.send(json.dumps({"type": "connection_init", "payload": {"X-API-Key": "trn_wrong"}}))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=30)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
