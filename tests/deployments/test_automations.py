"""The heartbeat automation on a real Prefect server: installed by deploying, exactly once."""

from __future__ import annotations

import uuid

import pytest
from prefect.client.orchestration import get_client

from deployments.automations import CRASH_AUTOMATION_NAME, crash_automation, ensure_crash_automation
from deployments.service import deploy_workflow
from tests.flows.factories import specification, workflow
from tests.support.servers import PrefectServer

pytestmark = pytest.mark.anyio


async def _installed() -> list[object]:
    async with get_client() as client:
        return list(await client.read_automations_by_name(CRASH_AUTOMATION_NAME))


def test_the_automation_waits_two_heartbeat_intervals_for_trinity_runs() -> None:
    automation = crash_automation(interval=30)
    trigger = automation.trigger
    assert trigger.within.total_seconds() == 60
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    assert {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Suspended"} <= (
        trigger.expect
    )
    assert trigger.for_each == {"prefect.resource.id"}
    assert trigger.match_related.model_dump() == {
        "prefect.resource.role": "tag",
        "prefect.resource.id": "prefect.tag.trinity",
    }
    assert automation.actions[0].state.value == "CRASHED"


async def test_deploying_twice_installs_one_automation(prefect_api: PrefectServer) -> None:
    spec = specification(name="auto-spec")
    for version in ("1.0.0", "1.0.1"):
        document = workflow(
            [{"id": "a", "uses": "noop"}], name="auto", version=version, spec_name="auto-spec"
        )
        await deploy_workflow(workflow=document, specification=spec, work_pool=f"auto-{uuid.uuid4().hex[:6]}")
    [installed] = await _installed()
    assert installed.trigger.within.total_seconds() == 60  # type: ignore[attr-defined]


async def test_a_changed_interval_updates_it_in_place_and_copies_are_removed(
    prefect_api: PrefectServer,
) -> None:
    first = await ensure_crash_automation()
    async with get_client() as client:
        copy = await client.create_automation(crash_automation(interval=30))  # a concurrent install's
        assert len(await _installed()) == 2
        try:
            # Every installer keeps the same one of the two (the first by id).
            assert await ensure_crash_automation(client, interval=10) == min(first, copy, key=str)
            [installed] = await _installed()
            assert installed.trigger.within.total_seconds() == 20  # type: ignore[attr-defined]
        finally:
            await ensure_crash_automation(client)
    [installed] = await _installed()
    assert installed.trigger.within.total_seconds() == 60  # type: ignore[attr-defined]
