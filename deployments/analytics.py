"""The analytics flows as scheduled Prefect deployments (performance hourly, insights daily).

Same mechanism as the workflow deployments (:mod:`deployments.service`): a module-path entrypoint
(``flows.analytics.flows.<function>``, imported from the worker's environment, no code download),
the flow's parameters as the run form, and Prefect's upsert by (flow, name), so deploying again
updates the deployment in place and replaces its schedule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from croniter import croniter
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import Flow
from prefect.utilities.callables import parameter_schema
from pydantic import BaseModel

from deployments.service import DeploymentError, DeploymentRef, ensure_work_pool
from flows.analytics.flows import insights_report, performance_report
from flows.entry import PULL_STEPS
from flows.worker.heartbeat import flow_run_heartbeat_environment
from specs.naming import ANALYTICS_TAG, INSIGHTS_FLOW, PERFORMANCE_FLOW, TRINITY_TAG

DEPLOYMENT_NAME = "trinity"
DEFAULT_PERFORMANCE_CRON = "0 * * * *"
DEFAULT_INSIGHTS_CRON = "0 6 * * *"
TAGS = [TRINITY_TAG, ANALYTICS_TAG]


@dataclass(frozen=True)
class AnalyticsDeployment:
    """One analytics deployment to create (pure data)."""

    flow: Flow[..., Any]
    flow_name: str
    cron: str
    description: str
    parameters: dict[str, Any]

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{DEPLOYMENT_NAME}"

    @property
    def entrypoint(self) -> str:
        """The flow function's module path, imported from the worker's environment."""
        return f"{self.flow.fn.__module__}.{self.flow.fn.__name__}"


def schedule_options(analytics: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    """Keyword arguments for :func:`deploy_analytics_flows` from the configuration's ``analytics``
    section (``performance_cron``, ``insights_cron``, ``timezone``, ``window_days`` and ``logs_dir``
    when present), e.g. ``schedule_options(settings.analytics)``.

    Given the settings model rather than a plain mapping, only the keys the configuration (or
    ``TRINITY_LOGS_DIR``) set count: an unset ``logs_dir`` leaves the worker on its own
    ``TRINITY_LOGS_DIR``, as ``trinity report`` falls back to the state folder. A relative
    ``logs_dir`` is made absolute here, because ``trinity report`` resolves it against the folder it
    runs in, while a worker would resolve it against its own.
    """
    section = analytics.model_dump(exclude_unset=True) if isinstance(analytics, BaseModel) else analytics
    options: dict[str, Any] = {}
    for key in ("performance_cron", "insights_cron", "timezone"):
        if section.get(key):
            options[key] = str(section[key])
    if section.get("window_days"):
        options["window_days"] = int(section["window_days"])
    if section.get("logs_dir"):
        options["logs_dir"] = os.path.abspath(str(section["logs_dir"]))
    return options


def _check_cron(name: str, cron: str, timezone: str) -> CronSchedule:
    if not croniter.is_valid(cron):
        raise DeploymentError(f"analytics.{name}: {cron!r} is not a cron expression (e.g. '0 * * * *')")
    try:
        return CronSchedule(cron=cron, timezone=timezone)
    except ValueError as exc:
        raise DeploymentError(f"analytics.timezone: {timezone!r} is not a known time zone") from exc


def analytics_deployments(
    *,
    performance_cron: str = DEFAULT_PERFORMANCE_CRON,
    insights_cron: str = DEFAULT_INSIGHTS_CRON,
    window_days: int | None = None,
    logs_dir: str | None = None,
) -> list[AnalyticsDeployment]:
    """Describe the two deployments without talking to Prefect."""
    common = {"logs_dir_path": logs_dir} if logs_dir else {}
    insights_parameters: dict[str, Any] = dict(common)
    if window_days is not None:
        insights_parameters["window_days"] = window_days
    return [
        AnalyticsDeployment(
            flow=performance_report,
            flow_name=PERFORMANCE_FLOW,
            cron=performance_cron,
            description="Harvest Trinity runs; refresh the performance report of the periods that changed.",
            parameters=common,
        ),
        AnalyticsDeployment(
            flow=insights_report,
            flow_name=INSIGHTS_FLOW,
            cron=insights_cron,
            description="Harvest Trinity runs and analyse the last days: recommendations and insights.",
            parameters=insights_parameters,
        ),
    ]


async def deploy_analytics_flows(
    *,
    work_pool: str,
    performance_cron: str = DEFAULT_PERFORMANCE_CRON,
    insights_cron: str = DEFAULT_INSIGHTS_CRON,
    timezone: str = "UTC",
    window_days: int | None = None,
    logs_dir: str | None = None,
) -> list[DeploymentRef]:
    """Create or update the performance and insights deployments on ``work_pool`` (idempotent).

    Raises :class:`~deployments.service.DeploymentError` for an invalid cron or time zone.
    """
    specs = analytics_deployments(
        performance_cron=performance_cron,
        insights_cron=insights_cron,
        window_days=window_days,
        logs_dir=logs_dir,
    )
    schedules = {
        spec.flow_name: _check_cron(key, spec.cron, timezone)
        for key, spec in zip(("performance_cron", "insights_cron"), specs, strict=True)
    }
    try:
        heartbeats = flow_run_heartbeat_environment()
    except ValueError as exc:  # TRINITY_HEARTBEAT_SECONDS is not usable
        raise DeploymentError(str(exc)) from exc
    await ensure_work_pool(name=work_pool)
    refs: list[DeploymentRef] = []
    async with get_client() as client:
        for spec in specs:
            flow_id = await client.create_flow_from_name(spec.flow_name)
            deployment_id = await client.create_deployment(
                flow_id=flow_id,
                name=DEPLOYMENT_NAME,
                description=spec.description,
                tags=TAGS,
                entrypoint=spec.entrypoint,
                work_pool_name=work_pool,
                job_variables={"env": heartbeats},
                schedules=[DeploymentScheduleCreate(schedule=schedules[spec.flow_name], active=True)],
                parameters=spec.parameters,
                pull_steps=PULL_STEPS,
                parameter_openapi_schema=parameter_schema(spec.flow.fn).model_dump(exclude_unset=True),
                enforce_parameter_schema=True,
            )
            refs.append(DeploymentRef(id=deployment_id, full_name=spec.full_name))
    return refs
