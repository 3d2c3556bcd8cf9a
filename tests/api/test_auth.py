"""Authentication and roles: every route x every role, tokens, keys."""

from __future__ import annotations

import base64
import time
import uuid

import httpx
import jwt
import pytest

from tests.api.support import ADMIN_KEY, JWT_SECRET, ApiServer, create_key, forged, none_token, request_token

RANK = {"viewer": 0, "operator": 1, "admin": 2}
ID = str(uuid.uuid4())

# (method, path, minimum role, json body); {id} is a random UUID.
MATRIX = [
    ("GET", "/specs", "viewer", None),
    ("POST", "/specs", "admin", {"kind": "Specification"}),
    ("GET", "/specs/{id}", "viewer", None),
    ("PUT", "/specs/{id}", "admin", {"kind": "Specification"}),
    ("DELETE", "/specs/{id}", "admin", None),
    ("GET", "/workflows", "viewer", None),
    ("POST", "/workflows", "admin", {"kind": "Workflow"}),
    ("GET", "/workflows/{id}", "viewer", None),
    ("PUT", "/workflows/{id}", "admin", {"status": "active"}),
    ("DELETE", "/workflows/{id}", "admin", None),
    ("POST", "/workflows/{id}/execute", "operator", {"parameters": {}}),
    ("GET", "/workflows/{id}/runs", "viewer", None),
    ("GET", "/runs/{id}", "viewer", None),
    ("GET", "/runs/{id}/events", "viewer", None),
    ("GET", "/workflows/{id}/events", "viewer", None),
    ("GET", "/analytics/performance", "viewer", None),
    ("GET", "/analytics/insights", "viewer", None),
    ("GET", "/analytics/failures", "viewer", None),
    ("GET", "/keys", "admin", None),
    ("POST", "/keys", "admin", {"name": "k", "role": "viewer"}),
    ("DELETE", "/keys/{id}", "admin", None),
    ("GET", "/audit", "admin", None),
]
PUBLIC = [("GET", "/health"), ("POST", "/auth/token")]


def new_key(api: ApiServer, role: str) -> str:
    key, _ = create_key(api, role)
    return key


def token_for(api: ApiServer, key: str) -> str:
    response = request_token(api, key)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert response.headers["cache-control"] == "no-store"
    token: str = body["access_token"]
    return token


def call(api: ApiServer, method: str, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    return api.anonymous().request(method, path.format(id=ID), json=body, headers=headers)


def test_the_matrix_covers_every_operation(api: ApiServer) -> None:
    document = httpx.get(f"{api.api}/openapi.json", timeout=30).json()
    operations = {
        (method.upper(), path.removeprefix("/api/v1").replace("{spec_id}", "{id}"))
        for path, item in document["paths"].items()
        for method in item
    }
    normalised = set()
    for method, path in operations:
        for name in ("{workflow_id}", "{run_id}", "{key_id}"):
            path = path.replace(name, "{id}")
        normalised.add((method, path))
    assert normalised == {(m, p) for m, p, _, _ in MATRIX} | set(PUBLIC)


@pytest.mark.parametrize("via", ["api_key", "token"])
def test_every_route_for_every_role(api: ApiServer, via: str) -> None:
    keys = {"viewer": new_key(api, "viewer"), "operator": new_key(api, "operator"), "admin": ADMIN_KEY}
    failures = []
    for role, key in keys.items():
        headers = (
            {"X-API-Key": key} if via == "api_key" else {"Authorization": f"Bearer {token_for(api, key)}"}
        )
        for method, path, needed, body in MATRIX:
            response = call(api, method, path, body, headers)
            allowed = RANK[role] >= RANK[needed]
            if allowed and response.status_code in (401, 403):
                failures.append(f"{role} {method} {path}: {response.status_code} (should be allowed)")
            if not allowed and response.status_code != 403:
                failures.append(f"{role} {method} {path}: {response.status_code} (should be 403)")
            if response.status_code == 403:
                assert response.json()["error"]["code"] == "forbidden"
    assert failures == []


def test_bad_credentials_are_401_on_every_protected_route(api: ApiServer) -> None:
    admin_id = api.client().get("/keys").json()["items"][0]["id"]
    now = int(time.time())
    valid_claims: dict[str, object] = {
        "sub": admin_id,
        "role": "admin",
        "iss": "trinity",
        "iat": now,
        "exp": now + 300,
    }
    expired = dict(valid_claims, iat=now - 7200, exp=now - 3600)
    credentials = {
        "none": {},
        "unknown key": {"X-API-Key": "trn_not-a-real-key"},
        "expired token": {"Authorization": f"Bearer {forged(expired)}"},
        "wrong signature": {"Authorization": f"Bearer {forged(valid_claims, secret='x' * 40)}"},
        "alg none": {"Authorization": f"Bearer {none_token(valid_claims)}"},
        "HS512": {"Authorization": f"Bearer {forged(valid_claims, algorithm='HS512')}"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "basic scheme": {"Authorization": "Basic " + base64.b64encode(f"x:{ADMIN_KEY}".encode()).decode()},
        "empty key": {"X-API-Key": ""},
    }
    # The same claims, properly signed, work: the failures above are about the credential alone.
    good = call(api, "GET", "/specs", None, {"Authorization": f"Bearer {forged(valid_claims)}"})
    assert good.status_code == 200
    failures = []
    for label, headers in credentials.items():
        for method, path, _, body in MATRIX:
            response = call(api, method, path, body, headers)
            if response.status_code != 401 or "www-authenticate" not in response.headers:
                failures.append(f"{label} {method} {path}: {response.status_code}")
            elif response.json()["error"]["code"] != "unauthorized":
                failures.append(f"{label} {method} {path}: code {response.json()['error']['code']}")
    assert failures == []


def test_health_and_openapi_need_no_credentials(api: ApiServer) -> None:
    assert httpx.get(f"{api.api}/health", timeout=30).status_code == 200
    assert httpx.get(f"{api.api}/openapi.json", timeout=30).status_code == 200
    assert httpx.get(f"{api.api}/docs", timeout=30).status_code == 200


def test_token_endpoint_follows_client_credentials(api: ApiServer) -> None:
    url = f"{api.api}/auth/token"
    wrong_grant = httpx.post(url, data={"grant_type": "password", "client_secret": ADMIN_KEY})
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"]["code"] == "unsupported_grant_type"
    wrong_secret = httpx.post(url, data={"grant_type": "client_credentials", "client_secret": "trn_nope"})
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"]["code"] == "invalid_client"
    missing = httpx.post(url, data={"grant_type": "client_credentials"})
    assert missing.status_code == 401
    wrong_id = httpx.post(
        url, data={"grant_type": "client_credentials", "client_secret": ADMIN_KEY, "client_id": "someone"}
    )
    assert wrong_id.status_code == 401
    right_id = httpx.post(
        url, data={"grant_type": "client_credentials", "client_secret": ADMIN_KEY, "client_id": "bootstrap"}
    )
    assert right_id.status_code == 200
    basic = httpx.post(url, data={"grant_type": "client_credentials"}, auth=("bootstrap", ADMIN_KEY))
    assert basic.status_code == 200
    claims = jwt.decode(basic.json()["access_token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["role"] == "admin"
    assert claims["exp"] - claims["iat"] == 3600
    as_json = httpx.post(url, json={"grant_type": "client_credentials", "client_secret": ADMIN_KEY})
    assert as_json.status_code == 422


def test_keys_are_shown_once_and_stored_hashed(api: ApiServer) -> None:
    client = api.client()
    created = client.post("/keys", json={"name": "ci", "role": "operator"}).json()
    assert created["key"].startswith("trn_")
    assert created["key"].startswith(created["prefix"])
    listed = client.get("/keys").json()
    assert all("key" not in item for item in listed["items"])
    assert created["key"] not in str(listed)
    assert {item["role"] for item in listed["items"]} == {"admin", "operator"}
    viewer_client = api.client(created["key"])
    assert viewer_client.get("/specs").status_code == 200


def test_deleting_a_key_revokes_it_and_its_tokens(api: ApiServer) -> None:
    client = api.client()
    created = client.post("/keys", json={"name": "temp", "role": "viewer"}).json()
    token = token_for(api, created["key"])
    bearer = {"Authorization": f"Bearer {token}"}
    assert call(api, "GET", "/specs", None, bearer).status_code == 200
    assert client.delete(f"/keys/{created['id']}").status_code == 204
    assert call(api, "GET", "/specs", None, bearer).status_code == 401
    assert call(api, "GET", "/specs", None, {"X-API-Key": created["key"]}).status_code == 401


def test_the_last_admin_key_cannot_be_deleted(api: ApiServer) -> None:
    client = api.client()
    admin_id = client.get("/keys").json()["items"][0]["id"]
    response = client.delete(f"/keys/{admin_id}")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_admin_key"


def test_tokens_expire(api: ApiServer) -> None:
    admin_id = api.client().get("/keys").json()["items"][0]["id"]
    now = int(time.time())
    short = forged({"sub": admin_id, "role": "admin", "iss": "trinity", "iat": now - 20, "exp": now - 6})
    response = call(api, "GET", "/specs", None, {"Authorization": f"Bearer {short}"})
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


@pytest.mark.parametrize("name", ["", "x" * 256, "tab\there"])
def test_key_names_are_validated(api: ApiServer, name: str) -> None:
    assert api.client().post("/keys", json={"name": name, "role": "viewer"}).status_code == 422
