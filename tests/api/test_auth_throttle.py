"""Failed authentications and the token endpoint are limited per client address (429 with
Retry-After and the error body); every failure is an audit event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.ratelimit import MemoryRateLimiter, RedisRateLimiter
from tests.api.support import ADMIN_KEY, ApiServer, make_settings, running_api_server

OTHER_ADDRESS = "127.0.0.2"  # the whole of 127/8 is loopback on Linux: a second client address


@pytest.fixture
def throttled_api(tmp_path: Path) -> Iterator[ApiServer]:
    settings = make_settings(
        f"sqlite:///{tmp_path / 't.db'}",
        state_dir=tmp_path,
        auth_failure_rate_limit="5/minute",
        token_rate_limit="8/minute",
    )
    with running_api_server(settings) as server:
        yield server


def from_address(api: ApiServer, address: str) -> httpx.Client:
    client = httpx.Client(base_url=api.api, timeout=30, transport=httpx.HTTPTransport(local_address=address))
    api.clients.append(client)
    return client


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert "failed authentications" in error["message"] or "token requests" in error["message"]
    assert error["details"] == []


def test_wrong_keys_are_throttled_per_address_and_each_is_audited(throttled_api: ApiServer) -> None:
    client = from_address(throttled_api, "127.0.0.1")
    statuses = [client.get("/specs", headers={"X-API-Key": f"trn_wrong-{n}"}).status_code for n in range(5)]
    assert statuses == [401] * 5
    assert_throttled(client.get("/specs", headers={"X-API-Key": "trn_wrong-again"}))
    # While the address is over its budget, not even the right key is looked at.
    assert_throttled(client.get("/specs", headers={"X-API-Key": ADMIN_KEY}))
    assert_throttled(client.get("/specs", headers={"Authorization": "Bearer forged.token.here"}))

    other = from_address(throttled_api, OTHER_ADDRESS)
    allowed = other.get("/specs", headers={"X-API-Key": ADMIN_KEY})
    assert allowed.status_code == 200, allowed.text
    trail = other.get("/audit", params={"outcome": "denied"}, headers={"X-API-Key": ADMIN_KEY}).json()
    assert trail["total"] == 5  # the failures; the 429s try no credentials and are not recorded
    assert {e["client_address"] for e in trail["items"]} == {"127.0.0.1"}
    assert {e["reason"] for e in trail["items"]} == {"invalid API key"}


def test_the_token_endpoint_is_limited_per_address(throttled_api: ApiServer) -> None:
    form = {"grant_type": "client_credentials", "client_secret": ADMIN_KEY}
    client = from_address(throttled_api, "127.0.0.1")
    statuses = [client.post("/auth/token", data=form).status_code for _ in range(8)]
    assert statuses == [200] * 8
    assert_throttled(client.post("/auth/token", data=form))
    assert from_address(throttled_api, OTHER_ADDRESS).post("/auth/token", data=form).status_code == 200
    issued = throttled_api.client().get("/audit", params={"action": "token.issue"}).json()
    assert issued["total"] == 9


def test_failed_token_requests_count_as_failed_authentications(throttled_api: ApiServer) -> None:
    client = from_address(throttled_api, "127.0.0.1")
    wrong = {"grant_type": "client_credentials", "client_secret": "trn_not-a-key"}
    statuses = [client.post("/auth/token", data=wrong).status_code for _ in range(5)]
    assert statuses == [401] * 5
    assert_throttled(client.post("/auth/token", data={**wrong, "client_secret": ADMIN_KEY}))
    assert_throttled(client.get("/specs", headers={"X-API-Key": ADMIN_KEY}))
    refused = throttled_api.client().get("/audit", params={"action": "token.issue", "outcome": "denied"})
    # The admin client above is on 127.0.0.1 too, yet throttled: read the trail from elsewhere.
    assert refused.status_code == 429
    trail = from_address(throttled_api, OTHER_ADDRESS).get(
        "/audit", params={"action": "token.issue", "outcome": "denied"}, headers={"X-API-Key": ADMIN_KEY}
    )
    assert trail.json()["total"] == 5
    assert "trn_not-a-key" not in trail.text


def test_check_does_not_record() -> None:
    async def scenario() -> list[float | None]:
        limiter = MemoryRateLimiter(limit=2, window=60)
        results = [await limiter.check("a"), await limiter.hit("a"), await limiter.check("a")]
        results += [await limiter.hit("a"), await limiter.check("a"), await limiter.check("b")]
        return results

    results = asyncio.run(scenario())
    assert results[:5] == [None, None, None, None, results[4]]
    assert results[4] is not None
    assert 0 < results[4] <= 60
    assert results[5] is None


def test_check_does_not_record_in_redis(redis_url: str) -> None:
    async def scenario() -> list[float | None]:
        key = f"test-{uuid.uuid4().hex}"
        limiter = RedisRateLimiter(url=redis_url, db=0, limit=2, window=60, prefix="trinity:test:")
        try:
            results = [await limiter.check(key), await limiter.hit(key), await limiter.check(key)]
            results += [await limiter.hit(key), await limiter.check(key)]
        finally:
            await limiter.close()
        return results

    results = asyncio.run(scenario())
    assert results[:4] == [None, None, None, None]
    assert results[4] is not None
    assert 0 < results[4] <= 60
