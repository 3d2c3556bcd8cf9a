"""``GET /metrics`` on the real API: open by default, behind credentials with
``metrics.require_auth``, and request latency by route template."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.support import ADMIN_KEY, ApiServer, make_settings, running_api_server

RAW_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")


def _serve(folder: Path, *, require_auth: bool) -> Iterator[ApiServer]:
    settings = make_settings(f"sqlite:///{folder / 'trinity.db'}", state_dir=folder)
    settings.metrics.require_auth = require_auth
    with running_api_server(settings) as server:
        yield server


@pytest.fixture(scope="module")
def open_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    yield from _serve(tmp_path_factory.mktemp("metrics-open"), require_auth=False)


@pytest.fixture(scope="module")
def closed_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    yield from _serve(tmp_path_factory.mktemp("metrics-closed"), require_auth=True)


def _latency_counts(text: str) -> dict[tuple[str, str, str], float]:
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "trinity_api_request_duration_seconds_count":
                labels = sample.labels
                counts[(labels["method"], labels["route"], labels["status"])] = sample.value
    return counts


def _scrape(server: ApiServer) -> httpx.Response:
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    return response


def test_metrics_need_no_credentials_by_default_and_name_routes_by_template(open_api: ApiServer) -> None:
    # The metrics live in the process, which other API servers of the test session share: count
    # what this test's requests add.
    before = _latency_counts(_scrape(open_api).text)
    client = open_api.client()
    for _ in range(3):
        assert client.get(f"/runs/{uuid.uuid4()}").status_code == 404
    assert client.get("/health").status_code == 200
    assert client.get("/no/such/route").status_code == 404

    response = _scrape(open_api)

    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert names
    assert all(name.startswith("trinity_") for name in names), names
    counts = _latency_counts(response.text)

    def added(key: tuple[str, str, str]) -> float:
        return counts.get(key, 0.0) - before.get(key, 0.0)

    assert added(("GET", "/api/v1/runs/{run_id}", "404")) == 3
    assert added(("GET", "/api/v1/health", "200")) >= 1
    assert added(("GET", "unmatched", "404")) == 1
    # Routes by template only: no label holds an id from a path.
    assert not [route for (_, route, _) in counts if RAW_ID.search(route)]


def test_metrics_ask_for_credentials_when_required(closed_api: ApiServer) -> None:
    anonymous = httpx.get(f"{closed_api.url}/metrics", timeout=10)
    with_key = httpx.get(f"{closed_api.url}/metrics", headers={"X-API-Key": ADMIN_KEY}, timeout=10)

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"]
    assert with_key.status_code == 200
    assert "trinity_api_request_duration_seconds" in with_key.text
