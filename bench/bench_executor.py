"""Benchmark: the compiled executor against the same DAG written by hand as a Prefect flow.

The DAG is ``specs/examples/noop-dag.yaml`` (ten no-op tasks in four layers). Two hand-written
baselines: the idiomatic sync flow (``@task`` functions submitted with ``wait_for`` futures on the
default thread pool) and an async flow awaiting one ``asyncio.gather`` per layer (the engine the
executor uses). All run in this process against one real Prefect server this script starts
(PostgreSQL-backed when the test PostgreSQL is reachable, else SQLite). The two async flows are
interleaved, swapping order every round; the sync baseline runs in its own phase (see
``measure``). The compiled flow also writes its ``execution_logs`` row (to a migrated SQLite
file), as it does in production.

Reported: the median wall time of one flow run each way, the overhead ratio against each baseline
(compiled / hand, target <= 1.10), and flow runs per minute each way (runs one after another, so
60 / mean).

    .venv/bin/python bench/bench_executor.py [--runs 30] [--warmup 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model  # noqa: E402

_HOME = Path(tempfile.mkdtemp(prefix="trinity-bench-executor-"))
os.environ["PREFECT_HOME"] = str(_HOME / "client")
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)

from prefect import flow, task  # noqa: E402
from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: E402

from tests.support.servers import (  # noqa: E402
    create_database,
    drop_database,
    postgres_reachable,
    start_prefect_server,
)

EXAMPLE = ROOT / "specs" / "examples" / "noop-dag.yaml"


def machine() -> str:
    """CPU model, core count, Python and Prefect versions."""
    import prefect

    cpu = cpu_model(platform.processor() or "unknown CPU")
    return f"{cpu}, nproc={os.cpu_count()}, Python {platform.python_version()}, Prefect {prefect.__version__}"


@task
def noop(output: Any = None) -> Any:
    return output


@flow(name="hand-written-noop-dag")
def hand_written() -> Any:
    """noop-dag.yaml written by hand."""
    start = noop.submit()
    a1 = noop.submit(wait_for=[start])
    a2 = noop.submit(wait_for=[start])
    a3 = noop.submit(wait_for=[start])
    b1 = noop.submit(wait_for=[a1, a2])
    b2 = noop.submit(wait_for=[a2, a3])
    b3 = noop.submit(wait_for=[a3])
    c1 = noop.submit(wait_for=[b1, b2])
    c2 = noop.submit(wait_for=[b2, b3])
    return noop.submit("done", wait_for=[c1, c2]).result()


@task
async def async_noop(output: Any = None) -> Any:
    return output


BODY_SECONDS: dict[str, list[float]] = {"hand (async)": [], "compiled": []}


@flow(name="hand-written-async-noop-dag")
async def hand_written_async() -> Any:
    """noop-dag.yaml written by hand as an async flow, one gather per layer."""
    started = time.perf_counter()
    try:
        return await _hand_async_body()
    finally:
        BODY_SECONDS["hand (async)"].append(time.perf_counter() - started)


async def _hand_async_body() -> Any:
    start = await async_noop(return_state=True)
    a1, a2, a3 = await asyncio.gather(*(async_noop(wait_for=[start], return_state=True) for _ in range(3)))
    b1, b2, b3 = await asyncio.gather(
        async_noop(wait_for=[a1, a2], return_state=True),
        async_noop(wait_for=[a2, a3], return_state=True),
        async_noop(wait_for=[a3], return_state=True),
    )
    c1, c2 = await asyncio.gather(
        async_noop(wait_for=[b1, b2], return_state=True), async_noop(wait_for=[b2, b3], return_state=True)
    )
    return await async_noop("done", wait_for=[c1, c2])


def compiled_flow() -> Callable[[], Any]:
    """The generic executor's flow for noop-dag.yaml."""
    from deployments.pairing import pair_documents
    from flows.compiler import compile_workflow
    from flows.engine import WorkflowEngine
    from flows.workflow_flow import build_flow
    from specs.loader import load_path

    class TimedEngine(WorkflowEngine):
        async def run(self, params: Any) -> Any:
            started = time.perf_counter()
            try:
                return await super().run(params)
            finally:
                BODY_SECONDS["compiled"].append(time.perf_counter() - started)

    ((workflow, specification),) = pair_documents(load_path(EXAMPLE)).pairs
    compiled = compile_workflow(workflow, specification)
    built = build_flow(compiled, engine=TimedEngine(compiled))

    def run() -> Any:
        state = asyncio.run(built(return_state=True))
        assert state.is_completed(), state.message
        return state

    return run


def hand_flow() -> Callable[[], Any]:
    def run() -> Any:
        state = hand_written(return_state=True)
        assert state.is_completed(), state.message
        return state

    return run


def hand_async_flow() -> Callable[[], Any]:
    def run() -> Any:
        state = asyncio.run(hand_written_async(return_state=True))
        assert state.is_completed(), state.message
        return state

    return run


def measure(runs: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per flow run for each flow.

    The two async flows are interleaved, swapping their order every round. The sync baseline runs
    in a phase of its own: a flow run right after a sync flow run is measurably faster (it
    inherits warm connections), which would flatter whichever flow always came next.
    """
    times: dict[str, list[float]] = {"hand (sync)": [], "hand (async)": [], "compiled": []}
    paired = {"hand (async)": hand_async_flow(), "compiled": compiled_flow()}
    names = list(paired)
    for index in range(warmup + runs):
        for name in names if index % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            paired[name]()
            if index >= warmup:
                times[name].append(time.perf_counter() - started)
    sync_run = hand_flow()
    for index in range(warmup + runs):
        started = time.perf_counter()
        sync_run()
        if index >= warmup:
            times["hand (sync)"].append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    from api.db import migrate

    logs_url = f"sqlite:///{_HOME / 'trinity.db'}"
    migrate(logs_url)
    os.environ["TRINITY_DATABASE_URL"] = logs_url
    database = create_database("bench_executor") if postgres_reachable() else None
    server = start_prefect_server(_HOME / "server", database_url=database)
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            times = measure(args.runs, args.warmup)
    finally:
        server.stop()
        if database:
            drop_database(database)

    print(f"machine: {machine()}")
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"Prefect server database: {'PostgreSQL' if database else 'SQLite'}; {args.runs} runs each")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(
            f"{name:>13}: median {medians[name] * 1000:7.1f} ms/run, "
            f"p90 {sorted(values)[int(len(values) * 0.9) - 1] * 1000:7.1f} ms, "
            f"{60 / statistics.mean(values):6.1f} flow runs/min (sequential)"
        )
    for baseline in ("hand (sync)", "hand (async)"):
        ratio = medians["compiled"] / medians[baseline]
        print(f"overhead ratio compiled / {baseline} (medians): {ratio:.3f} (target <= 1.10)")
    body = {name: statistics.median(values[args.warmup :]) for name, values in BODY_SECONDS.items()}
    print(
        f"inside the flow body (the DAG itself): hand (async) {body['hand (async)'] * 1000:.1f} ms, "
        f"compiled {body['compiled'] * 1000:.1f} ms, ratio {body['compiled'] / body['hand (async)']:.3f}"
    )


if __name__ == "__main__":
    main()
