"""/api/v1/health reports the database and the Prefect API."""

from __future__ import annotations

import httpx

from tests.api.support import ApiServer


def test_health_without_prefect(api: ApiServer) -> None:
    body = httpx.get(f"{api.api}/health", timeout=30).json()
    assert body["database"] == {"status": "up", "detail": None}
    assert body["prefect"]["status"] == "down"
    assert body["status"] == "degraded"


def test_health_with_prefect(prefect_api_server: ApiServer) -> None:
    body = httpx.get(f"{prefect_api_server.api}/health", timeout=30).json()
    assert body == {
        "status": "ok",
        "database": {"status": "up", "detail": None},
        "prefect": {"status": "up", "detail": None},
    }
