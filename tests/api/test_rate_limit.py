"""Per-principal rate limits: in-process and through a real Redis server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.ratelimit import MemoryRateLimiter, RedisRateLimiter
from tests.api.support import ADMIN_KEY, ApiServer, make_settings, running_api_server
from tests.support.servers import free_port


def test_memory_limiter_is_a_sliding_window() -> None:
    async def scenario() -> list[float | None]:
        limiter = MemoryRateLimiter(limit=3, window=0.5)
        results = [await limiter.hit("a") for _ in range(4)]
        results.append(await limiter.hit("b"))  # another principal has its own budget
        await asyncio.sleep(0.55)
        results.append(await limiter.hit("a"))
        return results

    results = asyncio.run(scenario())
    assert results[:3] == [None, None, None]
    assert results[3] is not None
    assert 0 < results[3] <= 0.5
    assert results[4] is None
    assert results[5] is None


@pytest.fixture
def limited_api(tmp_path: Path) -> Iterator[ApiServer]:
    settings = make_settings(f"sqlite:///{tmp_path / 't.db'}", state_dir=tmp_path, rate_limit="5/minute")
    with running_api_server(settings) as server:
        yield server


def test_over_the_limit_is_429_with_retry_after_per_principal(limited_api: ApiServer) -> None:
    admin = limited_api.client()
    other_key = admin.post("/keys", json={"name": "other", "role": "viewer"}).json()["key"]
    statuses = [admin.get("/specs").status_code for _ in range(6)]
    assert statuses[:4] == [200] * 4  # the key creation used the first request
    assert statuses[4:] == [429, 429]
    response = admin.get("/specs")
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert limited_api.client(other_key).get("/specs").status_code == 200
    assert httpx.get(f"{limited_api.api}/health", timeout=30).status_code == 200  # not limited


def test_redis_limiter_shares_the_budget_across_processes(redis_url: str) -> None:
    async def scenario() -> list[float | None]:
        # The server outlives the test (and serves other runs): a key of our own.
        key = f"test-{uuid.uuid4().hex}"
        first = RedisRateLimiter(url=redis_url, db=0, limit=3, window=60)
        second = RedisRateLimiter(url=redis_url, db=0, limit=3, window=60)
        results = [await first.hit(key), await second.hit(key), await first.hit(key), await second.hit(key)]
        await first.close()
        await second.close()
        return results

    results = asyncio.run(scenario())
    assert results[:3] == [None, None, None]
    assert results[3] is not None
    assert 0 < results[3] <= 60


def test_redis_limiter_lets_requests_through_when_redis_is_down() -> None:
    async def scenario() -> float | None:
        limiter = RedisRateLimiter(url=f"redis://127.0.0.1:{free_port()}", db=0, limit=1, window=60)
        try:
            return await limiter.hit("k")
        finally:
            await limiter.close()

    assert asyncio.run(scenario()) is None


def test_the_api_uses_redis_when_configured(tmp_path: Path, redis_url: str) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path / 't.db'}", state_dir=tmp_path, rate_limit="3/minute", redis_url=redis_url
    )
    with running_api_server(settings) as first, running_api_server(settings) as second:
        statuses = [
            first.client(ADMIN_KEY).get("/specs").status_code,
            second.client(ADMIN_KEY).get("/specs").status_code,
            first.client(ADMIN_KEY).get("/specs").status_code,
            second.client(ADMIN_KEY).get("/specs").status_code,
        ]
    assert statuses == [200, 200, 200, 429]
