"""Soak under faults: N minutes of load at ~70 % of measured capacity, with a seeded fault schedule.

One command, everything on this machine: a throwaway PostgreSQL cluster (Prefect's database and
Trinity's), a Prefect server, the Trinity API and two ``trinity worker``s (``chaos_soak_stack.py``).
A workflow (a 2 s ``shell`` task and two ``noop`` tasks, ``on_crash: {rerun: 2}``) is run through
``POST /api/v1/workflows/{id}/execute``, each request with its own Idempotency-Key and retried with
that key until it is answered 202 -- what a careful client does. Capacity is measured first (a burst
of runs, timed to the last completion); the soak then submits at 70 % of it while, on a seeded
schedule, one fault at a time hits the stack: a worker SIGKILLed, SIGTERMed or SIGSTOPped, the API
SIGKILLed, the Prefect server killed and restarted, PostgreSQL restarted.

At the end, once every run has settled, Prefect's records are read and the figures printed: runs
submitted, completed, crashed and rerun, lost (must be 0: a submitted run whose last rerun is not
in a final state), executed twice (must be 0: a key answered with two flow runs, a flow run whose
``work`` task completed twice, or two completed runs in one chain of reruns), API answers 500-599
other than 503 (must be 0; 503 with Retry-After is the contract while a database is away, counted
separately), recovery per fault and the worst, RSS growth of workers, API and Prefect.

    .venv/bin/python bench/chaos_soak.py [--minutes 10] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_throughput import machine  # noqa: E402
from chaos_soak_stack import (  # noqa: E402
    ADMIN_KEY,
    FAULTS,
    HEARTBEAT_SECONDS,
    Stack,
    start_stack,
    supervise,
)

from flows.worker.delivery_status import read_delivery_status  # noqa: E402
from flows.worker.reruns import rerun_of  # noqa: E402
from tests.support.postgres import running_throwaway_postgres  # noqa: E402

SHELL = {"id": "work", "uses": "shell", "with": {"argv": ["sh", "-c", "sleep 2"]}}
TASKS = [
    SHELL,
    {"id": "a", "uses": "noop", "needs": ["work"]},
    {"id": "b", "uses": "noop", "needs": ["work"]},
]
GIVE_UP_SECONDS = 300


@dataclass
class Load:
    """Executes at a steady rate; every request retried with its key until answered 202."""

    api: str
    workflow_id: str
    answers: dict[str, list[str]] = field(default_factory=dict)  # key -> flow run ids answered
    status_counts: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    given_up: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def execute(self, key: str) -> None:
        deadline = time.monotonic() + GIVE_UP_SECONDS
        headers = {"X-API-Key": ADMIN_KEY, "Idempotency-Key": key}
        while time.monotonic() < deadline:
            try:
                response = httpx.post(
                    f"{self.api}/workflows/{self.workflow_id}/execute",
                    json={"parameters": {}},
                    headers=headers,
                    timeout=30,
                )
            except httpx.TransportError:
                with self.lock:
                    self.transport_errors += 1
                time.sleep(1)
                continue
            with self.lock:
                self.status_counts[response.status_code] = self.status_counts.get(response.status_code, 0) + 1
                if response.status_code == 202:
                    self.answers.setdefault(key, []).append(response.json()["flow_run_id"])
                    return
            time.sleep(float(response.headers.get("retry-after", 1)))
        with self.lock:
            self.given_up.append(key)

    def run(self, rate_per_minute: float, seconds: float, prefix: str) -> None:
        """Submit at ``rate_per_minute`` for ``seconds`` (each request in a thread of a pool)."""
        interval = 60.0 / rate_per_minute
        with ThreadPoolExecutor(max_workers=32) as pool:
            started = time.monotonic()
            count = 0
            while time.monotonic() - started < seconds:
                pool.submit(self.execute, f"{prefix}-{count}")
                count += 1
                time.sleep(max(0.0, started + count * interval - time.monotonic()))


@dataclass
class Fault:
    kind: str
    target: str
    at: dt.datetime
    done: str = ""


def _api(stack: Stack, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, f"{stack.api_url}{path}", headers={"X-API-Key": ADMIN_KEY}, timeout=60, **kwargs
    )


def create_workflow(stack: Stack) -> dict[str, Any]:
    spec = {"kind": "Specification", "name": "soak", "version": "1.0.0", "description": "Soak under faults."}
    assert _api(stack, "POST", "/specs", json=spec).status_code == 201
    document = {
        "kind": "Workflow",
        "name": "soak",
        "version": "1.0.0",
        "spec": {"name": "soak", "version": "^1.0.0"},
        "on_crash": {"rerun": 2},
        "tasks": TASKS,
    }
    created = _api(stack, "POST", "/workflows", params={"status": "active"}, json=document)
    assert created.status_code == 201, created.text
    workflow: dict[str, Any] = created.json()
    return workflow


async def flow_runs(stack: Stack, deployment_id: str) -> list[Any]:
    """Every flow run of the deployment, from Prefect."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    runs: list[Any] = []
    async with get_client() as client:
        while True:
            page = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[uuid.UUID(deployment_id)])
                ),
                limit=200,
                offset=len(runs),
            )
            runs += page
            if len(page) < 200:
                return runs


async def work_done(run_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many times each flow run's ``work`` task completed (more than once: executed twice).

    A flow run's state history is no proof: a state proposal retried across a restart can record
    Running twice. The task runs are: each execution of the flow makes its own.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterName,
    )

    counts: dict[uuid.UUID, int] = dict.fromkeys(run_ids, 0)
    async with get_client() as client:
        for start in range(0, len(run_ids), 100):
            chunk = run_ids[start : start + 100]
            offset = 0
            while True:
                page = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)),
                    task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=["work"])),
                    limit=200,
                    offset=offset,
                )
                for task_run in page:
                    if task_run.flow_run_id in counts and task_run.state_name == "Completed":
                        counts[task_run.flow_run_id] += 1
                if len(page) < 200:
                    break
                offset += 200
    return counts


def measure_capacity(stack: Stack, workflow: dict[str, Any], count: int) -> float:
    """Runs per minute the stack completes: a burst of ``count`` runs, timed to the last end."""
    load = Load(stack.api_url, workflow["id"])
    started = dt.datetime.now(dt.UTC)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(load.execute, [f"capacity-{i}" for i in range(count)]))
    ids = {answer[-1] for answer in load.answers.values()}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        runs = [run for run in asyncio.run(flow_runs(stack, workflow["deployment_id"])) if str(run.id) in ids]
        if len(runs) == len(ids) and all(run.state and run.state.is_final() for run in runs):
            last = max(run.end_time for run in runs)
            return count / (last - started).total_seconds() * 60
        time.sleep(1)
    raise RuntimeError("the capacity burst did not finish within 10 minutes")


def inject_faults(
    stack: Stack, seconds: float, seed: int, faults: list[Fault], stop: threading.Event
) -> None:
    """One fault at a time on a seeded schedule: each kind in turn (seeded order), then again."""
    chooser = random.Random(seed)
    # Every kind at least once, about one every 45 s, at least 30 s apart (to see each recover).
    count = max(1, min(max(len(FAULTS), int(seconds // 45)), int((seconds - 20) // 30) + 1))
    rounds = count // len(FAULTS) + 1
    kinds = [kind for _ in range(rounds) for kind in chooser.sample(list(FAULTS), len(FAULTS))]
    period = max(30.0, (seconds - 20) / count)
    started = time.monotonic()
    for index, kind in enumerate(kinds[:count]):
        wait = started + 20 + index * period - time.monotonic()
        if stop.wait(max(0.0, wait)):
            return
        worker = chooser.choice(stack.workers)
        fault = Fault(
            kind, worker.role if kind.startswith("worker") else kind.split()[0], dt.datetime.now(dt.UTC)
        )
        at = time.monotonic() - started
        fault.done = FAULTS[kind](stack, worker)
        faults.append(fault)
        print(f"  {at:6.1f}s  {kind}: {fault.done}", flush=True)


def sample_rss(stack: Stack, samples: dict[str, dict[int, list[int]]], stop: threading.Event) -> None:
    """RSS of each role's process tree every 5 s, kept per process instance."""
    while not stop.wait(5):
        for child in stack.children():
            if child.process is not None and child.process.poll() is None:
                samples.setdefault(child.role, {}).setdefault(child.process.pid, []).append(child.rss())
        prefect = stack.prefect_rss()
        if prefect:  # 0: killed, not started again yet
            samples.setdefault("prefect", {}).setdefault(stack.prefect.process.pid, []).append(prefect)


def rss_growth(samples: dict[int, list[int]]) -> str:
    """Growth over the longest-lived instance of a role, from its fifth sample (20 s after it was
    first seen: executors and imports are up by then)."""
    pid, values = max(samples.items(), key=lambda item: len(item[1]))
    values = values[4:] or values[-1:]
    span = (len(values) - 1) * 5
    growth, last = (values[-1] - values[0]) / 1024**2, values[-1] / 1024**2
    return f"{growth:+.1f} MiB over {span} s (pid {pid}, {last:.0f} MiB at the end)"


def affected(runs: list[Any], fault: Fault) -> list[Any]:
    """Runs in flight at the fault (on the faulted worker, for a worker fault)."""
    found = []
    for run in runs:
        started, ended = run.start_time, run.end_time
        if started is None or started > fault.at or (ended is not None and ended <= fault.at):
            continue
        if fault.kind.startswith("worker") and run.labels.get("prefect.worker.name") != fault.target:
            continue
        found.append(run)
    return found


@dataclass
class Ledger:
    """Prefect's records of the deployment, read once everything settled."""

    runs: list[Any]

    def __post_init__(self) -> None:
        self.by_id = {str(run.id): run for run in self.runs}
        self.reruns: dict[str, list[Any]] = {}
        for run in self.runs:
            parent = rerun_of(run.tags)
            if parent is not None:
                self.reruns.setdefault(str(parent), []).append(run)

    def chain(self, run_id: str) -> list[Any]:
        """A run and, depth first, every rerun made after it crashed."""
        run = self.by_id.get(run_id)
        if run is None:
            return []
        return [
            run,
            *(member for rerun in self.reruns.get(run_id, []) for member in self.chain(str(rerun.id))),
        ]


def _count(states: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for state in states:
        found[state] = found.get(state, 0) + 1
    return dict(sorted(found.items()))


def print_totals(ledger: Ledger, load: Load, since: dt.datetime) -> None:
    keys = {key: ids for key, ids in load.answers.items() if key.startswith("soak-")}
    chains = {key: ledger.chain(ids[-1]) for key, ids in keys.items()}
    members = [run for chain in chains.values() for run in chain]
    lost = [key for key, chain in chains.items() if not chain or not chain[-1].state.is_final()]
    done = asyncio.run(work_done([run.id for run in members]))
    twice = [key for key, chain in chains.items() if sum(r.state_name == "Completed" for r in chain) > 1]
    twice += [str(run_id) for run_id, count in done.items() if count > 1]
    twice += [key for key, ids in keys.items() if len(set(ids)) > 1]
    answered = {ids[-1] for ids in load.answers.values()}
    strays = [
        run
        for run in ledger.runs
        if run.created and run.created >= since and rerun_of(run.tags) is None and str(run.id) not in answered
    ]
    errors = {code: n for code, n in load.status_counts.items() if 500 <= code <= 599 and code != 503}
    states = _count([run.state_name or "?" for run in members])
    completed = sum(any(r.state_name == "Completed" for r in chain) for chain in chains.values())
    print("\nresults")
    print(f"  runs submitted (answered 202): {len(keys)}; given up: {len(load.given_up)}")
    print(f"  completed: {completed}; flow runs by final state: {states}")
    print(
        f"  crashed: {states.get('Crashed', 0)}; rerun: {sum(rerun_of(r.tags) is not None for r in members)}"
    )
    print(f"  lost: {len(lost)} (must be 0) {lost[:5]}")
    print(f"  executed twice: {len(twice)} (must be 0) {twice[:5]}")
    print(f"  flow runs no answered request made: {len(strays)}")
    print(f"  API 500-599 except 503: {sum(errors.values())} (must be 0) {errors}")
    print(f"  API 503 with Retry-After (a database away): {load.status_counts.get(503, 0)}")
    print(f"  refused connections (the API being restarted): {load.transport_errors}")


def print_faults(ledger: Ledger, faults: list[Fault]) -> None:
    print("\nfaults (in flight: started before the fault and not ended; for a worker fault, on that worker)")
    worst = 0.0
    for fault in faults:
        hit = affected(ledger.runs, fault)
        members = [member for run in hit for member in ledger.chain(str(run.id))]
        later = [
            r.end_time
            for r in ledger.runs
            if r.state_name == "Completed" and r.created and r.created >= fault.at
        ]
        back = (min(later) - fault.at).total_seconds() if later else float("nan")
        settled = (max([m.end_time for m in members if m.end_time] or [fault.at]) - fault.at).total_seconds()
        worst = max(worst, back, settled)
        print(
            f"  {fault.kind:24} {fault.target:10} in flight {len(hit):3}; with their reruns: "
            f"{_count([m.state_name or '?' for m in members])}; a new run completed {back:5.1f}s after; "
            f"the runs in flight settled {settled:5.1f}s after"
        )
        for member in members:
            if member.state_name != "Completed":
                ended = (member.end_time - fault.at).total_seconds() if member.end_time else float("nan")
                message = (member.state.message or "").splitlines()[0][:160] if member.state else ""
                print(f"      {member.id} {member.state_name} at +{ended:.1f}s: {message}")
    print(f"  worst recovery: {worst:.1f}s")


def report(
    stack: Stack,
    workflow: dict[str, Any],
    load: Load,
    faults: list[Fault],
    rss: dict[str, Any],
    since: dt.datetime,
) -> None:
    ledger = Ledger(asyncio.run(flow_runs(stack, workflow["deployment_id"])))
    print_totals(ledger, load, since)
    print_faults(ledger, faults)
    print(f"\nworker delivery: {read_delivery_status(stack.folder / 'state' / 'delivery')}")
    exits = {child.role: child.exits for child in stack.children() if child.exits}
    print(f"processes that exited on their own and were restarted (exit codes): {exits or 'none'}")
    print("RSS growth over the soak (longest-lived instance of each role):")
    for role, samples in sorted(rss.items()):
        print(f"  {role:8} {rss_growth(samples)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the fault schedule (default 7)")
    parser.add_argument("--capacity-runs", type=int, default=40, help="runs in the capacity burst")
    parser.add_argument("--keep", type=Path, help="keep the processes' logs in this folder")
    args = parser.parse_args()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    print(f"machine: {machine()}")
    print(f"soak: {args.minutes:g} min, seed {args.seed}, heartbeats every {HEARTBEAT_SECONDS}s")
    with (
        running_throwaway_postgres() as postgres,
        tempfile.TemporaryDirectory(prefix="trinity-soak-") as scratch,
    ):
        folder = args.keep or scratch
        Path(folder).mkdir(parents=True, exist_ok=True)
        stack = start_stack(Path(folder), postgres, pool="soak")
        try:
            with temporary_settings(updates={PREFECT_API_URL: stack.prefect.api_url}):
                workflow = create_workflow(stack)
                capacity = measure_capacity(stack, workflow, args.capacity_runs)
                rate = 0.7 * capacity
                print(f"capacity: {capacity:.0f} runs/min; soak load: {rate:.0f} runs/min (70 %)")
                load, faults = Load(stack.api_url, workflow["id"]), []
                rss: dict[str, dict[int, list[int]]] = {}
                stop = threading.Event()
                seconds = args.minutes * 60
                threads = [
                    threading.Thread(target=inject_faults, args=(stack, seconds, args.seed, faults, stop)),
                    threading.Thread(target=sample_rss, args=(stack, rss, stop), daemon=True),
                    threading.Thread(target=supervise, args=(stack, stop), daemon=True),
                ]
                for thread in threads:
                    thread.start()
                since = dt.datetime.now(dt.UTC)
                load.run(rate, seconds, "soak")
                threads[0].join()
                settle(stack, workflow)
                stop.set()
                report(stack, workflow, load, faults, rss, since)
        finally:
            stack.stop()


def settle(stack: Stack, workflow: dict[str, Any], timeout: float = 300) -> None:
    """Wait until no run of the deployment is waiting or going (reruns included)."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    busy: list[Any] = []
    while time.monotonic() < deadline:
        runs = asyncio.run(flow_runs(stack, workflow["deployment_id"]))
        busy = [run for run in runs if not (run.state and run.state.is_final())]
        # Reruns appear up to two heartbeat intervals after a crash: stay quiet that long.
        quiet_since = (quiet_since or time.monotonic()) if not busy else None
        if quiet_since is not None and time.monotonic() - quiet_since > 3 * HEARTBEAT_SECONDS + 10:
            return
        time.sleep(2)
    print(f"  (runs still waiting or going after {timeout:.0f}s of settling: {len(busy)})")


if __name__ == "__main__":
    main()
