"""A real Prometheus (Debian's ``prometheus``) scrapes a running ``trinity worker --metrics-port``
and a running API's ``/metrics``; its HTTP API then answers with Trinity's counters."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.support import ApiServer, make_settings, running_api_server
from tests.flows.worker import support as workers
from tests.support.monitoring_servers import Prometheus
from tests.support.servers import PrefectServer, free_port

pytestmark = pytest.mark.anyio

OK_TASKS = [
    {"id": "first", "uses": "noop"},
    {"id": "second", "uses": "shell", "needs": ["first"], "with": {"argv": ["echo", "hi"]}},
]
HEALTH_REQUESTS = 'sum(trinity_api_request_duration_seconds_count{route="/api/v1/health",status="200"})'
FAILING_TASKS = [{"id": "broken", "uses": "shell", "with": {"argv": ["false"]}}]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiServer]:
    with running_api_server(make_settings(f"sqlite:///{tmp_path / 'api.db'}", state_dir=tmp_path)) as server:
        yield server


def _health_count(api: ApiServer) -> float:
    """How many ``/health`` 200s the API's own ``/metrics`` has counted so far."""
    text = httpx.get(f"{api.url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "trinity_api_request_duration_seconds_count"
        and sample.labels.get("route") == "/api/v1/health"
        and sample.labels.get("status") == "200"
    )


def _value(prometheus: Prometheus, expression: str) -> float | None:
    result = prometheus.query(expression)
    return float(result[0]["value"][1]) if result else None


async def _eventually(prometheus: Prometheus, expected: dict[str, float], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    seen: dict[str, float | None] = {}
    while time.monotonic() < deadline:
        seen = {expression: _value(prometheus, expression) for expression in expected}
        if seen == expected:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"Prometheus answered {seen}, expected {expected}")


async def test_prometheus_scrapes_the_worker_and_the_api(
    prefect_api: PrefectServer, api: ApiServer, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    pool, ok, failing = f"prom-{suffix}", f"prom-ok-{suffix}", f"prom-bad-{suffix}"
    ok_deployment = await workers.deploy_tasks(ok, pool, OK_TASKS)
    failing_deployment = await workers.deploy_tasks(failing, pool, FAILING_TASKS)
    port = free_port()
    env = workers.worker_env(prefect_api, workers.sqlite_trinity_database(tmp_path))
    command = [
        *workers.trinity_worker_command(pool, processes=1),
        "--metrics-port",
        str(port),
        "--metrics-host",
        "127.0.0.1",
    ]
    api_target = api.url.removeprefix("http://")
    prometheus = Prometheus(tmp_path / "prometheus", {"api": api_target, "worker": f"127.0.0.1:{port}"})
    with workers.running_worker(command, env, tmp_path / "worker.log") as worker:
        prometheus.start()
        try:
            ids = await workers.create_runs(ok_deployment, 3) + await workers.create_runs(
                failing_deployment, 2
            )
            await workers.wait_for(ids, workers.is_final, timeout=120, what="final")
            # The API's metrics live in this process, which the session's other API servers share.
            health_before = _health_count(api)
            for _ in range(4):
                assert api.client().get("/health").status_code == 200
            await _eventually(
                prometheus,
                {
                    'up{job="worker"}': 1.0,
                    'up{job="api"}': 1.0,
                    f'sum(trinity_runs_started_total{{workflow="{ok}"}})': 3.0,
                    f'sum(trinity_runs_completed_total{{workflow="{ok}",state="COMPLETED"}})': 3.0,
                    f'sum(trinity_runs_completed_total{{workflow="{failing}",state="FAILED"}})': 2.0,
                    f'sum(trinity_runs_failed_total{{workflow="{failing}",state="FAILED"}})': 2.0,
                    f'sum(trinity_runs_failed_total{{workflow="{ok}"}}) or vector(0)': 0.0,
                    f'sum(trinity_task_duration_seconds_count{{workflow="{ok}",task="second"}})': 3.0,
                    f'sum(trinity_task_runs_total{{workflow="{failing}",task="broken",state="FAILED"}})': 2.0,
                    f'sum(trinity_run_queue_wait_seconds_count{{workflow="{ok}"}})': 3.0,
                    f'sum(trinity_task_queue_wait_seconds_count{{workflow="{ok}"}})': 6.0,
                    "sum(trinity_executor_slots_busy)": 0.0,
                    HEALTH_REQUESTS: health_before + 4.0,
                },
            )
            # Every series the worker exposes is Trinity's.
            names = httpx.get(f"{prometheus.url}/api/v1/label/__name__/values", timeout=10).json()["data"]
            exposed = {name for name in names if not name.startswith(("up", "scrape_"))}
            assert exposed
            assert all(name.startswith("trinity_") for name in exposed), exposed
        finally:
            prometheus.stop()
        assert "Prometheus metrics at http://127.0.0.1:" in worker.log()
