"""GraphQL against REST for a dashboard, and the live event stream (used by bench_api.py).

* Dashboard: 50 workflows with their last 10 runs each, read by one GraphQL query and by REST
  (``GET /workflows`` then ``GET /workflows/{id}/runs`` per workflow, 10 at a time): requests per
  load and p50/p95 latency of a whole load.
* Stream: one SSE stream of a run with a wide fan-out, executed for real (``prefect flow-run
  execute``): events per second delivered, and the latency from a state change in Prefect (the
  state's timestamp) to the client receiving it, p50/p95.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from deployments.events import PERSIST_LAG_SECONDS, log_hold_seconds

REPO = Path(__file__).resolve().parents[1]
# Workflows are activated, and stored definitions run, only with a definition key: one for this run.
os.environ.setdefault("TRINITY_DEFINITION_KEY", secrets.token_urlsafe(32))
WORKFLOWS = 50
RUNS_EACH = 10
QUERY = """{ workflows(first: 50) { edges { node { id name
  runs(first: 10) { edges { node { id state } } } } } } }"""


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def seed_dashboard(base: str, headers: dict[str, str]) -> None:
    """50 active workflows with 10 runs each (runs stay scheduled: no worker is needed)."""
    spec = {"kind": "Specification", "name": "dash", "version": "1.0.0"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        client.post("/specs", json=spec).raise_for_status()
        for i in range(WORKFLOWS):
            workflow = {
                "kind": "Workflow",
                "name": f"dash-{i:02d}",
                "version": "1.0.0",
                "spec": {"name": "dash", "version": "^1"},
                "tasks": [{"id": "only", "uses": "noop"}],
            }
            created = client.post("/workflows", params={"status": "active"}, json=workflow)
            created.raise_for_status()
            for _ in range(RUNS_EACH):
                client.post(f"/workflows/{created.json()['id']}/execute", json={}).raise_for_status()


async def _rest_load(client: httpx.AsyncClient) -> int:
    listed = (await client.get("/workflows", params={"limit": WORKFLOWS})).json()["items"]
    gate = asyncio.Semaphore(10)

    async def runs(workflow_id: str) -> None:
        async with gate:
            response = await client.get(f"/workflows/{workflow_id}/runs", params={"limit": RUNS_EACH})
            response.raise_for_status()

    await asyncio.gather(*(runs(w["id"]) for w in listed))
    return 1 + len(listed)


async def _graphql_load(client: httpx.AsyncClient) -> int:
    response = await client.post("/graphql", json={"query": QUERY})
    response.raise_for_status()
    assert len(response.json()["data"]["workflows"]["edges"]) == WORKFLOWS
    return 1


async def dashboard(base: str, headers: dict[str, str], loads: int) -> list[tuple[str, int, float, float]]:
    """(way, requests per load, p50 ms, p95 ms) for GraphQL and REST."""
    out = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        for name, load in (("GraphQL (1 query)", _graphql_load), ("REST", _rest_load)):
            await load(client)  # warm up
            times, requests = [], 0
            for _ in range(loads):
                start = time.perf_counter()
                requests = await load(client)
                times.append((time.perf_counter() - start) * 1000)
            out.append((name, requests, statistics.median(times), percentile(times, 95)))
    return out


def _fanout(items: int) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = {
        "kind": "Specification",
        "name": "wide",
        "version": "1.0.0",
        "parameters": {"type": "object", "properties": {"items": {"type": "array"}}},
    }
    workflow = {
        "kind": "Workflow",
        "name": "wide-fanout",
        "version": "1.0.0",
        "spec": {"name": "wide", "version": "^1"},
        "concurrency": {"max_parallel_tasks": 16},
        "tasks": [
            {"id": "start", "uses": "noop"},
            {"id": "each", "uses": "noop", "needs": ["start"], "for_each": "${{ params.items }}"},
        ],
    }
    return spec, workflow


def stream(base: str, headers: dict[str, str], prefect_env: dict[str, str], items: int) -> dict[str, float]:
    """Run a fan-out of ``items`` tasks and read its SSE stream; events/s and latency figures."""
    spec, workflow = _fanout(items)
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        client.post("/specs", json=spec).raise_for_status()
        created = client.post("/workflows", params={"status": "active"}, json=workflow)
        created.raise_for_status()
        run = client.post(
            f"/workflows/{created.json()['id']}/execute", json={"parameters": {"items": list(range(items))}}
        )
        run.raise_for_status()
        run_id, flow_run_id = run.json()["id"], run.json()["flow_run_id"]
        env = dict(prefect_env, PREFECT_LOGGING_LEVEL="WARNING")
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "flow-run", "execute", flow_run_id],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        arrivals: list[float] = []
        latencies: list[float] = []
        steady: list[float] = []
        connected = time.perf_counter()
        with client.stream("GET", f"/runs/{run_id}/events", timeout=300) as response:
            for line in response.iter_lines():
                if line.startswith("event: end"):
                    break
                if not line.startswith("data: "):
                    continue
                now = time.time()
                event = json.loads(line.removeprefix("data: "))
                if event["type"] == "log":
                    continue
                arrivals.append(time.perf_counter())
                occurred = datetime.fromisoformat(event["timestamp"]).astimezone(UTC).timestamp()
                latencies.append((now - occurred) * 1000)
                if arrivals[-1] - connected > PERSIST_LAG_SECONDS + 1.0:
                    steady.append(latencies[-1])
        process.wait(timeout=300)
        replay = _replay_rate(client, run_id)
    # Delivery rate while the run produces events: first to last state event received.
    span = max(arrivals[-1] - arrivals[0], 1e-9)
    return {
        "events": float(len(arrivals)),
        "events_per_second": len(arrivals) / span,
        "latency_p50_ms": statistics.median(latencies),
        "latency_p95_ms": percentile(latencies, 95),
        "steady_p50_ms": statistics.median(steady) if steady else float("nan"),
        "steady_p95_ms": percentile(steady, 95) if steady else float("nan"),
        "replay_events_per_second": replay,
    }


def _replay_rate(client: httpx.Client, run_id: str) -> float:
    """Events/s one stream delivers when nothing waits on the run: the finished run from its start."""
    time.sleep(PERSIST_LAG_SECONDS + log_hold_seconds() + 2.0)  # settled: served from Prefect's records
    count = 0
    start = time.perf_counter()
    with client.stream("GET", f"/runs/{run_id}/events", timeout=300) as response:
        for line in response.iter_lines():
            if line.startswith("event: end"):
                break
            count += line.startswith("data: ")
    return count / (time.perf_counter() - start)


def report(base: str, admin_key: str, prefect_env: dict[str, str], *, loads: int, items: int) -> None:
    """Print both measures (the figures quoted in the README's Benchmarks section)."""
    headers = {"X-API-Key": admin_key}
    seed_dashboard(base, headers)
    print(f"\ndashboard: {WORKFLOWS} workflows with their last {RUNS_EACH} runs, {loads} loads each")
    print(f"{'way':20} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for name, requests, p50, p95 in asyncio.run(dashboard(base, headers, loads)):
        print(f"{name:20} {requests:8d} {p50:8.1f} {p95:8.1f}")
    figures = stream(base, headers, prefect_env, items)
    print(
        f"\nlive stream (SSE) of a {items}-task fan-out: {figures['events']:.0f} state events at "
        f"{figures['events_per_second']:.0f} events/s (the run's pace); state change -> client "
        f"p50 {figures['latency_p50_ms']:.0f} ms, p95 {figures['latency_p95_ms']:.0f} ms; after the "
        f"stream's first {PERSIST_LAG_SECONDS + 1:g} s: p50 {figures['steady_p50_ms']:.0f} ms, "
        f"p95 {figures['steady_p95_ms']:.0f} ms\nthe same stream replayed (finished run, events and "
        f"logs): {figures['replay_events_per_second']:.0f} events/s"
    )
