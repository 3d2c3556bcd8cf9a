"""Every workflow in specs/examples runs to completion on a real Prefect server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect_sqlalchemy import SqlAlchemyConnector

from blocks.workflow_definition import register_block_types, save_definition
from deployments.pairing import pair_documents
from flows.examples.partitions import ingest
from specs.loader import load_path
from tests.flows.factories import flow_run_id, read_flow_run, run_workflow, task_runs
from tests.support.servers import QuietHandler, serve_http

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "specs" / "examples"
ORDERS = [
    {"id": 1, "customer": "ann", "total": 30.5},
    {"id": 2, "customer": "bob", "total": 4.0},
    {"id": 3, "customer": "ann", "total": 12.25},
]


class _ShopHandler(QuietHandler):
    def do_GET(self) -> None:
        status = 200 if self.path.startswith("/orders") else 404
        self.reply(status, "application/json", json.dumps(ORDERS).encode())


@pytest.fixture
def shop_url() -> Iterator[str]:
    with serve_http(_ShopHandler) as url:
        yield url


def _parameters(name: str, tmp_path: Path, shop_url: str) -> dict[str, Any]:
    return {
        "orders-etl": {"day": "2026-11-21", "api_base_url": shop_url, "min_total": 5},
        "flaky-retry": {"counter_path": str(tmp_path / "attempts")},
        "nightly-ingest": {"day": "2026-11-21"},
        "ingest-partition": {"partition": "2026-11-21/p9"},
        "regional-report": {"day": "2026-11-21"},
    }.get(name, {})


def test_every_example_file_is_covered() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.yaml")) == sorted(EXAMPLE_FILES)


EXAMPLE_FILES = [
    "conditional-refresh.yaml",
    "flaky-retry.yaml",
    "nightly-ingest.yaml",
    "noop-dag.yaml",
    "orders-etl.yaml",
    "regional-report.yaml",
    "wide-dag.yaml",
]


@pytest.mark.parametrize("file_name", EXAMPLE_FILES)
async def test_example_runs(
    file_name: str, prefect_api: object, pg_url: str, tmp_path: Path, shop_url: str
) -> None:
    pairing = pair_documents(load_path(EXAMPLES / file_name))
    assert pairing.pairs
    assert not pairing.missing
    await register_block_types()
    for workflow, specification in pairing.pairs:
        await save_definition(workflow=workflow, specification=specification)  # children resolve
    warehouse = "postgresql+psycopg://" + pg_url.split("://", 1)[1]
    await SqlAlchemyConnector(connection_info=warehouse).asave("warehouse", overwrite=True)

    for workflow, specification in pairing.pairs:
        state = await run_workflow(workflow, specification, **_parameters(workflow.name, tmp_path, shop_url))

        assert state.is_completed(), f"{workflow.name}: {state.message}"
        outputs = await state.aresult()
        assert set(outputs) == {task.id for task in workflow.tasks}
        # One task run per task, one per item for a fan-out (one for an empty fan-out).
        expected = sum(max(len(outputs[t.id]), 1) if t.for_each is not None else 1 for t in workflow.tasks)
        runs = await task_runs(flow_run_id(state), expected=expected)
        assert len(runs) == expected
        assert {name.split("[", 1)[0] for name in runs} == {task.id for task in workflow.tasks}
        if workflow.name == "orders-etl":
            assert outputs["transform"] == {
                "day": "2026-11-21",
                "orders": 2,
                "customers": 1,
                "revenue": 42.75,
            }
        if workflow.name == "flaky-retry":
            assert outputs["done"] == 3
            assert runs["flaky"].run_count == 3
        if workflow.name == "nightly-ingest":
            assert sorted(name for name in runs if name.startswith("ingest[")) == ["ingest[0]", "ingest[1]"]
            assert outputs["summarize"]["partitions"] == 2
            loaded = [ingest(partition=f"2026-11-21/p{index}")["rows"] for index in range(2)]
            assert outputs["summarize"]["rows"] == sum(loaded) > 0
        if workflow.name == "conditional-refresh":
            skipped = sorted(name for name, run in runs.items() if run.state.name == "Skipped")
            assert len(skipped) == 1


async def test_a_scheduled_run_without_day_uses_its_scheduled_date(prefect_api: object) -> None:
    """Scheduled runs carry no parameters: ``day`` falls back to the run's scheduled date."""
    pairing = pair_documents(load_path(EXAMPLES / "regional-report.yaml"))
    [(workflow, specification)] = pairing.pairs

    state = await run_workflow(workflow, specification)

    assert state.is_completed(), state.message
    flow_run = await read_flow_run(flow_run_id(state))
    assert flow_run.expected_start_time is not None
    day = flow_run.expected_start_time.date().isoformat()
    outputs = await state.aresult()
    assert outputs["announce"].startswith(f"Best region on {day}: ")
    assert {report["day"] for report in outputs["per_region"]} == {day}
