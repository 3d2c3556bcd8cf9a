"""The audit trail: every change, execution, key and token event, every 401 and 403, and
``GET /audit`` with its filters, against the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import sqlalchemy as sa

from tests.api.support import ADMIN_KEY, ApiServer, spec_document, workflow_document
from trinity.core.urls import normalise_url

SECRET_VALUE = "s3cr3t-parameter-value"


def events(api: ApiServer, **filters: Any) -> list[dict[str, Any]]:
    """Every audit event matching ``filters``, newest first."""
    response = api.client().get("/audit", params={"limit": 500, **filters})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def only(api: ApiServer, **filters: Any) -> dict[str, Any]:
    found = events(api, **filters)
    assert len(found) == 1, found
    return found[0]


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def new_key(api: ApiServer, role: str) -> dict[str, Any]:
    response = api.client().post("/keys", json={"name": f"{role}-{uuid.uuid4().hex[:6]}", "role": role})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_specification_changes_are_recorded_with_who_what_and_a_body_digest(api: ApiServer) -> None:
    client = api.client()
    body = json.dumps(spec_document("audited", "1.0.0")).encode()
    created = client.post("/specs", content=body, headers={"content-type": "application/json"})
    assert created.status_code == 201
    spec = created.json()

    event = only(api, action="spec.create")
    assert event["outcome"] == "allowed"
    assert event["status_code"] == 201
    assert event["method"] == "POST"
    assert event["path"] == "/api/v1/specs"
    assert event["resource"] == {"type": "specification", "id": spec["id"], "version": "1.0.0"}
    assert event["actor"]["name"] == "bootstrap"
    assert event["actor"]["role"] == "admin"
    assert event["actor"]["token_id"] is None
    assert event["client_address"] == "127.0.0.1"
    assert event["body_sha256"] == sha256(body)
    assert event["reason"] is None
    occurred = datetime.fromisoformat(event["occurred_at"])
    assert abs((datetime.now(UTC) - occurred).total_seconds()) < 60

    again = client.put(f"/specs/{spec['id']}", json=spec_document("audited", "1.0.0"))
    assert again.status_code == 200  # the same content: a no-op, recorded all the same
    newer = client.put(f"/specs/{spec['id']}", json=spec_document("audited", "1.1.0"))
    assert newer.status_code == 200
    updates = events(api, action="spec.update")
    assert [e["resource"]["version"] for e in updates] == ["1.1.0", "1.0.0"]
    assert all(e["outcome"] == "allowed" and e["status_code"] == 200 for e in updates)

    assert client.delete(f"/specs/{spec['id']}").status_code == 204
    deleted = only(api, action="spec.delete")
    assert deleted["resource"]["id"] == spec["id"]
    assert deleted["status_code"] == 204
    assert deleted["body_sha256"] is None


def test_a_refused_change_leaves_no_allowed_event(api: ApiServer) -> None:
    client = api.client()
    assert client.post("/specs", json=spec_document("twice")).status_code == 201
    assert client.post("/specs", json=spec_document("twice")).status_code == 409
    assert len(events(api, action="spec.create")) == 1


def test_keys_and_tokens_are_recorded_without_secrets(api: ApiServer) -> None:
    created = new_key(api, "operator")
    event = only(api, action="key.create")
    assert event["resource"] == {"type": "api_key", "id": created["id"], "version": None}
    assert event["details"] == {"name": created["name"], "role": "operator", "prefix": created["prefix"]}

    response = httpx.post(
        f"{api.api}/auth/token",
        data={"grant_type": "client_credentials", "client_secret": created["key"]},
        timeout=30,
    )
    assert response.status_code == 200
    token = response.json()["access_token"]
    issued = only(api, action="token.issue")
    assert issued["outcome"] == "allowed"
    assert issued["actor"]["key_id"] == created["id"]
    assert issued["actor"]["role"] == "operator"
    assert issued["actor"]["token_id"] == _jti(token)
    assert issued["body_sha256"] is None  # the body is a credential

    assert api.client().delete(f"/keys/{created['id']}").status_code == 204
    revoked = only(api, action="key.revoke")
    assert revoked["resource"]["id"] == created["id"]

    listing = api.client().get("/audit", params={"limit": 500}).text
    assert created["key"] not in listing
    assert token not in listing
    assert ADMIN_KEY not in listing


def _jti(token: str) -> str:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return str(claims["jti"])


def test_every_401_and_403_is_recorded_with_the_reason(api: ApiServer) -> None:
    viewer = new_key(api, "viewer")
    anonymous = api.anonymous()
    body = json.dumps(spec_document()).encode()
    json_type = {"content-type": "application/json"}
    assert anonymous.post("/specs", content=body, headers=json_type).status_code == 401
    assert anonymous.get("/specs", headers={"X-API-Key": "trn_forged"}).status_code == 401
    assert anonymous.get("/keys", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401
    forbidden = api.client(viewer["key"]).delete(f"/keys/{uuid.uuid4()}")
    assert forbidden.status_code == 403
    token = httpx.post(
        f"{api.api}/auth/token",
        data={"grant_type": "client_credentials", "client_secret": viewer["key"]},
        timeout=30,
    ).json()["access_token"]
    with_token = anonymous.post(
        f"/workflows/{uuid.uuid4()}/execute",
        json={"parameters": {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert with_token.status_code == 403
    wrong = {"grant_type": "client_credentials", "client_secret": "nope"}
    wrong_secret = httpx.post(f"{api.api}/auth/token", data=wrong, timeout=30)
    assert wrong_secret.status_code == 401

    denied = events(api, outcome="denied")
    assert len(denied) == 6
    by_action = {e["action"]: e for e in denied}
    no_key = by_action["spec.create"]
    assert no_key["status_code"] == 401
    assert no_key["actor"] == {"key_id": None, "name": None, "role": None, "token_id": None}
    assert "authentication required" in no_key["reason"]
    assert no_key["body_sha256"] == sha256(body)
    assert by_action["GET /api/v1/specs"]["reason"] == "invalid API key"
    assert by_action["GET /api/v1/keys"]["status_code"] == 401
    revoke = by_action["key.revoke"]
    assert revoke["status_code"] == 403
    assert revoke["actor"]["key_id"] == viewer["id"]
    assert revoke["actor"]["role"] == "viewer"
    assert "needs the admin role" in revoke["reason"]
    execute = by_action["workflow.execute"]
    assert execute["actor"]["token_id"] == _jti(token)
    assert by_action["token.issue"]["reason"] == "invalid client credentials"
    assert all(e["client_address"] == "127.0.0.1" for e in denied)
    assert "nope" not in api.client().get("/audit").text


def test_only_admins_read_the_trail_and_the_filters_work(api: ApiServer) -> None:
    viewer = new_key(api, "viewer")
    operator = new_key(api, "operator")
    assert api.client(viewer["key"]).get("/audit").status_code == 403
    assert api.client(operator["key"]).get("/audit").status_code == 403
    refused = events(api, action="GET /api/v1/audit")
    assert {e["actor"]["name"] for e in refused} == {viewer["name"], operator["name"]}

    assert {e["actor"]["key_id"] for e in events(api, actor=viewer["id"])} == {viewer["id"]}
    assert len(events(api, actor=operator["name"])) == 1
    assert len(events(api, action="key.create")) == 2
    assert {e["outcome"] for e in events(api, outcome="allowed")} == {"allowed"}

    everything = events(api)
    assert len(everything) == 4
    times = [e["occurred_at"] for e in everything]
    assert times == sorted(times, reverse=True)
    newest = datetime.fromisoformat(times[0])
    assert events(api, since=(newest + timedelta(seconds=1)).isoformat()) == []
    assert len(events(api, until=(newest + timedelta(seconds=1)).isoformat())) == 4
    oldest = datetime.fromisoformat(times[-1])
    assert len(events(api, since=oldest.isoformat())) == 4

    page = api.client().get("/audit", params={"limit": 3, "offset": 1}).json()
    assert page["total"] == 4
    assert page["limit"] == 3
    assert page["offset"] == 1
    assert [e["id"] for e in page["items"]] == [e["id"] for e in everything[1:4]]


def test_bad_filters_get_the_structured_422(api: ApiServer) -> None:
    client = api.client()
    for params in ({"outcome": "maybe"}, {"since": "yesterday"}, {"limit": 0}, {"actor": ""}):
        response = client.get("/audit", params=params)
        assert response.status_code == 422, params
        body = response.json()["error"]
        assert body["code"] == "validation_error"
        assert body["details"][0]["loc"].startswith("query.")


def test_an_audit_row_is_committed_with_the_change(api: ApiServer) -> None:
    """The change and its event are one transaction: both in the database, at the same moment."""
    created = api.client().post("/specs", json=spec_document("together"))
    assert created.status_code == 201
    engine = sa.create_engine(normalise_url(api.settings.database_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT resource_id, outcome FROM audit_events WHERE action = 'spec.create'")
            ).one()
    finally:
        engine.dispose()
    assert str(uuid.UUID(row[0])) == created.json()["id"]
    assert row[1] == "allowed"


def test_workflow_lifecycle_and_execution_are_recorded(prefect_api_server: ApiServer) -> None:
    api = prefect_api_server
    client = api.client()
    spec = spec_document(
        parameters={"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}
    )
    assert client.post("/specs", json=spec).status_code == 201
    created = client.post("/workflows", params={"status": "active"}, json=workflow_document("audited-flow"))
    assert created.status_code == 201, created.text
    workflow = created.json()
    wid = workflow["id"]
    operator = new_key(api, "operator")
    body = json.dumps({"parameters": {"day": SECRET_VALUE}}).encode()
    executed = api.client(operator["key"]).post(
        f"/workflows/{wid}/execute", content=body, headers={"content-type": "application/json"}
    )
    assert executed.status_code == 202, executed.text
    run = executed.json()
    assert client.put(f"/workflows/{wid}", json={"status": "paused"}).status_code == 200
    assert client.delete(f"/workflows/{wid}").status_code == 204

    create = only(api, action="workflow.create")
    assert create["resource"] == {"type": "workflow", "id": wid, "version": "1.0.0"}
    assert create["details"] == {"status": "active"}
    execute = only(api, action="workflow.execute")
    assert execute["actor"]["key_id"] == operator["id"]
    assert execute["status_code"] == 202
    assert execute["resource"]["id"] == wid
    assert execute["details"] == {"run_id": run["id"], "flow_run_id": run["flow_run_id"], "replayed": False}
    assert execute["body_sha256"] == sha256(body)
    status = only(api, action="workflow.status")
    assert status["details"] == {"from": "active", "to": "paused"}
    assert only(api, action="workflow.delete")["resource"]["id"] == wid
    assert SECRET_VALUE not in client.get("/audit", params={"limit": 500}).text


def test_graphql_mutations_and_refusals_are_recorded(api: ApiServer) -> None:
    viewer = new_key(api, "viewer")
    mutation = "mutation($d: JSON!) { createSpecification(document: $d) { id version } }"
    payload = {"query": mutation, "variables": {"d": spec_document("through-graphql")}}
    done = api.client().post("/graphql", json=payload)
    assert done.status_code == 200, done.text
    spec_id = done.json()["data"]["createSpecification"]["id"]
    refused = api.client(viewer["key"]).post("/graphql", json=payload)
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = api.anonymous().post("/graphql", json=payload)
    assert anonymous.status_code == 401

    create = only(api, action="spec.create")
    assert create["resource"]["id"] == spec_id
    assert create["path"] == "/api/v1/graphql"
    forbidden = only(api, action="graphql.createSpecification")
    assert forbidden["outcome"] == "denied"
    assert forbidden["status_code"] == 403
    assert forbidden["actor"]["key_id"] == viewer["id"]
    unauthenticated = only(api, action="graphql")
    assert unauthenticated["status_code"] == 401


def test_a_denial_is_answered_even_when_recording_it_fails(api: ApiServer) -> None:
    """The trail must not turn a 401 into a 500: drop the table and the answer is the same."""
    engine = sa.create_engine(normalise_url(api.settings.database_url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_events RENAME TO audit_events_away"))
        try:
            response = api.anonymous().get("/specs")
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
        finally:
            with engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE audit_events_away RENAME TO audit_events"))
    finally:
        engine.dispose()
    time.sleep(0.1)
    assert events(api, outcome="denied") == []
