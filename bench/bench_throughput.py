"""Throughput of Trinity workflow executions: stock Prefect workers against the Trinity worker.

One command, one run, everything on this machine: a PostgreSQL-backed Prefect server, the
10-task no-op DAG (specs/examples/noop-dag.yaml) deployed once per phase with
``deployments.service.deploy_workflow``, and runs created with ``create_flow_run_from_deployment``.
Each phase times from the first creation to the last run's end, then checks every run in Prefect:
Completed, run once (run_count 1), 10 task runs recorded.

Phases: stock ``process`` worker; one ``trinity worker``; two ``trinity worker``s on one pool;
the ceiling -- the same flow runs executed in one process by stock Prefect (``run_flow``), 30 at a
time, no worker. CPU per run is summed over the process trees (psutil) of the worker side, the
Prefect server, and the PostgreSQL backends of Prefect's database. Then the latency from
``POST /api/v1/workflows/{id}/execute`` to the run starting, through the Trinity API.

    .venv/bin/python bench/bench_throughput.py [--quick] [--runs 300] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Workflows are activated, and stored definitions run, only with a definition key: one for this run.
os.environ.setdefault("TRINITY_DEFINITION_KEY", secrets.token_urlsafe(32))

from bench.machine import cpu_model  # noqa: E402
from tests.support.servers import create_database, drop_database, start_prefect_server  # noqa: E402

TASKS_PER_RUN = 10
CEILING_CONCURRENCY = 30
RUNS_PER_MINUTE_GOAL = 10_000


@dataclass
class Phase:
    name: str
    runs: int
    seconds: float
    worker_cpu: float
    server_cpu: float
    pg_cpu: float
    problems: list[str]

    @property
    def per_minute(self) -> float:
        return self.runs / self.seconds * 60

    @property
    def cpu_per_run(self) -> float:
        """Seconds of CPU, all sides together, per run."""
        return (self.worker_cpu + self.server_cpu + self.pg_cpu) / self.runs

    @property
    def cpu_bound_per_minute(self) -> float:
        """Runs a minute this machine's cores would sustain at this CPU per run, with nothing else on it."""
        return 60 * (os.cpu_count() or 1) / self.cpu_per_run

    def per_run_ms(self, cpu: float) -> float:
        return cpu / self.runs * 1000


# -- machine and processes ----------------------------------------------------------------------


def machine() -> str:
    cpu = cpu_model(platform.processor() or "unknown CPU")
    memory = psutil.virtual_memory().total / 1024**3
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores (nproc), {cpu}, {memory:.1f} GiB RAM; Python {platform.python_version()}; "
        f"load average before start: {load}"
    )


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds of processes and all their descendants (exited ones their parents reaped)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            times = root.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    times = child.cpu_times()
                    total += times.user + times.system
    return total


def postgres_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving ``database``, by pid."""
    usage: dict[int, float] = {}
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(database in part for part in process.info["cmdline"] or []):
                times = process.cpu_times()
                usage[process.pid] = times.user + times.system
    return usage


def postgres_delta(before: dict[int, float], after: dict[int, float]) -> float:
    # Backends that closed in between are not counted: a slight undercount, never negative.
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


# -- the workload -------------------------------------------------------------------------------


async def deploy(pool: str, pool_type: str) -> uuid.UUID:
    """Deploy the no-op DAG (its own deployment per pool) and return the deployment id."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from deployments.service import deploy_workflow
    from specs.loader import load_path
    from specs.models import Specification, Workflow

    documents = load_path(REPO / "specs" / "examples" / "noop-dag.yaml")
    specification = next(d for d in documents if isinstance(d, Specification))
    workflow = next(d for d in documents if isinstance(d, Workflow))
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=pool, type=pool_type))
    named = workflow.model_copy(update={"name": f"noop-dag-{pool}"})
    ref = await deploy_workflow(workflow=named, specification=specification, work_pool=pool)
    return ref.id


async def create_runs(deployment_id: uuid.UUID, count: int, feed: Any = None) -> list[uuid.UUID]:
    """Create ``count`` runs, eight requests at a time; ``feed(id)`` is told of each at once."""
    from prefect.client.orchestration import get_client

    ids: list[uuid.UUID] = []
    async with get_client() as client:

        async def one() -> None:
            run = await client.create_flow_run_from_deployment(deployment_id)
            ids.append(run.id)
            if feed is not None:
                feed(run.id)

        for start in range(0, count, 8):
            await asyncio.gather(*(one() for _ in range(min(8, count - start))))
    return ids


async def wait_final(ids: list[uuid.UUID], timeout: float) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterStateType
    from prefect.client.schemas.objects import TERMINAL_STATES

    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while time.monotonic() < deadline:
            done = await client.count_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=ids),
                    state={"type": FlowRunFilterStateType(any_=list(TERMINAL_STATES))},  # type: ignore[arg-type]
                )
            )
            if done >= len(ids):
                return
            await asyncio.sleep(0.5)
    raise TimeoutError(f"runs not finished after {timeout:.0f}s")


async def check_runs(ids: list[uuid.UUID]) -> tuple[float, float, list[str]]:
    """(first start, last end) as epoch seconds, and every problem found with the runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    problems: list[str] = []
    async with get_client() as client:
        runs = []
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            runs += await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)))
        not_completed = [r for r in runs if r.state is None or not r.state.is_completed()]
        if not_completed:
            states: dict[str, int] = {}
            for r in not_completed:
                states[r.state_name or "?"] = states.get(r.state_name or "?", 0) + 1
            messages = sorted({(r.state.message or "")[:200] for r in not_completed if r.state})[:3]
            problems.append(f"{len(not_completed)} run(s) not Completed: {states}, e.g. {messages}")
        if len(runs) != len(ids):
            problems.append(f"{len(ids) - len(runs)} run(s) lost")
        twice = [r for r in runs if r.run_count != 1]
        if twice:
            problems.append(f"{len(twice)} run(s) with run_count != 1")
        # Task runs are recorded from events, a moment after the flow run ends.
        expected = TASKS_PER_RUN * len(ids)
        counted = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            counted = 0
            for start in range(0, len(ids), 200):
                body = {"flow_runs": {"id": {"any_": [str(i) for i in ids[start : start + 200]]}}}
                response = await client.request("POST", "/task_runs/count", json=body)  # type: ignore[arg-type]
                counted += int(response.json())
            if counted >= expected:
                break
            await asyncio.sleep(1)
        if counted != expected:
            problems.append(f"{counted} task runs recorded, expected {expected}")
        starts = [r.start_time.timestamp() for r in runs if r.start_time]
        ends = [r.end_time.timestamp() for r in runs if r.end_time]
    return (min(starts) if starts else 0.0), (max(ends) if ends else time.time()), problems


async def measure(
    name: str, deployment_id: uuid.UUID, count: int, worker_pids: list[int], pg_db: str, server_pid: int,
    feed: Any = None, timeout: float | None = None,
) -> Phase:  # fmt: skip
    cpu0 = (tree_cpu(worker_pids), tree_cpu([server_pid]), postgres_cpu(pg_db))
    created = time.time()
    ids = await create_runs(deployment_id, count, feed)
    await wait_final(ids, timeout=timeout or 120 + count * 2)
    cpu1 = (tree_cpu(worker_pids), tree_cpu([server_pid]), postgres_cpu(pg_db))
    _, last_end, problems = await check_runs(ids)
    phase = Phase(
        name=name,
        runs=count,
        seconds=max(last_end - created, 1e-3),
        worker_cpu=cpu1[0] - cpu0[0],
        server_cpu=cpu1[1] - cpu0[1],
        pg_cpu=postgres_delta(cpu0[2], cpu1[2]),
        problems=problems,
    )
    print(
        f"  {name}: {phase.per_minute:.0f} runs/min{'; ' + '; '.join(problems) if problems else ''}",
        flush=True,
    )
    return phase


# -- workers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def workers(commands: list[list[str]], env: dict[str, str], logs: Path, phase: str) -> Iterator[list[int]]:
    processes = []
    try:
        for index, command in enumerate(commands):
            log = (logs / f"{phase}-worker-{index}.log").open("wb")
            processes.append(
                subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            )
        yield [p.pid for p in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


async def warm_up(deployment_id: uuid.UUID, count: int) -> None:
    """Let workers start and load the flow, so phases time steady-state execution."""
    ids = await create_runs(deployment_id, count)
    await wait_final(ids, timeout=180)
    _, _, problems = await check_runs(ids)
    if problems:
        print(f"  warm-up: {'; '.join(problems)}", flush=True)


async def ceiling_child(concurrency: int) -> None:
    """Run flow runs whose ids arrive on stdin with stock Prefect's engine, in this process."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.flows import load_flow_from_flow_run

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    slots = asyncio.Semaphore(concurrency)
    flows: dict[uuid.UUID, Any] = {}
    tasks = []
    async with get_client() as client:

        async def one(flow_run_id: uuid.UUID) -> None:
            async with slots:
                flow_run = await client.read_flow_run(flow_run_id)
                if flow_run.deployment_id not in flows:
                    flows[flow_run.deployment_id] = await load_flow_from_flow_run(
                        flow_run, use_placeholder_flow=False
                    )
                await run_flow(flows[flow_run.deployment_id], flow_run=flow_run, return_type="state")  # type: ignore[misc]

        while line := await reader.readline():
            tasks.append(asyncio.create_task(one(uuid.UUID(line.decode().strip()))))
        await asyncio.gather(*tasks)


# -- latency through the REST API ---------------------------------------------------------------


async def api_latency(prefect_url: str, work: Path, env: dict[str, str], requests: int) -> str:
    """p50/p95 from ``POST /api/v1/workflows/{id}/execute`` to the run's Prefect start time."""
    import httpx

    sys.path.insert(0, str(REPO / "bench"))
    try:
        import bench_api  # the API benchmark's launcher: same configuration, same migrations
    except ImportError as exc:
        return f"skipped: the API is not available ({exc})"
    from specs.loader import load_path
    from specs.models import Specification, Workflow

    database = create_database("bench_api")
    api = None
    try:
        api, base = bench_api.start_api(work, database, prefect_url, 1)
        headers = {"X-API-Key": bench_api.ADMIN_KEY}
        documents = load_path(REPO / "specs" / "examples" / "noop-dag.yaml")
        spec = next(d for d in documents if isinstance(d, Specification))
        flow = next(d for d in documents if isinstance(d, Workflow))
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
            (
                await client.post(
                    "/specs", json=spec.model_dump(mode="json", by_alias=True, exclude_none=True)
                )
            ).raise_for_status()
            body = flow.model_dump(mode="json", by_alias=True, exclude_none=True)
            created = await client.post("/workflows", params={"status": "active"}, json=body)
            created.raise_for_status()
            execute = f"/workflows/{created.json()['id']}/execute"
            command = [str(REPO / ".venv" / "bin" / "trinity"), "worker", "--pool", "trinity"]
            with workers([command], env, work, "latency"):
                sent: dict[str, float] = {}
                answered: list[float] = []

                async def one() -> None:
                    started = time.time()
                    response = await client.post(execute, json={"parameters": {}})
                    response.raise_for_status()
                    sent[response.json()["flow_run_id"]] = started
                    answered.append((time.time() - started) * 1000)

                await one()  # warm-up: the worker starts and loads the flow
                await wait_final([uuid.UUID(i) for i in sent], timeout=180)
                sent.clear()
                answered.clear()
                tasks = []
                for _ in range(requests):  # two a second: latency, not load
                    tasks.append(asyncio.create_task(one()))
                    await asyncio.sleep(0.5)
                await asyncio.gather(*tasks)
                ids = [uuid.UUID(i) for i in sent]
                await wait_final(ids, timeout=120)
                from prefect.client.orchestration import get_client
                from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

                async with get_client() as prefect:
                    runs = await prefect.read_flow_runs(
                        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
                    )
        delays = [(r.start_time.timestamp() - sent[str(r.id)]) * 1000 for r in runs if r.start_time]
        return (
            f"p50 {percentile(delays, 50):.0f} ms, p95 {percentile(delays, 95):.0f} ms "
            f"over {len(delays)} runs at 2 requests/s (the POST itself: "
            f"p50 {percentile(answered, 50):.0f} ms, p95 {percentile(answered, 95):.0f} ms)"
        )
    except Exception as exc:
        return f"skipped: {type(exc).__name__}: {exc}"
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=30)
        drop_database(database)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))] if ordered else float("nan")


# -- report -------------------------------------------------------------------------------------


def report(phases: dict[str, Phase], latency: str, args: argparse.Namespace) -> None:
    print()
    header = ("runs", "runs/min", "worker ms/run", "server ms/run", "pg ms/run", "CPU-bound/min")
    print(f"{'phase':40} " + " ".join(f"{h:>13}" for h in header))
    for phase in phases.values():
        cells = (
            phase.runs,
            round(phase.per_minute),
            round(phase.per_run_ms(phase.worker_cpu)),
            round(phase.per_run_ms(phase.server_cpu)),
            round(phase.per_run_ms(phase.pg_cpu)),
            round(phase.cpu_bound_per_minute),
        )
        print(f"{phase.name:40} " + " ".join(f"{c:>13}" for c in cells))
    stock, one, two, ceiling = (phases.get(k) for k in ("stock", "trinity", "trinity2", "ceiling"))
    print()
    for label, phase in (("one trinity worker", one), ("two trinity workers", two)):
        if phase is None:
            continue
        ratios = []
        if stock:
            ratios.append(
                f"{phase.per_minute / stock.per_minute:.1f}x the stock process worker (target >= 10x)"
            )
        if ceiling:
            ratios.append(
                f"{phase.per_minute / ceiling.per_minute:.0%} of the in-process ceiling (target >= 85%)"
            )
        print(f"{label}: " + "; ".join(ratios))
        by_cpu = []
        if stock:
            by_cpu.append(f"{stock.cpu_per_run / phase.cpu_per_run:.1f}x stock")
        if ceiling:
            by_cpu.append(f"{ceiling.cpu_per_run / phase.cpu_per_run:.0%} of the ceiling")
        if by_cpu:
            print(
                "  by CPU per run, all sides (what an otherwise idle machine would show): "
                + "; ".join(by_cpu)
            )
    problems = [f"{p.name}: {problem}" for p in phases.values() for problem in p.problems]
    print("runs lost, failed or run twice: " + ("; ".join(problems) if problems else "none"))
    print(
        "pg ms/run counts the PostgreSQL backends connected at the end of a phase (a floor: "
        "backends that closed meanwhile are not counted)"
    )
    print(
        "CPU-bound/min = nproc x 60 s / CPU per run: the rate an otherwise idle machine would sustain; "
        "runs/min is what this run measured, on a machine shared with whatever else is running"
    )
    if args.profile:
        print("(--profile: py-spy sampled the one-worker phase, which slows it)")
    print(f"latency POST /workflows/{{id}}/execute -> run started: {latency}")
    if one is not None:
        worker_ms = one.per_run_ms(one.worker_cpu)
        server_ms = one.per_run_ms(one.server_cpu)
        pg_ms = one.per_run_ms(one.pg_cpu)
        rate = RUNS_PER_MINUTE_GOAL / 60
        print()
        print(f"{RUNS_PER_MINUTE_GOAL:,} runs/min = {rate:.0f} runs/s; at the measured CPU per run")
        print("(each core kept 75% busy):")
        for label, ms in (
            (f"executor cores (worker side, {worker_ms:.0f} ms/run)", worker_ms),
            (
                f"Prefect API cores ({server_ms:.0f} ms/run; one single-threaded replica ~ one core)",
                server_ms,
            ),
            (f"PostgreSQL cores ({pg_ms:.0f} ms/run)", pg_ms),
        ):
            print(f"  {label}: {math.ceil(rate * ms / 1000 / 0.75)}")
        print(
            "  (several API replicas need Prefect's Redis messaging; the numbers assume the per-run costs "
            "stay flat as the database grows)"
        )


# -- main ---------------------------------------------------------------------------------------


async def run_bench(
    args: argparse.Namespace, server: Any, pg_db: str, work: Path, env: dict[str, str]
) -> None:
    phases: dict[str, Phase] = {}
    venv = REPO / ".venv" / "bin"
    trinity = [
        str(venv / "trinity"),
        "worker",
        "--processes",
        str(args.processes),
        "--concurrency",
        str(args.concurrency),
    ]
    server_pid = server.process.pid
    if not args.skip_stock:
        deployment = await deploy("bench-process", "process")
        stock_env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "1"}  # stock polls every 10 s; be generous
        command = [str(venv / "prefect"), "worker", "start", "--pool", "bench-process", "--type", "process"]
        with workers([command], stock_env, work, "stock") as pids:
            await warm_up(deployment, 1)
            phases["stock"] = await measure(
                "stock process worker", deployment, args.stock_runs, pids, pg_db, server_pid, timeout=1200
            )
    deployment = await deploy("bench-ceiling", "process")
    child = subprocess.Popen(
        [sys.executable, __file__, "--ceiling-child"], cwd=REPO, env=env, stdin=subprocess.PIPE,
        stdout=(work / "ceiling.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert child.stdin is not None

    def feed(flow_run_id: uuid.UUID) -> None:
        child.stdin.write(f"{flow_run_id}\n".encode())  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]

    await warm_up_ceiling(deployment, feed)
    phases["ceiling"] = await measure(
        f"ceiling: stock in-process, {CEILING_CONCURRENCY} at once",
        deployment,
        args.runs,
        [child.pid],
        pg_db,
        server_pid,
        feed,
    )
    child.stdin.close()
    child.wait(timeout=120)
    for key, count in (("trinity", 1), ("trinity2", 2)):
        pool = f"bench-{key}"
        deployment = await deploy(pool, "trinity")
        label = "one trinity worker" if count == 1 else "two trinity workers"
        with workers(
            [[*trinity, "--pool", pool, "--name", f"{pool}-{i}"] for i in range(count)], env, work, key
        ) as pids:
            await warm_up(deployment, args.processes * count * 2)
            profiler = start_profiler(args, key, pids[0], server_pid, work)
            phases[key] = await measure(
                f"{label} ({args.processes}x{args.concurrency} each)",
                deployment,
                args.runs,
                pids,
                pg_db,
                server_pid,
            )
            stop_profiler(profiler)
    latency = await api_latency(server.api_url, work, env, requests=10 if args.quick else 30)
    report(phases, latency, args)


async def warm_up_ceiling(deployment_id: uuid.UUID, feed: Any) -> None:
    ids = await create_runs(deployment_id, 2, feed)
    await wait_final(ids, timeout=180)


def start_profiler(
    args: argparse.Namespace, key: str, worker_pid: int, server_pid: int, work: Path
) -> list[Any]:
    if not args.profile or key != "trinity":
        return []
    spy = str(REPO / ".venv" / "bin" / "py-spy")
    executors = [c.pid for c in psutil.Process(worker_pid).children() if "python" in c.name()]
    targets = {"profile-server": server_pid, "profile-worker": worker_pid}
    targets.update({f"profile-executor-{pid}": pid for pid in executors})
    print(f"  profiling {', '.join(targets)} into {work}")
    return [
        subprocess.Popen(
            [spy, "record", "--nonblocking", "-f", "raw", "-p", str(pid), "-o", str(work / f"{name}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in targets.items()
    ]


def stop_profiler(profilers: list[Any]) -> None:
    for profiler in profilers:
        profiler.send_signal(2)
        profiler.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small phases (a smoke test, not a measurement)")
    parser.add_argument("--runs", type=int, default=None, help="runs per phase (default 300; --quick 40)")
    parser.add_argument(
        "--stock-runs", type=int, default=None, help="runs for the stock worker (default 20; --quick 5)"
    )
    parser.add_argument("--skip-stock", action="store_true", help="leave out the stock process worker")
    parser.add_argument("--processes", type=int, default=2, help="executor processes per trinity worker")
    parser.add_argument("--concurrency", type=int, default=16, help="runs at once per executor process")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the one-worker phase (raw stacks in the work dir)"
    )
    parser.add_argument(
        "--stock-server",
        action="store_true",
        help="start the Prefect server without the recommended settings",
    )
    parser.add_argument("--ceiling-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ceiling_child:
        asyncio.run(ceiling_child(CEILING_CONCURRENCY))
        return
    args.runs = args.runs or (40 if args.quick else 300)
    args.stock_runs = args.stock_runs or (5 if args.quick else 20)
    print("machine:", machine(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="trinity-bench-"))
    prefect_db = create_database("bench_prefect")
    trinity_db = create_database("bench_trinity")
    server = None
    try:
        from api.db import migrate

        migrate(trinity_db)
        if not args.stock_server:
            from flows.worker.tuning import server_environment

            tuned = server_environment()
            os.environ.update(tuned)  # the server inherits our environment
            print(
                "Prefect server settings (see flows/worker/tuning.py): "
                + ", ".join(f"{k}={v}" for k, v in tuned.items())
            )
        server = start_prefect_server(work / "prefect", database_url=prefect_db)
        env = {**server.env, "PREFECT_API_URL": server.api_url, "TRINITY_DATABASE_URL": trinity_db}
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        # Runs log at Prefect's default level (the test server's env quiets it), in every phase.
        env["PREFECT_LOGGING_LEVEL"] = "INFO"
        os.environ.update(PREFECT_API_URL=server.api_url, PREFECT_HOME=env["PREFECT_HOME"])
        print(f"Prefect server on PostgreSQL; logs and profiles in {work}", flush=True)
        asyncio.run(run_bench(args, server, prefect_db.rsplit("/", 1)[1], work, env))
    finally:
        if server is not None:
            server.stop()
        drop_database(prefect_db)
        drop_database(trinity_db)
        print(json.dumps({"work_dir": str(work)}))


if __name__ == "__main__":
    main()
