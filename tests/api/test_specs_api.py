"""/api/v1/specs on SQLite and PostgreSQL: documents in JSON or YAML, immutable versions."""

from __future__ import annotations

import json

import yaml

from tests.api.support import ApiServer, spec_document, workflow_document

YAML = {"Content-Type": "application/yaml"}


def create_spec(api: ApiServer, **kwargs: object) -> dict[str, object]:
    response = api.client().post("/specs", json=spec_document(**kwargs))  # type: ignore[arg-type]
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_create_from_json_and_read_back(api: ApiServer) -> None:
    client = api.client()
    response = client.post("/specs", json=spec_document("orders", "1.2.0"))
    assert response.status_code == 201
    created = response.json()
    assert created["name"] == "orders"
    assert created["version"] == "1.2.0"
    assert created["description"] == "Nightly order export."
    assert response.headers["location"] == f"/api/v1/specs/{created['id']}"
    fetched = client.get(f"/specs/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert fetched.json()["document"]["parameters"]["required"] == ["day"]


def test_create_from_yaml(api: ApiServer) -> None:
    text = yaml.safe_dump(spec_document("yaml-spec", "0.1.0"))
    response = api.client().post("/specs", content=text, headers=YAML)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "yaml-spec"


def test_yaml_errors_are_located_by_line_and_json_path(api: ApiServer) -> None:
    text = "kind: Specification\nname: Bad Name\nversion: 1.0.0\nrequirements:\n  - id: R1\n"
    response = api.client().post("/specs", content=text, headers=YAML)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    by_loc = {detail["loc"]: detail for detail in error["details"]}
    assert "$.name" in by_loc
    assert by_loc["$.name"]["line"] == 2
    assert "$.requirements[0].text" in by_loc or "$.requirements[0]" in by_loc


def test_json_syntax_errors_are_located(api: ApiServer) -> None:
    response = api.client().post(
        "/specs",
        content='{"kind": "Specification",\n "name": }',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert details
    assert details[0]["line"] == 2


def test_wrong_kind_and_several_documents_are_refused(api: ApiServer) -> None:
    client = api.client()
    response = client.post("/specs", json=workflow_document())
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == "$.kind"
    two = yaml.safe_dump(spec_document("a")) + "---\n" + yaml.safe_dump(spec_document("b"))
    response = client.post("/specs", content=two, headers=YAML)
    assert response.status_code == 422
    assert "exactly one" in response.json()["error"]["message"]


def test_same_name_and_version_twice_is_409(api: ApiServer) -> None:
    client = api.client()
    assert client.post("/specs", json=spec_document("dup", "1.0.0")).status_code == 201
    response = client.post("/specs", json=spec_document("dup", "1.0.0", description="other"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_exists"
    assert client.post("/specs", json=spec_document("dup", "1.0.1")).status_code == 201


def test_put_same_content_is_a_no_op_and_changed_content_needs_a_new_version(api: ApiServer) -> None:
    client = api.client()
    created = create_spec(api, name="immutable", version="1.0.0")
    url = f"/specs/{created['id']}"
    same_in_yaml = yaml.safe_dump(spec_document("immutable", "1.0.0"))
    response = client.put(url, content=same_in_yaml, headers=YAML)
    assert response.status_code == 200
    assert response.json()["updated_at"] == created["updated_at"]

    changed = client.put(url, json=spec_document("immutable", "1.0.0", description="changed"))
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "immutable_version"

    bumped = client.put(url, json=spec_document("immutable", "1.1.0", description="changed"))
    assert bumped.status_code == 200
    assert bumped.json()["version"] == "1.1.0"
    assert bumped.json()["id"] == created["id"]

    renamed = client.put(url, json=spec_document("other-name", "9.0.0"))
    assert renamed.status_code == 409


def test_put_to_a_version_that_exists_is_409(api: ApiServer) -> None:
    client = api.client()
    first = create_spec(api, name="clash", version="1.0.0")
    create_spec(api, name="clash", version="2.0.0")
    response = client.put(f"/specs/{first['id']}", json=spec_document("clash", "2.0.0", description="x"))
    assert response.status_code == 409


def test_delete_and_404(api: ApiServer) -> None:
    client = api.client()
    created = create_spec(api, name="gone")
    assert client.delete(f"/specs/{created['id']}").status_code == 204
    response = client.get(f"/specs/{created['id']}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client.delete(f"/specs/{created['id']}").status_code == 404


def test_delete_of_a_spec_used_by_a_live_workflow_is_409_until_archived(api: ApiServer) -> None:
    client = api.client()
    spec = create_spec(api, name="used", version="1.0.0")
    workflow = client.post("/workflows", json=workflow_document("user", spec_name="used", spec_range="^1"))
    assert workflow.status_code == 201, workflow.text
    response = client.delete(f"/specs/{spec['id']}")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "in_use"
    archived = client.put(f"/workflows/{workflow.json()['id']}", json={"status": "archived"})
    assert archived.status_code == 200
    assert client.delete(f"/specs/{spec['id']}").status_code == 204
    kept = client.get(f"/workflows/{workflow.json()['id']}").json()
    assert kept["status"] == "archived"
    assert kept["spec"]["id"] is None


def test_list_is_paginated_and_filterable(api: ApiServer) -> None:
    client = api.client()
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        create_spec(api, name="paged", version=version)
    create_spec(api, name="another")
    page = client.get("/specs", params={"limit": 2, "offset": 0}).json()
    assert page["total"] == 4
    assert page["limit"] == 2
    assert page["offset"] == 0
    assert len(page["items"]) == 2
    rest = client.get("/specs", params={"limit": 2, "offset": 2}).json()
    seen = {item["id"] for item in page["items"]} | {item["id"] for item in rest["items"]}
    assert len(seen) == 4
    named = client.get("/specs", params={"name": "paged"}).json()
    assert named["total"] == 3
    assert {item["version"] for item in named["items"]} == {"1.0.0", "1.1.0", "2.0.0"}
    exact = client.get("/specs", params={"name": "paged", "version": "2.0.0"}).json()
    assert exact["total"] == 1


def test_unicode_survives_the_round_trip(api: ApiServer) -> None:
    description = "Exporte les commandes — 注文 📦"
    created = create_spec(api, name="unicode", description=description)
    fetched = api.client().get(f"/specs/{created['id']}").json()
    assert fetched["description"] == description


def test_nul_characters_are_refused_not_stored(api: ApiServer) -> None:
    document = spec_document("nul", description="bad\u0000value")
    response = api.client().post(
        "/specs", content=json.dumps(document), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]
