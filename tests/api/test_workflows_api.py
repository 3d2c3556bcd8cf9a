"""/api/v1/workflows without Prefect: storage, spec resolution, status rules, filters."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.api.support import ApiServer, spec_document, workflow_document


@pytest.fixture
def draft(api: ApiServer) -> dict[str, Any]:
    """A draft workflow of the specification orders 1.0.0."""
    setup_specs(api, "1.0.0")
    body: dict[str, Any] = api.client().post("/workflows", json=workflow_document()).json()
    return body


def setup_specs(api: ApiServer, *versions: str, name: str = "orders") -> dict[str, str]:
    ids = {}
    for version in versions:
        response = api.client().post("/specs", json=spec_document(name, version))
        assert response.status_code == 201, response.text
        ids[version] = response.json()["id"]
    return ids


def test_a_workflow_binds_to_the_best_matching_spec(api: ApiServer) -> None:
    ids = setup_specs(api, "1.0.0", "1.4.0", "2.0.0")
    response = api.client().post("/workflows", json=workflow_document(spec_range="^1.0.0"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "draft"
    assert body["spec"] == {"id": ids["1.4.0"], "name": "orders", "range": "^1.0.0", "version": "1.4.0"}
    assert body["deployment_id"] is None
    assert body["definition"]["tasks"][1]["needs"] == ["extract"]


def test_yaml_workflow_bodies(api: ApiServer) -> None:
    setup_specs(api, "1.0.0")
    response = api.client().post(
        "/workflows",
        content=yaml.safe_dump(workflow_document("from-yaml")),
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "from-yaml"


def test_no_matching_spec_is_422_at_the_spec_path(api: ApiServer) -> None:
    client = api.client()
    missing = client.post("/workflows", json=workflow_document(spec_name="nobody"))
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["loc"] == "$.spec.name"
    setup_specs(api, "1.0.0")
    out_of_range = client.post("/workflows", json=workflow_document(spec_range="^3.0.0"))
    assert out_of_range.status_code == 422
    assert out_of_range.json()["error"]["details"][0]["loc"] == "$.spec.version"


def test_same_name_and_version_is_409(api: ApiServer) -> None:
    setup_specs(api, "1.0.0")
    client = api.client()
    assert client.post("/workflows", json=workflow_document()).status_code == 201
    assert client.post("/workflows", json=workflow_document()).status_code == 409


def test_invalid_transitions_are_409(api: ApiServer, draft: dict[str, Any]) -> None:
    client = api.client()
    url = f"/workflows/{draft['id']}"
    response = client.put(url, json={"status": "paused"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert client.put(url, json={"status": "draft"}).status_code == 200  # same status: no-op
    assert client.put(url, json={"status": "archived"}).json()["status"] == "archived"
    for target in ("draft", "active", "paused"):
        assert client.put(url, json={"status": target}).status_code == 409
    assert client.put(url, json=workflow_document(version="1.0.1")).status_code == 409


def test_bad_status_values_are_422(api: ApiServer, draft: dict[str, Any]) -> None:
    client = api.client()
    response = client.put(f"/workflows/{draft['id']}", json={"status": "running"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == "$.status"
    assert (
        client.post("/workflows", params={"status": "sleeping"}, json=workflow_document("x")).status_code
        == 422
    )


def test_a_new_workflow_cannot_start_paused_or_archived(api: ApiServer) -> None:
    setup_specs(api, "1.0.0")
    response = api.client().post("/workflows", params={"status": "archived"}, json=workflow_document())
    assert response.status_code == 409


def test_put_a_new_document_rebinds_the_spec(api: ApiServer) -> None:
    ids = setup_specs(api, "1.0.0", "2.0.0")
    client = api.client()
    workflow = client.post("/workflows", json=workflow_document(spec_range="^1")).json()
    assert workflow["spec"]["version"] == "1.0.0"
    updated = client.put(
        f"/workflows/{workflow['id']}", json=workflow_document(version="1.1.0", spec_range="^2")
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == "1.1.0"
    assert updated.json()["spec"]["id"] == ids["2.0.0"]
    renamed = client.put(f"/workflows/{workflow['id']}", json=workflow_document(name="renamed"))
    assert renamed.status_code == 409


def test_list_filters_by_name_and_status_and_paginates(api: ApiServer) -> None:
    setup_specs(api, "1.0.0")
    client = api.client()
    ids = []
    for index in range(3):
        body = client.post("/workflows", json=workflow_document(f"wf-{index}")).json()
        ids.append(body["id"])
    client.put(f"/workflows/{ids[0]}", json={"status": "archived"})
    archived = client.get("/workflows", params={"status": "archived"}).json()
    assert archived["total"] == 1
    assert archived["items"][0]["id"] == ids[0]
    drafts = client.get("/workflows", params={"status": "draft", "limit": 1}).json()
    assert drafts["total"] == 2
    assert len(drafts["items"]) == 1
    named = client.get("/workflows", params={"name": "wf-2"}).json()
    assert [item["id"] for item in named["items"]] == [ids[2]]


def test_delete_a_draft(api: ApiServer, draft: dict[str, Any]) -> None:
    client = api.client()
    assert client.delete(f"/workflows/{draft['id']}").status_code == 204
    assert client.get(f"/workflows/{draft['id']}").status_code == 404


def test_activation_without_prefect_is_503_and_leaves_the_status(
    api: ApiServer, draft: dict[str, Any]
) -> None:
    client = api.client()
    response = client.put(f"/workflows/{draft['id']}", json={"status": "active"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "prefect_unavailable"
    assert int(response.headers["retry-after"]) > 0
    assert client.get(f"/workflows/{draft['id']}").json()["status"] == "draft"


def test_executing_a_draft_is_409(api: ApiServer, draft: dict[str, Any]) -> None:
    client = api.client()
    response = client.post(f"/workflows/{draft['id']}/execute", json={"parameters": {"day": "2024-01-01"}})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "workflow_not_active"
