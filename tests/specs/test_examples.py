"""The example documents are valid, and the callables they use behave as the examples expect."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from flows.examples import flaky, orders, partitions, quality, reports
from specs.loader import check_paths, load_path
from specs.models import Specification, Workflow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "specs" / "examples"
FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_there_are_the_expected_examples() -> None:
    names = {path.stem for path in FILES}
    expected = {"orders-etl", "regional-report", "conditional-refresh", "flaky-retry", "nightly-ingest"}
    assert expected | {"wide-dag", "noop-dag"} <= names


def test_all_examples_are_valid_together() -> None:
    result = check_paths([EXAMPLES])
    assert [p.format() for p in result.problems] == []
    assert result.files == len(FILES)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_example_holds_its_specification_and_workflow(path: Path) -> None:
    documents = load_path(path)
    specs = {d.name for d in documents if isinstance(d, Specification)}
    workflows = [d for d in documents if isinstance(d, Workflow)]
    assert workflows
    assert all(w.spec.name in specs for w in workflows)
    assert path.read_text().startswith("# yaml-language-server: $schema=../schema/trinity.schema.json")


def _workflow(name: str) -> Workflow:
    documents = load_path(EXAMPLES / f"{name}.yaml")
    return next(d for d in documents if isinstance(d, Workflow) and d.name == name)


def test_examples_use_the_features_they_show() -> None:
    etl = _workflow("orders-etl")
    assert [t.uses for t in etl.tasks] == ["http", "python", "sql", "sql"]
    assert {t.with_["block"] for t in etl.tasks if t.uses == "sql"} == {"warehouse"}
    assert _workflow("regional-report").task("per_region").for_each is not None
    assert sum(t.if_ is not None for t in _workflow("conditional-refresh").tasks) == 2
    assert _workflow("flaky-retry").task("flaky").retry_backoff is not None
    assert _workflow("nightly-ingest").task("ingest").uses == "workflow"


def test_noop_dag_has_ten_layered_noop_tasks() -> None:
    workflow = _workflow("noop-dag")
    assert len(workflow.tasks) == 10
    assert {t.uses for t in workflow.tasks} == {"noop"}
    assert workflow.task("finish").needs == ["c1", "c2"]


def test_wide_dag_matches_its_generator() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        generator = importlib.import_module("generate_wide_dag")
    finally:
        sys.path.remove(str(ROOT / "bench"))
    text = (EXAMPLES / "wide-dag.yaml").read_text()
    assert text == generator.generate(width=100, layers=3, sleep_every=7)
    assert len(_workflow("wide-dag").tasks) == 302


def test_base_urls_are_parameters_with_defaults() -> None:
    spec = next(d for d in load_path(EXAMPLES / "orders-etl.yaml") if isinstance(d, Specification))
    assert spec.parameters["properties"]["api_base_url"]["default"].startswith("http://")
    assert "${{ params.api_base_url }}" in _workflow("orders-etl").task("extract").with_["url"]


def test_orders_transform() -> None:
    rows = [
        {"id": 1, "customer": "a", "total": 10.5},
        {"id": 2, "customer": "b", "total": 1},
        {"id": 3, "customer": "a", "total": 4.25},
    ]
    assert orders.transform(orders=rows, day="2024-01-31", min_total=2) == {
        "day": "2024-01-31",
        "orders": 2,
        "customers": 1,
        "revenue": 14.75,
    }


def test_reports_are_deterministic_and_combine() -> None:
    first = reports.region_report(region="emea", day="2024-01-31")
    assert first == reports.region_report(region="emea", day="2024-01-31")
    second = reports.region_report(region="apac", day="2024-01-31")
    combined = reports.combine(reports=[first, second])
    assert combined["regions"] == 2
    assert combined["revenue"] == first["revenue"] + second["revenue"]
    assert reports.combine(reports=[])["best_region"] is None


def test_quality_branch_inputs() -> None:
    assert quality.changed_rows(table="t", simulated_changes=5) == 5
    assert quality.refresh(table="t", mode="full", rows=5) == {"table": "t", "mode": "full", "rows": 5}
    with pytest.raises(ValueError, match=">= 0"):
        quality.changed_rows(table="t", simulated_changes=-1)


def test_flaky_fails_exactly_n_times(tmp_path: Path) -> None:
    counter = str(tmp_path / "attempts")
    for attempt in (1, 2):
        with pytest.raises(flaky.TransientError, match=f"attempt {attempt} of 3"):
            flaky.succeed_after(counter_path=counter, failures=2)
    assert flaky.succeed_after(counter_path=counter, failures=2) == {"attempts": 3}


def test_partitions() -> None:
    names = partitions.list_partitions(day="2024-01-31", count=2)
    assert names == ["2024-01-31/p0", "2024-01-31/p1"]
    results = [partitions.ingest(partition=name) for name in names]
    summary = partitions.summarize(results=results)
    assert summary == {"partitions": 2, "rows": sum(r["rows"] for r in results)}
