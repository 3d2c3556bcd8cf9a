"""Runs from a file: their definition stored where deployed runs keep theirs, tagged like them."""

from __future__ import annotations

import logging

import pytest
from prefect.client.orchestration import get_client

from blocks.workflow_definition import definition_block_name, load_definition
from deployments.service import deploy_workflow
from flows.local_run import start_local_run, store_run_definition
from tests.flows.factories import specification, workflow

pytestmark = pytest.mark.anyio


def _wf(output: str, name: str = "local-run-demo") -> object:
    return workflow([{"id": "a", "uses": "noop", "with": {"output": output}}], name=name)


async def test_a_run_from_a_file_stores_its_definition_and_is_tagged(prefect_api: object) -> None:
    wf = _wf("first")

    flow, flow_run = await start_local_run(wf, specification(), {})

    stored = await load_definition(definition_block_name("local-run-demo", "1.0.0"))
    assert stored.workflow_model() == wf
    assert flow.name == "local-run-demo"
    assert sorted(flow_run.tags) == ["trinity", "workflow:local-run-demo"]
    async with get_client() as client:
        assert (await client.read_flow(flow_run.flow_id)).name == "local-run-demo"


async def test_changed_content_replaces_a_definition_no_deployment_runs(prefect_api: object) -> None:
    await store_run_definition(_wf("old", name="local-undeployed"), specification())

    await store_run_definition(_wf("new", name="local-undeployed"), specification())

    stored = await load_definition(definition_block_name("local-undeployed", "1.0.0"))
    assert stored.workflow_model().tasks[0].with_ == {"output": "new"}


async def test_a_deployed_definition_is_never_changed_by_a_run_from_a_file(
    prefect_api: object, caplog: pytest.LogCaptureFixture
) -> None:
    await deploy_workflow(workflow=_wf("deployed", name="local-deployed"), specification=specification())

    with caplog.at_level(logging.WARNING, logger="flows.local_run"):
        await store_run_definition(_wf("edited", name="local-deployed"), specification())

    stored = await load_definition(definition_block_name("local-deployed", "1.0.0"))
    assert stored.workflow_model().tasks[0].with_ == {"output": "deployed"}
    (record,) = [r for r in caplog.records if r.name == "flows.local_run"]
    assert "local-deployed 1.0.0 differs from the deployed definition" in record.getMessage()
    assert "new version" in record.getMessage()
