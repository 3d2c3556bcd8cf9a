"""GraphQL test helpers: keys per role and a real GraphQL client (gql) on the API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gql import Client, GraphQLRequest
from gql.client import SyncClientSession
from gql.transport.httpx import HTTPXTransport

from tests.api.support import ADMIN_KEY, ApiServer


@dataclass(frozen=True)
class Keys:
    admin: str
    operator: str
    viewer: str

    @classmethod
    def create(cls, api: ApiServer) -> Keys:
        made = {}
        for role in ("operator", "viewer"):
            response = api.client().post("/keys", json={"name": f"graphql-{role}", "role": role})
            assert response.status_code == 201, response.text
            made[role] = response.json()["key"]
        return cls(admin=ADMIN_KEY, operator=made["operator"], viewer=made["viewer"])


@contextlib.contextmanager
def graphql(api: ApiServer, key: str | None = ADMIN_KEY) -> Iterator[SyncClientSession]:
    """A gql session on /api/v1/graphql, authenticated with ``key``."""
    headers = {"X-API-Key": key} if key else {}
    transport = HTTPXTransport(url=f"{api.api}/graphql", headers=headers, timeout=60)
    with Client(transport=transport, fetch_schema_from_transport=False) as session:
        yield session


def run(session: SyncClientSession, query: str, **variables: Any) -> dict[str, Any]:
    """Execute one operation; raises gql's TransportQueryError when it answers errors."""
    result: dict[str, Any] = session.execute(GraphQLRequest(query, variable_values=variables or None))
    return result


CREATE_SPEC = "mutation($d: JSON!) { createSpecification(document: $d) { id name version } }"
CREATE_WORKFLOW = """
mutation($d: JSON!, $s: WorkflowStatus) {
  createWorkflow(document: $d, status: $s) { id name version status deployment { id name } }
}"""
EXECUTE = """
mutation($id: ID!, $p: JSON, $k: String) {
  executeWorkflow(id: $id, parameters: $p, idempotencyKey: $k) { id state flowRunId }
}"""
