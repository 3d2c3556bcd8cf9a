"""Heartbeats and reruns of crashed runs, against a real Prefect server (runs crashed by hand).

The fault suite (tests/chaos) crashes runs by killing their worker; here the crash is a state set
through Prefect's API, so the rerun rules can be checked one by one, quickly.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.states import Crashed

from flows.worker.heartbeat import MIN_HEARTBEAT_SECONDS, HeartbeatSender, heartbeat_seconds
from flows.worker.reruns import CrashPolicies, heartbeats_since, rerun_if_allowed, rerun_of, rerun_tag
from tests.support.servers import PrefectServer

pytestmark = pytest.mark.anyio
SPEC_TASKS = [{"id": "only", "uses": "noop"}]


async def _deploy(name: str, **extra: object) -> uuid.UUID:
    from deployments.service import deploy_workflow
    from tests.flows.factories import specification, workflow

    spec = specification(
        {"type": "object", "properties": {"day": {"type": "string", "default": "monday"}}},
        name=f"{name}-spec",
    )
    document = workflow(SPEC_TASKS, name=name, spec_name=f"{name}-spec", **extra)
    # A pool no worker serves: the runs stay where the test puts them.
    ref = await deploy_workflow(
        workflow=document, specification=spec, work_pool=f"idle-{uuid.uuid4().hex[:6]}"
    )
    return ref.id


async def _crashed_run(deployment_id: uuid.UUID, **parameters: object) -> uuid.UUID:
    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(deployment_id, parameters=parameters or None)
        await client.set_flow_run_state(run.id, Crashed(message="its process died"), force=True)
    return run.id


async def _crash(flow_run_id: uuid.UUID) -> None:
    async with get_client() as client:
        await client.set_flow_run_state(flow_run_id, Crashed(message="its process died"), force=True)


async def _reruns_of(flow_run_id: uuid.UUID) -> list[uuid.UUID]:
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[rerun_tag(flow_run_id)]))
        )
    return [run.id for run in runs]


def test_heartbeat_interval_comes_from_the_environment() -> None:
    assert heartbeat_seconds({}) == 30
    assert heartbeat_seconds({"TRINITY_HEARTBEAT_SECONDS": "12.5"}) == 12.5
    with pytest.raises(ValueError, match="TRINITY_HEARTBEAT_SECONDS must be a number of seconds, got 'x'"):
        heartbeat_seconds({"TRINITY_HEARTBEAT_SECONDS": "x"})
    with pytest.raises(ValueError, match="between 5 and 3600 seconds, got 1"):
        heartbeat_seconds({"TRINITY_HEARTBEAT_SECONDS": "1"})


def test_rerun_tags_name_the_crashed_run() -> None:
    crashed = uuid.uuid4()
    assert rerun_tag(crashed) == f"rerun-of:{crashed}"
    assert rerun_of(["trinity", rerun_tag(crashed)]) == crashed
    assert rerun_of(["trinity", "rerun-of:not-an-id"]) is None
    assert rerun_of(None) is None


async def test_two_watchers_make_one_rerun_with_the_same_parameters_and_tags(
    prefect_api: PrefectServer,
) -> None:
    deployment = await _deploy("rerun-once", on_crash={"rerun": 1})
    crashed = await _crashed_run(deployment, day="friday")
    async with get_client() as client:
        first, second = await asyncio.gather(
            rerun_if_allowed(client, crashed, CrashPolicies(client)),
            rerun_if_allowed(client, crashed, CrashPolicies(client)),
        )
        original = await client.read_flow_run(crashed)
    made = [run for run in (first, second) if run is not None]
    assert made, "no watcher made a rerun"
    assert {run.id for run in made} == set(await _reruns_of(crashed))
    [rerun] = {run.id: run for run in made}.values()
    assert rerun.parameters == original.parameters == {"day": "friday"}
    assert rerun_tag(crashed) in rerun.tags
    assert set(original.tags) <= set(rerun.tags)
    assert rerun.deployment_id == deployment


async def test_a_chain_of_reruns_stops_at_the_workflows_limit(prefect_api: PrefectServer) -> None:
    deployment = await _deploy("rerun-twice", on_crash={"rerun": 2})
    crashed = await _crashed_run(deployment)
    async with get_client() as client:
        policies = CrashPolicies(client)
        first = await rerun_if_allowed(client, crashed, policies)
        assert first is not None
        await _crash(first.id)
        second = await rerun_if_allowed(client, first.id, policies)
        assert second is not None
        assert rerun_of(second.tags) == first.id
        await _crash(second.id)
        assert await rerun_if_allowed(client, second.id, policies) is None
    assert await _reruns_of(second.id) == []


async def test_no_rerun_without_on_crash_or_without_a_crash(prefect_api: PrefectServer) -> None:
    plain = await _deploy("no-on-crash")
    crashed = await _crashed_run(plain)
    rerunnable = await _deploy("on-crash-but-fine", on_crash={"rerun": 3})
    async with get_client() as client:
        scheduled = await client.create_flow_run_from_deployment(rerunnable)
        policies = CrashPolicies(client)
        assert await rerun_if_allowed(client, crashed, policies) is None
        assert await rerun_if_allowed(client, scheduled.id, policies) is None
    assert await _reruns_of(crashed) == [] == await _reruns_of(scheduled.id)


async def test_a_run_still_sending_heartbeats_after_its_crash_is_not_rerun(
    prefect_api: PrefectServer,
) -> None:
    deployment = await _deploy("crashed-but-alive", on_crash={"rerun": 1})
    crashed = await _crashed_run(deployment)
    async with get_client() as client:
        run = await client.read_flow_run(crashed)
        # Its process was only frozen: it comes back and carries on sending heartbeats.
        with HeartbeatSender(interval=MIN_HEARTBEAT_SECONDS).start() as sender:
            sender.add(run)
            assert await rerun_if_allowed(client, crashed, CrashPolicies(client), quiet_seconds=8) is None
        assert await heartbeats_since(client, crashed, run.state.timestamp) == 1
    assert await _reruns_of(crashed) == []
