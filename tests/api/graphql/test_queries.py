"""Queries and mutations through a real GraphQL client, on real Prefect and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from gql.transport.exceptions import TransportQueryError

from api.db import normalise_url
from tests.api.graphql.support import CREATE_SPEC, CREATE_WORKFLOW, EXECUTE, Keys, graphql, run
from tests.api.live_support import fanout_workflow
from tests.api.support import ApiServer, spec_document, workflow_document

DAY = {"day": "2024-05-01"}


def _spec(session: Any, name: str) -> dict[str, Any]:
    created: dict[str, Any] = run(session, CREATE_SPEC, d=spec_document(name))["createSpecification"]
    return created


def test_workflows_page_through_a_relay_connection(api: ApiServer) -> None:
    prefix = f"paged-{uuid.uuid4().hex[:6]}"
    with graphql(api) as session:
        _spec(session, prefix)
        names = {f"{prefix}-{i}" for i in range(3)}
        for i, name in enumerate(sorted(names)):
            document: Any = workflow_document(name, spec_name=prefix)
            if i == 0:
                document = yaml.safe_dump(document)  # a document may also be sent as its YAML text
            created = run(session, CREATE_WORKFLOW, d=document)["createWorkflow"]
            assert created["status"] == "DRAFT"
            assert created["deployment"] is None
        seen: list[str] = []
        after = None
        query = """
        query($after: String) {
          workflows(first: 2, after: $after) {
            edges { cursor node { id name version status } }
            pageInfo { hasNextPage endCursor }
            totalCount
          }
        }"""
        while True:
            page = run(session, query, after=after)["workflows"]
            assert len(page["edges"]) <= 2
            seen += [edge["node"]["name"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
            assert after == page["edges"][-1]["cursor"]
        assert len(seen) == page["totalCount"]
        assert [name for name in seen if name in names] == sorted(names, reverse=True)  # newest first


def test_a_dashboard_reads_workflows_with_spec_runs_and_findings(api: ApiServer, keys: Keys) -> None:
    name = f"dash-{uuid.uuid4().hex[:6]}"
    with graphql(api) as session:
        spec = _spec(session, name)
        workflow = run(session, CREATE_WORKFLOW, d=workflow_document(name, spec_name=name), s="ACTIVE")[
            "createWorkflow"
        ]
        assert workflow["status"] == "ACTIVE"
        assert workflow["deployment"]["name"] == f"{name}/trinity"
    with graphql(api, keys.operator) as session:
        runs = [run(session, EXECUTE, id=workflow["id"], p=DAY)["executeWorkflow"] for _ in range(3)]
    assert {r["state"] for r in runs} == {"SCHEDULED"}
    _insert_insight(api, name)

    query = """
    query($id: ID!, $after: String) {
      workflow(id: $id) {
        name
        spec { id name version }
        versions { version status }
        runs(first: 2, after: $after) {
          edges { node { id state stateName runState { type name } workflowName parameters } }
          pageInfo { hasNextPage endCursor }
          totalCount
        }
        findings { kind title severity }
      }
    }"""
    with graphql(api, keys.viewer) as session:
        first = run(session, query, id=workflow["id"])["workflow"]
        assert first["spec"] == {"id": spec["id"], "name": name, "version": "1.0.0"}
        assert first["versions"] == [{"version": "1.0.0", "status": "ACTIVE"}]
        page = first["runs"]
        assert page["totalCount"] == 3
        assert [e["node"]["id"] for e in page["edges"]] == [r["id"] for r in reversed(runs)][:2]
        assert page["pageInfo"]["hasNextPage"] is True
        node = page["edges"][0]["node"]
        assert node["state"] == "SCHEDULED"
        assert node["runState"] == {"type": "SCHEDULED", "name": "Scheduled"}
        assert node["parameters"] == DAY
        assert first["findings"] == [
            {"kind": "bottleneck", "title": f"{name} is slow", "severity": "warning"}
        ]
        rest = run(session, query, id=workflow["id"], after=page["pageInfo"]["endCursor"])["workflow"]["runs"]
        assert [e["node"]["id"] for e in rest["edges"]] == [runs[0]["id"]]
        assert rest["pageInfo"]["hasNextPage"] is False

        detail = run(
            session, "query($id: ID!) { run(id: $id) { id state tasks { taskId } } }", id=runs[0]["id"]
        )
        assert detail["run"] == {"id": runs[0]["id"], "state": "SCHEDULED", "tasks": []}
        insights = run(session, "query($w: String) { insights(workflow: $w) { totalCount } }", w=name)
        assert insights["insights"]["totalCount"] == 1


def _insert_insight(api: ApiServer, workflow: str) -> None:
    engine = sa.create_engine(normalise_url(api.settings.database_url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO analytics_insights (id, workflow, task_id, window_start, window_end, kind,"
                    " title, severity, evidence, created_at) VALUES (:id, :w, NULL, now() - interval '1 day',"
                    " now(), 'bottleneck', :title, 'warning', '{}'::jsonb, now())"
                ),
                {"id": str(uuid.uuid4()), "w": workflow, "title": f"{workflow} is slow"},
            )
    finally:
        engine.dispose()


def test_execute_with_an_idempotency_key_returns_the_same_run(api: ApiServer, keys: Keys) -> None:
    name = f"idem-{uuid.uuid4().hex[:6]}"
    with graphql(api) as session:
        _spec(session, name)
        workflow = run(session, CREATE_WORKFLOW, d=workflow_document(name, spec_name=name), s="ACTIVE")[
            "createWorkflow"
        ]
    with graphql(api, keys.operator) as session:
        first = run(session, EXECUTE, id=workflow["id"], p=DAY, k="gql-key-1")["executeWorkflow"]
        again = run(session, EXECUTE, id=workflow["id"], p=DAY, k="gql-key-1")["executeWorkflow"]
        assert again["id"] == first["id"]
        with pytest.raises(TransportQueryError) as reused:
            run(session, EXECUTE, id=workflow["id"], p={"day": "2024-05-02"}, k="gql-key-1")
    error = reused.value.errors[0]  # type: ignore[index]
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["reason"] == "idempotency_key_reused"


def test_errors_carry_codes_and_located_details(api: ApiServer) -> None:
    with graphql(api) as session:
        with pytest.raises(TransportQueryError) as missing:
            run(session, "query($id: ID!) { workflow(id: $id) { name } }", id=str(uuid.uuid4()))
        assert missing.value.errors[0]["extensions"]["code"] == "NOT_FOUND"  # type: ignore[index]
        assert missing.value.data is None
        with pytest.raises(TransportQueryError) as malformed:
            run(session, 'query { workflow(id: "nope") { name } }')
        assert malformed.value.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"  # type: ignore[index]

        name = f"params-{uuid.uuid4().hex[:6]}"
        _spec(session, name)
        workflow = run(session, CREATE_WORKFLOW, d=workflow_document(name, spec_name=name), s="ACTIVE")[
            "createWorkflow"
        ]
        with pytest.raises(TransportQueryError) as invalid:
            run(session, EXECUTE, id=workflow["id"], p={"day": "yesterday"})
        error = invalid.value.errors[0]  # type: ignore[index]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert [d["loc"] for d in error["extensions"]["details"]] == ["$.parameters.day"]
        assert invalid.value.data is None

        with pytest.raises(TransportQueryError) as bad_document:
            run(session, CREATE_WORKFLOW, d={**fanout_workflow("x"), "tasks": []})
        assert bad_document.value.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"  # type: ignore[index]


def test_a_page_of_workflows_costs_the_same_queries_whatever_its_size(api: ApiServer) -> None:
    prefix = f"batch-{uuid.uuid4().hex[:6]}"
    with graphql(api) as session:
        _spec(session, prefix)
        for i in range(12):
            run(session, CREATE_WORKFLOW, d=workflow_document(f"{prefix}-{i:02d}", spec_name=prefix))
    engine = api.server.config.app.state.trinity.db.engine.sync_engine
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    query = """
    query($n: Int) {
      workflows(first: $n) { edges { node { name spec { name } versions { version }
        runs { totalCount edges { node { id state } } } findings { title } } } }
    }"""
    sizes = {}
    with graphql(api) as session:
        for size in (2, 12):
            statements.clear()
            sa.event.listen(engine, "before_cursor_execute", count)
            try:
                assert len(run(session, query, n=size)["workflows"]["edges"]) == size
            finally:
                sa.event.remove(engine, "before_cursor_execute", count)
            sizes[size] = len([s for s in statements if "api_keys" not in s])
    assert sizes[2] == sizes[12], sizes
