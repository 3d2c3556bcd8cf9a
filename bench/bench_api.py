"""Benchmark of the REST API on loopback, against PostgreSQL, beside Prefect's own API.

For each operation: capacity (requests/s with 50 concurrent clients in a closed loop), then
latency p50/p95/p99 at a fixed arrival rate of half that capacity (open loop: requests are sent
on schedule whether or not earlier ones finished, and latency counts from the scheduled time, so
queueing is not hidden). The bench starts its own PostgreSQL databases (on the server named by
TRINITY_TEST_PG_ADMIN_URL), a Prefect server, and uvicorn serving the API in a separate process.

    .venv/bin/python bench/bench_api.py [--duration 10] [--concurrency 50] [--workers 1]

Then GraphQL against REST for a dashboard and the live event stream (``bench/bench_live.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Workflows are activated, and stored definitions run, only with a definition key: one for this run.
os.environ.setdefault("TRINITY_DEFINITION_KEY", secrets.token_urlsafe(32))

from bench import bench_live  # noqa: E402
from bench.machine import cpu_model  # noqa: E402
from flows.worker.tuning import server_environment  # noqa: E402
from tests.support.servers import (  # noqa: E402
    create_database,
    drop_database,
    free_port,
    pg_admin_url,
    start_prefect_server,
)

JWT_SECRET = "bench-secret-" + "0123456789" * 4
ADMIN_KEY = "trn_bench-admin-key-0123456789abcdef"
READ_TARGET_P95_MS = 20.0

Request = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]
_SEQUENCE = itertools.count()  # unique request numbers across phases (POST /specs needs new names)


@dataclass
class Result:
    name: str
    capacity: float
    rate: float
    p50: float
    p95: float
    p99: float
    errors: int
    is_read: bool


def machine() -> str:
    cpu = cpu_model(platform.processor() or "unknown cpu")
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 1024**3:.1f} GiB"
    except (ValueError, OSError):
        memory = "unknown"
    with psycopg.connect(pg_admin_url()) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        pg_version = row[0] if row else "?"
    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {memory} RAM; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; PostgreSQL {pg_version}"
    )


async def _ok(request: Request, client: httpx.AsyncClient) -> bool:
    """Send one request; a transport error counts as a failure, like a 4xx/5xx answer."""
    try:
        response = await request(client, next(_SEQUENCE))
    except httpx.HTTPError:
        return False
    return response.status_code < 400


async def closed_loop(base: str, request: Request, *, concurrency: int, duration: float) -> tuple[float, int]:
    """Requests/s with ``concurrency`` clients each sending its next request when the last returns."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        done = errors = 0
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                done += 1
                errors += not await _ok(request, client)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - start), errors


async def open_loop(base: str, request: Request, *, rate: float, duration: float) -> tuple[list[float], int]:
    """Latencies (ms) of requests sent at a fixed rate, measured from their scheduled start."""
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        latencies: list[float] = []
        errors = 0
        start = time.perf_counter() + 0.05

        async def one(scheduled: float) -> None:
            nonlocal errors
            failed = not await _ok(request, client)
            latencies.append((time.perf_counter() - scheduled) * 1000)
            errors += failed

        tasks = []
        count = int(rate * duration)
        for index in range(count):
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
        return latencies, errors


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def measure(
    name: str, base: str, request: Request, *, concurrency: int, duration: float, is_read: bool
) -> Result:
    await closed_loop(base, request, concurrency=min(concurrency, 8), duration=1.0)  # warm up
    capacity, closed_errors = await closed_loop(base, request, concurrency=concurrency, duration=duration)
    rate = max(1.0, capacity / 2)
    latencies, open_errors = await open_loop(base, request, rate=rate, duration=duration)
    return Result(
        name=name,
        capacity=capacity,
        rate=rate,
        p50=statistics.median(latencies),
        p95=percentile(latencies, 95),
        p99=percentile(latencies, 99),
        errors=closed_errors + open_errors,
        is_read=is_read,
    )


def start_api(
    workdir: Path, database_url: str, prefect_api_url: str, workers: int
) -> tuple[subprocess.Popen[bytes], str]:
    config = workdir / "trinity.config.yml"
    config.write_text(
        json.dumps(
            {
                "server": {"workers": workers},
                "database": {"url": database_url, "pool_size": 20, "max_overflow": 30},
                "security": {"rate_limit": "100000000/hour", "jwt_secret": JWT_SECRET},
                "logging": {"level": "WARNING"},
                "prefect": {"api_url": prefect_api_url},
                "state_dir": str(workdir),
            }
        )
    )
    port = free_port()
    env = dict(os.environ, TRINITY_CONFIG=str(config), TRINITY_BOOTSTRAP_API_KEY=ADMIN_KEY)
    from api.db import migrate

    migrate(database_url)  # once, before the workers race for it
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--factory", "api.main:app_from_environment",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--log-level", "warning", "--no-access-log",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "api.log").open("wb"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the API did not start:\n{(workdir / 'api.log').read_text()[-3000:]}")


def prepare(base: str) -> tuple[str, str, str]:
    """A specification, an active workflow and one run; returns (workflow id, run id, deployment id)."""
    headers = {"X-API-Key": ADMIN_KEY}
    spec = {
        "kind": "Specification",
        "name": "bench",
        "version": "1.0.0",
        "parameters": {"type": "object", "properties": {"n": {"type": "integer", "default": 1}}},
    }
    workflow = {
        "kind": "Workflow",
        "name": "bench-flow",
        "version": "1.0.0",
        "spec": {"name": "bench", "version": "^1"},
        "tasks": [{"id": "only", "uses": "noop"}],
    }
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        client.post("/specs", json=spec).raise_for_status()
        created = client.post("/workflows", params={"status": "active"}, json=workflow)
        created.raise_for_status()
        run = client.post(f"/workflows/{created.json()['id']}/execute", json={"parameters": {"n": 2}})
        run.raise_for_status()
        return created.json()["id"], run.json()["id"], created.json()["deployment_id"]


def print_table(results: list[Result]) -> None:
    columns = ("capacity r/s", "rate r/s", "p50 ms", "p95 ms", "p99 ms", "errors")
    widths = (12, 9, 8, 8, 8, 6)
    print(f"{'operation':44} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for r in results:
        mark = ""
        if r.is_read:
            mark = "  (p95 target < 20 ms: " + ("met)" if r.p95 < READ_TARGET_P95_MS else "missed)")
        numbers = f"{r.capacity:12.0f} {r.rate:9.0f} {r.p50:8.1f} {r.p95:8.1f} {r.p99:8.1f} {r.errors:6d}"
        print(f"{r.name:44} {numbers}{mark}")


async def run_all(
    base: str, prefect: str, ids: tuple[str, str, str], args: argparse.Namespace
) -> list[Result]:
    workflow_id, run_id, deployment_id = ids
    auth = {"X-API-Key": ADMIN_KEY}
    batch = uuid.uuid4().hex[:8]
    flow_run_id = httpx.get(f"{base}/runs/{run_id}", headers=auth, timeout=30).json()["flow_run_id"]

    def spec_body(i: int) -> dict[str, object]:
        return {"kind": "Specification", "name": f"bench-{batch}-{i}", "version": "1.0.0"}

    operations: list[tuple[str, Request, bool]] = [
        ("API  GET /workflows", lambda c, i: c.get("/workflows", headers=auth), True),
        ("API  GET /runs/{id}", lambda c, i: c.get(f"/runs/{run_id}", headers=auth), True),
        ("API  POST /specs", lambda c, i: c.post("/specs", json=spec_body(i), headers=auth), False),
        (
            "API  POST /workflows/{id}/execute",
            lambda c, i: c.post(
                f"/workflows/{workflow_id}/execute", json={"parameters": {"n": i}}, headers=auth
            ),
            False,
        ),
    ]
    prefect_operations: list[tuple[str, Request, bool]] = [
        ("Prefect GET /flow_runs/{id}", lambda c, i: c.get(f"/flow_runs/{flow_run_id}"), False),
        (
            "Prefect POST /flow_runs/filter (limit 50)",
            lambda c, i: c.post("/flow_runs/filter", json={"limit": 50}),
            False,
        ),
        (
            "Prefect POST /deployments/{id}/create_flow_run",
            lambda c, i: c.post(
                f"/deployments/{deployment_id}/create_flow_run", json={"parameters": {"n": i}}
            ),
            False,
        ),
    ]
    results = []
    for name, request, is_read in operations:
        results.append(
            await measure(
                name, base, request, concurrency=args.concurrency, duration=args.duration, is_read=is_read
            )
        )
    for name, request, is_read in prefect_operations:
        results.append(
            await measure(
                name, prefect, request, concurrency=args.concurrency, duration=args.duration, is_read=is_read
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase and operation")
    parser.add_argument("--concurrency", type=int, default=50, help="clients in the closed loop")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--loads", type=int, default=20, help="dashboard loads per way (GraphQL, REST)")
    parser.add_argument("--fanout", type=int, default=200, help="tasks of the streamed fan-out run")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(
        f"api workers: {args.workers}; closed loop: {args.concurrency} clients; {args.duration:g}s a phase\n"
    )
    workdir = Path(tempfile.mkdtemp(prefix="trinity-bench-"))
    api_db = create_database("trinity_bench")
    prefect_db = create_database("prefect_bench")
    os.environ.update(server_environment())  # the Prefect server as `trinity up` runs it
    prefect = start_prefect_server(workdir / "prefect", database_url=prefect_db)
    os.environ["PREFECT_API_URL"] = prefect.api_url
    api_process = None
    try:
        api_process, base = start_api(workdir, api_db, prefect.api_url, args.workers)
        ids = prepare(base)
        results = asyncio.run(run_all(base, prefect.api_url, ids, args))
        print_table(results)
        live_env = dict(prefect.env, PREFECT_API_URL=prefect.api_url)
        bench_live.report(base, ADMIN_KEY, live_env, loads=args.loads, items=args.fanout)
    finally:
        if api_process is not None:
            api_process.terminate()
            api_process.wait(timeout=30)
        prefect.stop()
        drop_database(api_db)
        drop_database(prefect_db)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
