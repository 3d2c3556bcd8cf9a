"""Workflows as Prefect deployments, checked against what a real Prefect server stores."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
from prefect.client.schemas.objects import ConcurrencyLimitStrategy
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.settings import Settings

from deployments.automations import CRASH_AUTOMATION_NAME
from deployments.prefect_yaml import render_prefect_yaml
from deployments.runs import DeploymentNotFoundError
from deployments.schedules import deployment_schedules
from deployments.service import (
    DeploymentError,
    delete_deployment,
    deploy_workflow,
    deployment_spec,
    ensure_work_pool,
    set_deployment_paused,
)
from flows.entry import entrypoint_for
from specs.models import Schedule
from tests.flows.factories import specification, workflow

pytestmark = pytest.mark.anyio

SPEC = specification(
    {
        "type": "object",
        "properties": {"day": {"type": "string", "format": "date"}, "n": {"type": "integer", "default": 3}},
        "required": ["day"],
    }
)


def _workflow(version: str = "1.0.0", **extra: object) -> object:
    return workflow(
        [{"id": "a", "uses": "noop", "with": {"output": "${{ params.n }}"}}],
        name="sales.daily",
        version=version,
        description="Daily sales.",
        tags=["sales"],
        **extra,
    )


@pytest.mark.parametrize("prefect_api", ["sqlite", "postgres"], indirect=True)
async def test_deploy_creates_the_deployment_prefect_runs(prefect_api: object) -> None:
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    wf = _workflow(
        schedule={"cron": "0 6 * * *", "timezone": "Europe/Paris", "active": False},
        concurrency={"max_active_runs": 2, "on_collision": "cancel_new"},
    )

    ref = await deploy_workflow(workflow=wf, specification=SPEC, work_pool=pool)

    assert ref.full_name == "sales.daily/trinity"
    async with get_client() as client:
        deployment = await client.read_deployment_by_name("sales.daily/trinity")
        flow = await client.read_flow_by_name("sales.daily")
        work_pool = await client.read_work_pool(pool)
    assert deployment.id == ref.id
    assert deployment.flow_id == flow.id  # the workflow is its own flow, the deployment under it
    assert deployment.version == "1.0.0"
    assert deployment.description == "Daily sales."
    assert set(deployment.tags) == {"trinity", "workflow:sales.daily", "sales"}
    assert deployment.work_pool_name == pool
    assert deployment.entrypoint == entrypoint_for(
        deployment_spec(workflow=wf, specification=SPEC).block_name
    )
    assert deployment.parameter_openapi_schema == {**SPEC.parameters, "additionalProperties": False}
    assert deployment.enforce_parameter_schema is True
    assert deployment.paused is False
    assert deployment.global_concurrency_limit.limit == 2
    assert deployment.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.CANCEL_NEW
    (schedule,) = deployment.schedules
    assert isinstance(schedule.schedule, CronSchedule)
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
        "0 6 * * *",
        "Europe/Paris",
        False,
    )
    assert work_pool.type == "process"
    assert "command" in work_pool.base_job_template["variables"]["properties"]


async def test_deploy_again_updates_in_place(prefect_api: object) -> None:
    first = await deploy_workflow(workflow=_workflow(schedule={"interval_seconds": 3600}), specification=SPEC)
    second = await deploy_workflow(
        workflow=_workflow(schedule={"interval_seconds": 3600}), specification=SPEC
    )
    newer = await deploy_workflow(
        workflow=_workflow("1.1.0", schedule={"interval_seconds": 600}), specification=SPEC
    )

    assert first.id == second.id == newer.id
    async with get_client() as client:
        deployment = await client.read_deployment(newer.id)
    assert deployment.version == "1.1.0"
    assert deployment.global_concurrency_limit is None
    assert len(deployment.schedules) == 1
    assert deployment.schedules[0].schedule.interval == dt.timedelta(minutes=10)
    assert deployment.entrypoint == entrypoint_for(
        deployment_spec(workflow=_workflow("1.1.0"), specification=SPEC).block_name
    )


async def test_server_enforces_the_parameter_schema(prefect_api: object) -> None:
    ref = await deploy_workflow(workflow=_workflow(), specification=SPEC)

    async with get_client() as client:
        with pytest.raises(PrefectHTTPStatusError):
            await client.create_flow_run_from_deployment(
                ref.id, parameters={"day": "2026-11-21", "n": "three"}
            )
        with pytest.raises(PrefectHTTPStatusError):
            await client.create_flow_run_from_deployment(ref.id, parameters={})
        accepted = await client.create_flow_run_from_deployment(ref.id, parameters={"day": "2026-11-21"})
    assert accepted.parameters == {"day": "2026-11-21"}


async def test_pause_resume_and_delete(prefect_api: object) -> None:
    ref = await deploy_workflow(workflow=_workflow(), specification=SPEC, paused=True)
    async with get_client() as client:
        assert (await client.read_deployment(ref.id)).paused is True
        await set_deployment_paused(deployment_id=ref.id, paused=False)
        assert (await client.read_deployment(ref.id)).paused is False

        await delete_deployment(deployment_id=ref.id)

    with pytest.raises(DeploymentNotFoundError):
        await delete_deployment(deployment_id=ref.id)
    with pytest.raises(DeploymentNotFoundError):
        await set_deployment_paused(deployment_id=ref.id, paused=True)


async def test_ensure_work_pool_is_idempotent(prefect_api: object) -> None:
    name = f"pool-{uuid.uuid4().hex[:8]}"

    await ensure_work_pool(name=name)
    await ensure_work_pool(name=name)

    async with get_client() as client:
        assert (await client.read_work_pool(name)).type == "process"


def test_schedule_kinds() -> None:
    cron, interval, rrule = (
        deployment_schedules(Schedule.model_validate(s))[0]
        for s in (
            {"cron": "*/5 * * * *"},
            {"interval_seconds": 90, "timezone": "America/New_York"},
            {"rrule": "FREQ=HOURLY;INTERVAL=6", "active": False},
        )
    )

    assert isinstance(cron.schedule, CronSchedule)
    assert isinstance(interval.schedule, IntervalSchedule)
    assert interval.schedule.interval == dt.timedelta(seconds=90)
    assert interval.schedule.anchor_date.year == 2020  # fixed anchor: redeploys keep run times
    assert isinstance(rrule.schedule, RRuleSchedule)
    assert rrule.active is False
    assert deployment_schedules(None) == []


def test_prefect_yaml_describes_the_same_deployment() -> None:
    wf = _workflow(schedule={"cron": "0 2 * * *"}, concurrency={"max_active_runs": 1})
    spec = deployment_spec(workflow=wf, specification=SPEC, work_pool="p1")

    document = yaml.safe_load(render_prefect_yaml([spec]))

    (entry,) = document["deployments"]
    assert entry["name"] == "trinity"  # the flow, "sales.daily", comes from the entrypoint
    assert entry["entrypoint"] == spec.entrypoint
    assert entry["work_pool"]["name"] == "p1"
    assert entry["schedules"] == [{"cron": "0 2 * * *", "timezone": "UTC", "active": True}]
    assert entry["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    assert entry["parameter_openapi_schema"] == {**SPEC.parameters, "additionalProperties": False}
    assert entry["enforce_parameter_schema"] is True
    assert entry["work_pool"]["job_variables"] == {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}}


async def _legacy_deployment(name: str, pool: str) -> uuid.UUID:
    """A deployment as older versions made it: ``trinity-workflow/<name>`` of the one generic flow."""
    wf = workflow([{"id": "a", "uses": "noop"}], name=name)
    spec = deployment_spec(workflow=wf, specification=SPEC, work_pool=pool)
    await ensure_work_pool(name=pool)
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("trinity-workflow")
        return await client.create_deployment(
            flow_id=flow_id,
            name=name,
            version="1.0.0",
            tags=["trinity", f"workflow:{name}"],
            entrypoint=spec.entrypoint,
            work_pool_name=pool,
        )


async def _workflow_deployments(name: str) -> list[str]:
    async with get_client() as client:
        found = await client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[f"workflow:{name}"]))
        )
        flows = {d.flow_id: (await client.read_flow(d.flow_id)).name for d in found}
    return sorted(f"{flows[d.flow_id]}/{d.name}" for d in found)


@pytest.mark.parametrize("prefect_api", ["sqlite", "postgres"], indirect=True)
async def test_deploy_replaces_a_deployment_made_by_an_older_version(prefect_api: object) -> None:
    name = f"legacy-{uuid.uuid4().hex[:8]}"
    legacy_id = await _legacy_deployment(name, pool="legacy-pool")
    assert await _workflow_deployments(name) == [f"trinity-workflow/{name}"]

    ref = await deploy_workflow(
        workflow=workflow([{"id": "a", "uses": "noop"}], name=name),
        specification=SPEC,
        work_pool="legacy-pool",
    )

    assert await _workflow_deployments(name) == [f"{name}/trinity"]  # no orphan left behind
    async with get_client() as client:
        with pytest.raises(ObjectNotFound):
            await client.read_deployment(legacy_id)
        assert (await client.read_deployment_by_name(f"{name}/trinity")).id == ref.id
    again = await deploy_workflow(
        workflow=workflow([{"id": "a", "uses": "noop"}], name=name),
        specification=SPEC,
        work_pool="legacy-pool",
    )
    assert again.id == ref.id


async def test_trinitys_own_flow_names_cannot_be_deployed(prefect_api: object) -> None:
    wf = workflow([{"id": "a", "uses": "noop"}], name="trinity-performance-report")

    with pytest.raises(DeploymentError, match="is reserved"):
        await deploy_workflow(workflow=wf, specification=SPEC)


@pytest.mark.parametrize(
    ("configured", "frequency", "window"), [(None, "30", 60), ("45", "45", 90), ("5", "30", 10)]
)
async def test_deployments_make_flow_run_processes_heartbeat_as_often_as_the_automation_expects(
    prefect_api: object, monkeypatch: pytest.MonkeyPatch, configured: str | None, frequency: str, window: int
) -> None:
    if configured is None:
        monkeypatch.delenv("TRINITY_HEARTBEAT_SECONDS", raising=False)
    else:
        monkeypatch.setenv("TRINITY_HEARTBEAT_SECONDS", configured)
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    ref = await deploy_workflow(workflow=_workflow(), specification=SPEC, work_pool=pool)
    async with get_client() as client:
        deployment = await client.read_deployment(ref.id)
        [automation] = await client.read_automations_by_name(CRASH_AUTOMATION_NAME)
    # One interval for both: what a flow-run process is told, and how long the automation waits.
    # Prefect's engine heartbeats every 30 s at most, so a shorter interval is raised to that.
    assert deployment.job_variables == {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": frequency}}
    assert automation.trigger.within.total_seconds() == window  # type: ignore[attr-defined]
    # The value is one Prefect's flow-run processes accept (it refuses anything under 30).
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", frequency)
    assert Settings().flows.heartbeat_frequency == int(frequency)


def test_a_heartbeat_interval_that_is_no_number_is_a_deployment_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRINITY_HEARTBEAT_SECONDS", "often")
    with pytest.raises(DeploymentError, match="TRINITY_HEARTBEAT_SECONDS must be a number of seconds"):
        deployment_spec(workflow=_workflow(), specification=SPEC)
