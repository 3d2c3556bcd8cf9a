"""Failure families on planted histories: the same cause under different ids is one family."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from analytics import AnalysisConfig, Report, build_report, render_logs_tree
from analytics.families import exception_type
from analytics.learning_model import LearnedModels
from tests.analytics.factories import FAMILY_KEYS, frames, run_row, task_row


def _connection(rng: np.random.Generator) -> str:
    host = f"db-{rng.integers(1, 40)}.prod-{rng.integers(1, 4)}.example.com:{rng.choice([5432, 6432])}"
    return f"ConnectionError: could not connect to {host} after {rng.integers(1, 9)} attempts"


def _missing_order(rng: np.random.Generator) -> str:
    return (
        f"KeyError: order {uuid.UUID(int=int(rng.integers(0, 2**62)))} not found in partition "
        f"p{rng.integers(1, 99)} (scanned {rng.integers(100, 99_999)} rows)"
    )


def _disk_full(rng: np.random.Generator) -> str:
    path = f"/var/lib/worker-{rng.integers(1, 9)}/tmp/{rng.integers(0, 2**40):x}.parquet"
    return f"OSError: [Errno 28] No space left on device: '{path}' while writing {rng.integers(1, 999)} MB"


ONE_OFF = "PermissionError: [Errno 13] Permission denied when opening the audit log"
PLANTED = {"ConnectionError": 40, "KeyError": 25, "OSError": 15}


def _history(seed: int, *, start: float = 0.0, counts: dict[str, int] = PLANTED, one_off: bool = True) -> Any:
    """Failures of the three planted causes spread over two workflows, among completed runs."""
    rng = np.random.default_rng(seed)
    makers = {"ConnectionError": _connection, "KeyError": _missing_order, "OSError": _disk_full}
    errors = [(kind, makers[kind](rng)) for kind, n in counts.items() for _ in range(n)]
    if one_off:
        errors.append(("PermissionError", ONE_OFF))
    order = rng.permutation(len(errors))
    runs, tasks = [], []
    for i, k in enumerate(order):
        kind, message = errors[k]
        t = start + 600.0 * i
        workflow = "orders" if kind != "OSError" and i % 2 else "billing"
        rid = str(uuid.UUID(int=int(rng.integers(0, 2**62))))
        runs.append(run_row(rid, workflow=workflow, state="FAILED", start=t, end=t + 30))
        tasks.append(task_row(rid, "load", t, t + 20, workflow=workflow, state="FAILED", error=message))
        ok = f"{rid[:-4]}beef"
        runs.append(run_row(ok, workflow=workflow, start=t + 300, end=t + 330))
        tasks.append(task_row(ok, "load", t + 300, t + 320, workflow=workflow))
    return frames(runs, tasks)


def _report(history: Any, models: LearnedModels | None = None, **config: Any) -> Report:
    runs, tasks = history
    return build_report(runs=runs, tasks=tasks, context={}, models=models, config=AnalysisConfig(**config))


@pytest.fixture(scope="module")
def report() -> Report:
    return _report(_history(3))


def test_three_planted_causes_are_three_families_and_the_one_off_stays_apart(report: Report) -> None:
    families = report.families.families
    recurring = {exception_type(f.signature): f.count for f in families if f.count > 1}
    assert recurring == PLANTED
    (alone,) = [f for f in families if f.count == 1]
    assert alone.signature.startswith("PermissionError:")
    assert len(families) == 4
    by_type = {exception_type(f.signature): f for f in families}
    assert "<host>" in by_type["ConnectionError"].signature
    assert "<uuid>" in by_type["KeyError"].signature
    assert "<n>" in by_type["OSError"].signature
    # OSError failures were all planted on billing; the others on both workflows.
    assert by_type["OSError"].workflows == ["billing"]
    assert by_type["ConnectionError"].workflows == ["billing", "orders"]
    assert by_type["ConnectionError"].tasks == ["billing/load", "orders/load"]
    assert all(f.new and f.flow_runs == f.count == len(f.flow_run_ids) for f in families)


def test_families_file_follows_the_contract(report: Report) -> None:
    data = json.loads(render_logs_tree(report)["patterns/failure_families.json"])
    first = data["families"][0]
    assert list(first)[: len(FAMILY_KEYS)] == FAMILY_KEYS
    assert first["count"] == 40
    assert first["first_seen"] <= first["last_seen"]
    assert first["example"].startswith("ConnectionError: could not connect to db-")
    assert len(set(first["flow_run_ids"])) == 40


def test_a_second_report_keeps_the_families_and_spots_a_new_one(report: Report) -> None:
    later = _history(4, start=10 * 86_400.0, counts={"ConnectionError": 6, "KeyError": 4}, one_off=False)
    runs, tasks = later
    rid = "11111111-2222-3333-4444-555555555555"
    # A copy of the last failure, with another cause.
    runs.loc[len(runs)] = runs.iloc[-2].to_dict() | {"flow_run_id": rid}
    tasks.loc[len(tasks)] = tasks.iloc[-2].to_dict() | {
        "flow_run_id": rid,
        "error_message": "ZeroDivisionError: division by zero in ratio of batch 7",
    }
    second = _report((runs, tasks), report.models)

    known = {f.id: f for f in report.families.families}
    again = [f for f in second.families.families if f.id in known]
    assert {exception_type(f.signature): f.count for f in again} == {"ConnectionError": 6, "KeyError": 4}
    assert not any(f.new for f in again)
    # first seen is the family's first failure ever, not the window's.
    for family in again:
        assert family.first_seen == known[family.id].first_seen
    (fresh,) = [f for f in second.families.families if f.id not in known]
    assert fresh.new
    assert fresh.trend == "new"
    assert fresh.signature == "ZeroDivisionError: division by zero in ratio of batch <n>"
    assert fresh.model.revision == 1
    assert {f.model.revision for f in again} == {2}


def test_known_messages_are_not_clustered_again(report: Report) -> None:
    again = _report(_history(3), report.models)
    assert again.families.clustered < report.families.clustered
    assert {f.id for f in again.families.families} == {f.id for f in report.families.families}


def test_clustering_is_bounded_by_distinct_messages() -> None:
    small = _report(_history(5), family_max_messages=3)
    assert small.families.clustered == 3
    grouped = sum(f.count for f in small.families.families)
    assert grouped + small.families.ungrouped_failures == sum(PLANTED.values()) + 1
    # The three most frequent messages seed clusters; rarer variants join the nearest one.
    assert small.families.messages > 3


def test_messages_of_different_exception_types_never_merge() -> None:
    runs, tasks = _history(6, counts={"KeyError": 10}, one_off=False)
    tasks.loc[tasks["error_message"].notna(), "error_message"] = [
        f"{'LookupError' if i % 2 else 'KeyError'}: order {i} not found" for i in range(10)
    ]
    found = _report((runs, tasks)).families.families
    assert sorted(exception_type(f.signature) or "" for f in found) == ["KeyError", "LookupError"]


def test_exception_type_is_the_leading_class_name() -> None:
    assert exception_type("requests.exceptions.ConnectionError: refused") == "ConnectionError"
    assert exception_type("something went wrong: x") is None
    assert exception_type("<no error message>") is None


def test_reports_without_learning_have_no_families() -> None:
    runs, tasks = _history(7)
    plain = build_report(runs=runs, tasks=tasks, context={}, config=replace(AnalysisConfig(), learn=False))
    assert plain.families.families == []
    assert plain.models.families == {}
