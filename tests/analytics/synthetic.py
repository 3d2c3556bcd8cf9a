"""Seeded synthetic run histories with planted facts, for tests and benchmarks.

Three workflows, each fact switchable through :class:`Facts`:

* ``etl-daily`` (scheduled): ``transform`` gets slower by ``slowdown_seconds_per_day``
  (``slowdown``); ``aggregate`` dominates the critical path (``bottleneck``); ``export`` has no
  timeout and sometimes runs 8-20x its median (``long_tail``); ``lookup`` sees a handful of
  distinct inputs with the same outputs (``cacheable``); ``quality`` has a timeout just above its
  typical duration (``tight_timeout``). ``n_tasks`` adds short ``step_NN`` tasks.
* ``ingest-api`` (automation, bursts of 8 runs): ``fetch`` fails 25 % of attempts and succeeds on
  retry (``flaky``); ``validate`` fails every attempt for bad batches (``deterministic``);
  ``publish`` fails for whole bursts at once (``clustered``).
* ``fanout-report`` (scheduled): ``process`` fans out over 8 items under ``max_parallel_tasks: 2``
  (``parallel_wait``); ``notify`` fails 12 % of runs against a 97 % success target
  (``success_breach``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from analytics.frames import WorkflowContext
from tests.analytics.factories import workflow_doc
from tests.analytics.synthetic_sim import SimRuns, SimTask, simulate

ETL, INGEST, FANOUT = "etl-daily", "ingest-api", "fanout-report"
SLOW_TASK, BOTTLENECK_TASK, LONG_TAIL_TASK, CACHE_TASK, TIGHT_TASK = (
    "transform",
    "aggregate",
    "export",
    "lookup",
    "quality",
)
FLAKY_TASK, DETERMINISTIC_TASK, CLUSTERED_TASK = "fetch", "validate", "publish"
PARALLEL_TASK, BREACH_TASK = "process", "notify"
BURST = 8
FANOUT_ITEMS = 8
# Planted rates, named so that tests compare what the report measures with what was planted.
FLAKY_FAIL_RATE = 0.25  # share of fetch attempts that fail
BAD_BATCH_RATE = 0.06  # share of ingest-api runs whose batch validate always rejects
BREACH_FAIL_RATE = 0.12  # share of fanout-report runs where notify fails
BREACH_SUCCESS_TARGET = 0.97  # fanout-report's success_rate_min


@dataclass(frozen=True)
class Facts:
    """Which planted facts the history contains."""

    slowdown: bool = True
    bottleneck: bool = True
    long_tail: bool = True
    cacheable: bool = True
    tight_timeout: bool = True
    flaky: bool = True
    deterministic: bool = True
    clustered: bool = True
    parallel_wait: bool = True
    success_breach: bool = True

    @classmethod
    def none(cls) -> Facts:
        """A clean history: every fact off."""
        return cls(**{f.name: False for f in fields(cls)})

    @classmethod
    def only(cls, *names: str) -> Facts:
        """Just the named facts."""
        return replace(cls.none(), **dict.fromkeys(names, True))


class SyntheticHistory(NamedTuple):
    runs: pd.DataFrame
    tasks: pd.DataFrame
    context: dict[str, WorkflowContext]


def _messages(templates: list[str]) -> Any:
    def make(rng: np.random.Generator, n: int) -> list[str]:
        picks = rng.integers(0, len(templates), size=n)
        nums = rng.integers(1, 99_999, size=(n, 3))
        return [templates[p].format(a=a, b=b, c=c) for p, (a, b, c) in zip(picks, nums, strict=True)]

    return make


def _spec(name: str, **metrics: float) -> dict[str, Any]:
    return {"kind": "Specification", "name": name, "version": "1.0.0", "success_metrics": metrics}


def _doc(name: str, tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return workflow_doc(tasks, name=name, version="1.2.0", **extra)


def _etl(facts: Facts, n: int, n_tasks: int, slope: float) -> tuple[list[SimTask], dict[str, Any]]:
    sim = [
        SimTask("extract", median=10, timeout=120),
        SimTask(CACHE_TASK, ["extract"], median=20, timeout=120, inputs_pool=4 if facts.cacheable else None),
        SimTask(
            SLOW_TASK, ["extract"], median=60, timeout=3600, slope_per_day=slope if facts.slowdown else 0.0
        ),
        SimTask(TIGHT_TASK, ["extract"], median=30, sigma=0.25, timeout=40 if facts.tight_timeout else 300),
        SimTask(
            BOTTLENECK_TASK, [SLOW_TASK, CACHE_TASK], median=240 if facts.bottleneck else 40, timeout=3600
        ),
        SimTask(LONG_TAIL_TASK, [BOTTLENECK_TASK], median=20, tail_share=0.04 if facts.long_tail else 0.0),
        SimTask("finalize", [LONG_TAIL_TASK, TIGHT_TASK], median=5, timeout=60),
    ]
    for k in range(max(0, n_tasks - len(sim))):
        lane_prev = f"step_{k - 3:02d}" if k >= 3 else "extract"
        sim.append(SimTask(f"step_{k:02d}", [lane_prev], median=8, timeout=60))
    uses = {
        "extract": "sql",
        CACHE_TASK: "http",
        SLOW_TASK: "python",
        TIGHT_TASK: "python",
        "finalize": "noop",
    }
    tasks = []
    for t in sim:
        entry: dict[str, Any] = {"id": t.id, "uses": uses.get(t.id, "python"), "with": _with(uses.get(t.id))}
        if t.needs:
            entry["needs"] = list(t.needs)
        if t.timeout is not None:
            entry["timeout_seconds"] = t.timeout
        tasks.append(entry)
    interval = 30 * 86_400 / max(n, 1)
    doc = _doc(ETL, tasks, schedule={"interval_seconds": round(interval, 3)}, defaults={"retries": 0})
    return sim, doc


def _with(uses: str | None) -> dict[str, Any]:
    if uses == "sql":
        return {"block": "warehouse", "statement": "select * from events where day = :day"}
    if uses == "http":
        return {"url": "https://ref.example.com/v1/tables"}
    if uses == "noop":
        return {}
    return {"callable": "pipelines.steps:run", "kwargs": {"day": "${{ params.day }}"}}


def _ingest(facts: Facts, n: int, rng: np.random.Generator) -> tuple[list[SimTask], dict[str, Any]]:
    bad_batches = (rng.random(n) < BAD_BATCH_RATE) if facts.deterministic else np.zeros(n, dtype=bool)
    bursts = n // BURST
    outage = np.zeros(n, dtype=bool)
    if facts.clustered and bursts:
        hit = rng.choice(bursts, size=min(bursts, max(3, round(0.06 * bursts))), replace=False)
        outage[(hit[:, None] * BURST + np.arange(BURST)).ravel()] = True
    sim = [
        SimTask(
            FLAKY_TASK,
            median=12,
            retries=1,
            delay=5,
            fail_p=FLAKY_FAIL_RATE if facts.flaky else 0.0,
            messages=_messages(
                [
                    "ConnectionResetError: [Errno 104] Connection reset by peer",
                    "HTTPError: 503 Service Unavailable for url https://api.example.com/v1/items?page={a}",
                ]
            ),
        ),
        SimTask(
            DETERMINISTIC_TASK,
            [FLAKY_TASK],
            median=8,
            retries=2,
            delay=5,
            fail_runs=bad_batches,
            messages=_messages(
                ["ValueError: column 'amount' missing in /data/in/batch_{a}/part-{b}.csv (row {c})"]
            ),
        ),
        SimTask(
            CLUSTERED_TASK,
            [DETERMINISTIC_TASK],
            median=6,
            retries=2,
            delay=10,
            fail_runs=outage,
            messages=_messages(
                ["HTTPError: 429 Too Many Requests for url https://sink.example.com/v2/ingest/{a}"]
            ),
        ),
    ]
    tasks = [
        {
            "id": FLAKY_TASK,
            "uses": "http",
            "with": {"url": "https://api.example.com/v1/items"},
            "retries": 1,
            "retry_delay_seconds": 5,
        },
        {
            "id": DETERMINISTIC_TASK,
            "uses": "python",
            "with": {"callable": "pipelines.checks:validate"},
            "needs": [FLAKY_TASK],
            "retries": 2,
            "retry_delay_seconds": 5,
        },
        {
            "id": CLUSTERED_TASK,
            "uses": "http",
            "with": {"method": "POST", "url": "https://sink.example.com/v2/ingest"},
            "needs": [DETERMINISTIC_TASK],
            "retries": 2,
            "retry_delay_seconds": 10,
        },
    ]
    return sim, _doc(INGEST, tasks, defaults={"timeout_seconds": 300})


def _fanout(facts: Facts, n: int) -> tuple[list[SimTask], dict[str, Any]]:
    sim = [
        SimTask("list_parts", median=3),
        SimTask(PARALLEL_TASK, ["list_parts"], items=FANOUT_ITEMS, median=10),
        SimTask("merge", [PARALLEL_TASK], median=10),
        SimTask(
            BREACH_TASK,
            ["merge"],
            median=2,
            fail_p=BREACH_FAIL_RATE if facts.success_breach else 0.0,
            messages=_messages(["SMTPServerDisconnected: Connection unexpectedly closed after {a} bytes"]),
        ),
    ]
    tasks = [
        {
            "id": "list_parts",
            "uses": "python",
            "with": {"callable": "reports.parts:list_parts"},
            "timeout_seconds": 60,
        },
        {
            "id": PARALLEL_TASK,
            "uses": "python",
            "with": {"callable": "reports.parts:render", "args": ["${{ item }}"]},
            "needs": ["list_parts"],
            "for_each": "${{ tasks.list_parts.output }}",
            "timeout_seconds": 300,
        },
        {
            "id": "merge",
            "uses": "python",
            "with": {"callable": "reports.parts:merge"},
            "needs": [PARALLEL_TASK],
            "timeout_seconds": 120,
        },
        {
            "id": BREACH_TASK,
            "uses": "http",
            "with": {"method": "POST", "url": "https://mail.example.com/send"},
            "needs": ["merge"],
            "timeout_seconds": 60,
        },
    ]
    limit = 2 if facts.parallel_wait else 16
    return sim, _doc(FANOUT, tasks, concurrency={"max_parallel_tasks": limit}, schedule={"cron": "0 * * * *"})


def generate_history(
    *,
    n_runs: int = 600,
    n_tasks: int = 7,
    days: float = 30.0,
    seed: int = 0,
    facts: Facts | None = None,
    slowdown_seconds_per_day: float = 2.0,
    start: datetime = datetime(2025, 3, 3, tzinfo=UTC),
) -> SyntheticHistory:
    """A run history of ``n_runs`` runs over ``days`` days (40 % etl-daily, 40 % ingest-api in
    bursts of 8, 20 % fanout-report), with ``n_tasks`` tasks in etl-daily (at least 7)."""
    facts = facts or Facts()
    rng = np.random.default_rng(seed)
    t0 = start.timestamp()
    span = days * 86_400.0
    n_etl, n_fan = max(1, int(n_runs * 0.4)), max(1, int(n_runs * 0.2))
    n_ing = max(BURST, (n_runs - n_etl - n_fan) // BURST * BURST)

    etl_sim, etl_doc = _etl(facts, n_etl, n_tasks, slowdown_seconds_per_day)
    ing_sim, ing_doc = _ingest(facts, n_ing, rng)
    fan_sim, fan_doc = _fanout(facts, n_fan)
    burst_times = t0 + np.linspace(0, span, n_ing // BURST, endpoint=False) + 420.0
    plans = [
        (etl_sim, SimRuns(ETL, "1.2.0", t0 + np.linspace(0, span, n_etl, endpoint=False), "schedule")),
        (ing_sim, SimRuns(INGEST, "1.2.0", np.repeat(burst_times, BURST), "automation")),
        (
            fan_sim,
            SimRuns(
                FANOUT,
                "1.2.0",
                t0 + np.linspace(0, span, n_fan, endpoint=False) + 1800.0,
                "schedule",
                max_parallel=fan_doc["concurrency"]["max_parallel_tasks"],
            ),
        ),
    ]
    frames = [simulate(sim, plan, rng, t0) for sim, plan in plans]
    runs = pd.concat([f[0] for f in frames], ignore_index=True)
    tasks = pd.concat([f[1] for f in frames], ignore_index=True)
    context = {
        ETL: WorkflowContext(etl_doc, _spec(ETL, duration_p95_seconds=3600.0, max_queue_wait_seconds=120.0)),
        INGEST: WorkflowContext(
            ing_doc, _spec(INGEST, duration_p95_seconds=1800.0, max_queue_wait_seconds=120.0)
        ),
        FANOUT: WorkflowContext(
            fan_doc, _spec(FANOUT, success_rate_min=BREACH_SUCCESS_TARGET, duration_p95_seconds=1800.0)
        ),
    }
    return SyntheticHistory(runs, tasks, context)
