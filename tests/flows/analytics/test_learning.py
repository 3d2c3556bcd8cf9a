"""Learning from real runs through Prefect: failure families, stored models, and alerts as events."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from typer.testing import CliRunner

from deployments.service import deploy_workflow
from flows.analytics.flows import performance_report
from specs.models import Specification
from tests.flows.analytics.support import Store, run_and_settle, utcnow
from tests.flows.factories import flow_run_id, workflow
from tests.support.events import read_events, wait_for
from tests.support.servers import PrefectServer
from trinity.commands import report_commands
from trinity.core.alerts import NEW_FAILURE_FAMILY, SLO_BREACHED

pytestmark = pytest.mark.anyio

CONNECTION = "could not connect to db-{i}.prod.example.com:5432 after {n} attempts"
MISSING = "order {id} not found in partition p{i}"


def _documents(name: str) -> tuple[Any, Specification]:
    spec = Specification.model_validate(
        {
            "kind": "Specification",
            "name": name,
            "version": "1.0.0",
            "success_metrics": {"success_rate_min": 0.99},
            "parameters": {"type": "object", "properties": {"message": {"type": "string"}}},
        }
    )
    wf = workflow(
        [
            {
                "id": "load",
                "uses": "python",
                "with": {"callable": "tests.flows.helpers:boom", "args": ["${{ params.message }}"]},
            }
        ],
        name=name,
        spec_name=name,
    )
    return wf, spec


async def _fail_runs(wf: Any, spec: Specification, messages: list[str]) -> list[uuid.UUID]:
    return [flow_run_id(await run_and_settle(wf, spec, expected_tasks=1, message=m)) for m in messages]


def _messages(seed: int) -> list[str]:
    connection = [CONNECTION.format(i=seed * 10 + i, n=i + 2) for i in range(3)]
    missing = [MISSING.format(id=uuid.uuid4(), i=seed * 10 + i) for i in range(3)]
    return connection + missing


async def _events(
    api_url: str, name: str, workflow_name: str, since: Any, count: int
) -> list[dict[str, Any]]:
    return await anyio.to_thread.run_sync(
        lambda: wait_for(
            lambda: (
                found
                if len(
                    found := read_events(
                        api_url, names=[name], resource_id=f"trinity.workflow.{workflow_name}", since=since
                    )
                )
                >= count
                else None
            ),
            timeout=60,
            what=f"{count} {name} event(s)",
        )
    )


async def test_the_performance_flow_finds_families_stores_models_and_alerts(
    prefect_api: PrefectServer, trinity_db: Store, tmp_path: Path
) -> None:
    name = f"flaky-ingest-{uuid.uuid4().hex[:6]}"
    wf, spec = _documents(name)
    ref = await deploy_workflow(workflow=wf, specification=spec, work_pool="analytics-tests")
    await _fail_runs(wf, spec, _messages(1))
    await anyio.sleep(1.1)  # execution_logs.created_at has whole seconds on SQLite
    started = utcnow()
    logs = tmp_path / "LOGS"

    state = await performance_report(logs_dir_path=str(logs), database_url=trinity_db.url, return_state=True)

    assert state.is_completed(), state.message
    # Two new families and one breached SLO of this workflow; runs other tests left on the shared
    # Prefect server may add alerts and families of their own.
    assert (await state.aresult())["alerts"] >= 3
    every_family = json.loads((logs / "patterns" / "failure_families.json").read_text())["families"]
    families = [f for f in every_family if name in f["workflows"]]
    assert sorted(f["count"] for f in families) == [3, 3]
    assert all(f["tasks"] == [f"{name}/load"] and f["workflows"] == [name] for f in families)
    signatures = sorted(f["signature"] for f in families)
    assert signatures == [
        "ValueError: could not connect to <host> after <n> attempts",
        "ValueError: order <uuid> not found in partition p<n>",
    ]
    # The same families as rows (for the API) and as learnt models.
    rows = [row for row in trinity_db.rows(trinity_db.tables.families) if name in row["workflows"]]
    assert sorted(row["signature"] for row in rows) == signatures
    models = trinity_db.rows(trinity_db.tables.models)
    kinds = {(row["kind"], row["key"]) for row in models}
    assert {kind for kind, _ in kinds} == {"failure_family", "task_baseline", "slo_forecast"}
    assert (("task_baseline", f"{name}/load")) in kinds
    async with get_client() as client:
        (artifact,) = [
            a
            for a in await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["trinity-performance-failure-families"])
                )
            )
            if a.flow_run_id == flow_run_id(state)
        ]
    assert set(signatures) <= {row["signature"] for row in json.loads(str(artifact.data))}

    new = await _events(prefect_api.api_url, NEW_FAILURE_FAMILY, name, started, 2)
    assert sorted(e["payload"]["signature"] for e in new) == signatures
    for event in new:
        assert event["resource"]["prefect.resource.name"] == name
        # The workflow's deployment (Prefect adds the analytics flow run emitting it).
        deployments = [r for r in event["related"] if r["prefect.resource.role"] == "deployment"]
        assert [r["prefect.resource.id"] for r in deployments] == [f"prefect.deployment.{ref.id}"]
        assert event["payload"]["count"] == 3
        assert len(event["payload"]["flow_run_ids"]) == 3
    (breached,) = await _events(prefect_api.api_url, SLO_BREACHED, name, started, 1)
    assert breached["payload"]["metric"] == "success_rate_min"
    assert breached["payload"]["observed"] == 0.0
    assert breached["payload"]["target"] == 0.99

    # More of the same failures: the families are known, the breach was told an hour ago at most.
    await _fail_runs(wf, spec, _messages(2)[:2])
    await anyio.sleep(1.1)
    again = await performance_report(logs_dir_path=str(logs), database_url=trinity_db.url)
    assert again["alerts"] == 0
    every_family = json.loads((logs / "patterns" / "failure_families.json").read_text())["families"]
    families = [f for f in every_family if name in f["workflows"]]
    assert sorted(f["count"] for f in families) == [3, 5]
    assert not any(f["new"] for f in families)


def test_trinity_report_sends_its_alerts(
    prefect_api: PrefectServer, trinity_db: Store, tmp_path: Path
) -> None:
    name = f"cli-alerts-{uuid.uuid4().hex[:6]}"
    wf, spec = _documents(name)

    async def prepare() -> None:
        await deploy_workflow(workflow=wf, specification=spec, work_pool="analytics-tests")
        await _fail_runs(wf, spec, _messages(3)[:3])

    anyio.run(prepare)
    started = utcnow()
    application = report_commands.typer.Typer()
    report_commands.register(application)
    application.command("unused", hidden=True)(lambda: None)  # keeps "report" a subcommand

    result = CliRunner().invoke(application, ["report", "--since", "-1h", "--out", str(tmp_path / "LOGS")])

    assert result.exit_code == 0, result.stderr
    (event,) = wait_for(
        lambda: read_events(
            prefect_api.api_url,
            names=[NEW_FAILURE_FAMILY],
            resource_id=f"trinity.workflow.{name}",
            since=started,
        ),
        timeout=60,
        what="new failure family event",
    )
    assert event["payload"]["signature"] == "ValueError: could not connect to <host> after <n> attempts"
    (breach,) = read_events(prefect_api.api_url, names=[SLO_BREACHED], resource_id=f"trinity.workflow.{name}")
    assert breach["payload"]["observed"] == 0.0
