"""What feeding the sinks costs a ``trinity worker``, and how live the sinks are.

One command, one run, everything on this machine: a SQLite-backed Prefect server, a real InfluxDB
1.x (Debian's ``influxd``) and a local Elasticsearch wire server (tests/support/wire_servers.py,
which validates and stores every bulk request as Elasticsearch would). The 10-task no-op DAG is
deployed once per phase; each phase starts one ``trinity worker`` and times from the first run's
creation to the last run's end.

* ``off`` -- the baseline: no sinks configured;
* ``on`` -- ``sinks.influxdb`` and ``sinks.elasticsearch`` configured (points, run and task
  documents, log lines).

Printed: runs/min of each phase and the ratio on/off (target >= 0.95), then the live latency:
for a few runs, one at a time, the time from the run's end (as Prefect recorded it) to its
``trinity_flow_run`` point being answered by an InfluxQL query.

    .venv/bin/python bench/bench_sinks.py [--runs 200] [--latency-samples 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Workflows are activated, and stored definitions run, only with a definition key: one for this run.
os.environ.setdefault("TRINITY_DEFINITION_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-sinks-home-"))

from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: E402

from bench.machine import cpu_model  # noqa: E402
from tests.flows.worker.support import (  # noqa: E402
    NOOP_DAG,
    create_runs,
    deploy_tasks,
    is_final,
    read_runs,
    running_worker,
    sqlite_trinity_database,
    trinity_worker_command,
    wait_for,
    worker_env,
)
from tests.support.monitoring_servers import InfluxDB  # noqa: E402
from tests.support.servers import PrefectServer, start_prefect_server  # noqa: E402
from tests.support.wire_servers import FakeElasticsearch, serving  # noqa: E402


async def _phase(
    server: PrefectServer, folder: Path, *, runs: int, config: Path | None, label: str
) -> tuple[float, list[uuid.UUID]]:
    """Runs per minute of one worker over ``runs`` runs of the no-op DAG."""
    pool = f"bench-{label}-{uuid.uuid4().hex[:6]}"
    deployment = await deploy_tasks(f"bench-sinks-{label}", pool, NOOP_DAG)
    env = worker_env(server, sqlite_trinity_database(folder))
    if config is not None:
        env["TRINITY_CONFIG"] = str(config)
    command = trinity_worker_command(pool, processes=2, concurrency=8)
    with running_worker(command, env, folder / f"worker-{label}.log"):
        # Warm-up: the executors import Prefect and load the flow once.
        await wait_for(await create_runs(deployment, 2), is_final, timeout=300, what="final")
        started = time.monotonic()
        ids = await create_runs(deployment, runs)
        done = await wait_for(ids, is_final, timeout=1800, what="final")
        elapsed = time.monotonic() - started
    failed = sorted(str(run.state_name) for run in done if run.state_name != "Completed")
    if failed:
        # Said, not hidden: on a loaded machine a run may be crashed by the missing-heartbeat
        # automation whether sinks are on or off.
        print(f"{label}: {len(failed)} of {runs} run(s) did not complete: {', '.join(failed)}")
    return runs / elapsed * 60, ids


async def _latency(
    server: PrefectServer, folder: Path, config: Path, influx: InfluxDB, samples: int
) -> list[float]:
    """Seconds from each run's end to its point being queryable, one run at a time."""
    pool = f"bench-latency-{uuid.uuid4().hex[:6]}"
    name = f"bench-latency-{uuid.uuid4().hex[:6]}"
    deployment = await deploy_tasks(name, pool, NOOP_DAG[:1])
    env = worker_env(server, sqlite_trinity_database(folder)) | {"TRINITY_CONFIG": str(config)}
    latencies = []
    with running_worker(trinity_worker_command(pool, processes=1), env, folder / "worker-latency.log"):
        await wait_for(await create_runs(deployment, 1), is_final, timeout=300, what="final")
        for _ in range(samples):
            (run_id,) = await create_runs(deployment, 1)
            await wait_for([run_id], is_final, timeout=120, what="final")
            query = f"SELECT count(attempt) FROM trinity_flow_run WHERE flow_run_id = '{run_id}'"
            deadline = time.monotonic() + 60
            while not influx.query(query, "trinity") and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            seen = time.time()
            (run,) = await read_runs([run_id])
            assert run.end_time is not None
            latencies.append(seen - run.end_time.timestamp())
    return latencies


async def main(runs: int, samples: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-sinks-"))
    server = start_prefect_server(folder / "prefect")
    influx = InfluxDB(folder / "influxdb").start()
    try:
        influx.query("CREATE DATABASE trinity")
        with serving(FakeElasticsearch()) as elastic:
            config = folder / "trinity.config.yml"
            config.write_text(
                "sinks:\n"
                f"  influxdb: {{url: '{influx.url}', database: trinity}}\n"
                f"  elasticsearch: {{hosts: ['{elastic.url}'], index_prefix: bench}}\n"
            )
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                off, _ = await _phase(server, folder / "off", runs=runs, config=None, label="off")
                on, _ = await _phase(server, folder / "on", runs=runs, config=config, label="on")
                latencies = await _latency(server, folder / "latency", config, influx, samples)
            assert isinstance(elastic, FakeElasticsearch)
            documents, problems = len(elastic.documents), len(elastic.problems)
    finally:
        influx.stop()
        server.stop()
    machine = cpu_model(platform.processor() or "unknown CPU")
    load = os.getloadavg()[0]
    print(f"machine: {machine}, {os.cpu_count()} cores, load average at the end {load:.1f}")
    print(f"{runs} runs of the 10-task no-op DAG per phase, one trinity worker (2 executors x 8)")
    print(f"  sinks off (baseline): {off:8.1f} runs/min")
    print(f"  sinks on:             {on:8.1f} runs/min   ratio on/off {on / off:.3f} (target >= 0.95)")
    print(f"  Elasticsearch documents stored: {documents}, wire problems: {problems}")
    print(
        f"live latency, run end -> point queryable in InfluxDB ({len(latencies)} runs): "
        f"median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--latency-samples", type=int, default=10)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.latency_samples))
