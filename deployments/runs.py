"""Starting and reading flow runs of Trinity deployments.

Every function talks to whatever Prefect API the current settings point at, through
``get_client()`` (so a caller can share one client across calls with Prefect's client context).
``start_run`` makes exactly one API call, so starting a run never waits for anything but Prefect
recording it; the run itself is picked up by a worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterTags
from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

from blocks.run_secrets import delete_secrets, stashed_for_run
from flows.worker.reruns import rerun_of, rerun_tag
from specs.secrets import secret_reference

TASK_RUN_PAGE = 200


class RunError(Exception):
    """Base of the errors raised here."""


class DeploymentNotFoundError(RunError):
    """Prefect has no such deployment (deleted outside Trinity, or never deployed)."""


class FlowRunNotFoundError(RunError):
    """Prefect has no flow run with this id."""


class RunRejectedError(RunError):
    """Prefect refused to create the run (e.g. parameters fail the deployment's schema)."""


@dataclass(frozen=True)
class RunRef:
    """A flow run just created."""

    flow_run_id: UUID
    state_type: str
    state_name: str
    ui_url: str | None


@dataclass(frozen=True)
class TaskRunStatus:
    """One task run of a flow run; ``name`` is the spec task id the executor named it after."""

    task_run_id: UUID
    name: str
    task_key: str
    state_type: str
    state_name: str
    start_time: datetime | None
    end_time: datetime | None


@dataclass(frozen=True)
class RunStatus:
    """A flow run's state and its task runs' states."""

    flow_run_id: UUID
    name: str
    deployment_id: UUID | None
    state_type: str
    state_name: str
    expected_start_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    parameters: dict[str, Any]
    ui_url: str | None
    tasks: list[TaskRunStatus] = field(default_factory=list)
    # The crashed flow run this one reruns (its ``rerun-of:`` tag), and the reruns of this one.
    rerun_of: UUID | None = None
    reruns: list[UUID] = field(default_factory=list)


def _state(obj: Any) -> tuple[str, str]:
    state = getattr(obj, "state", None)
    if state is None:
        return "PENDING", "Pending"
    return str(state.type.value), str(state.name)


def _observed(run: Any) -> dict[str, Any]:
    """What Prefect reports alike of a flow run and a task run: its name, state and times."""
    state_type, state_name = _state(run)
    return {
        "name": run.name,
        "state_type": state_type,
        "state_name": state_name,
        "start_time": run.start_time,
        "end_time": run.end_time,
    }


def flow_run_ui_url(flow_run_id: UUID) -> str | None:
    """The run's page in the Prefect UI (from PREFECT_UI_URL, or derived from PREFECT_API_URL)."""
    base = PREFECT_UI_URL.value()
    if not base:
        api = PREFECT_API_URL.value()
        base = api.removesuffix("/").removesuffix("/api") if api else None
    return f"{str(base).rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None


async def start_run(
    *,
    deployment_id: UUID,
    parameters: dict[str, Any],
    idempotency_key: str | None = None,
    secrets: Collection[str] = (),
) -> RunRef:
    """Create a flow run of a deployment (one call to Prefect); the same key returns the same run.

    The values of the parameters named in ``secrets`` go to ``Secret`` blocks made for the run
    first; the flow run carries references to them (:mod:`blocks.run_secrets`).
    """
    async with stashed_for_run(parameters, secrets) as (carried, made):
        flow_run = await _create_run(deployment_id, carried, idempotency_key)
    # A repeated idempotency key returns the run made before, which refers to its own blocks.
    kept = list((flow_run.parameters or {}).values()) if made else []
    await delete_secrets(block for block in made if secret_reference(block) not in kept)
    state_type, state_name = _state(flow_run)
    return RunRef(
        flow_run_id=flow_run.id,
        state_type=state_type,
        state_name=state_name,
        ui_url=flow_run_ui_url(flow_run.id),
    )


async def _create_run(deployment_id: UUID, parameters: dict[str, Any], idempotency_key: str | None) -> Any:
    async with get_client() as client:
        try:
            return await client.create_flow_run_from_deployment(
                deployment_id, parameters=parameters, idempotency_key=idempotency_key
            )
        except ObjectNotFound as exc:
            raise DeploymentNotFoundError(f"Prefect has no deployment {deployment_id}") from exc
        except PrefectHTTPStatusError as exc:
            status = exc.response.status_code
            if status == 404:
                raise DeploymentNotFoundError(f"Prefect has no deployment {deployment_id}") from exc
            if status in (400, 409, 422):
                raise RunRejectedError(_detail(exc.response)) from exc
            raise


def _detail(response: Any) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail or response.text or f"HTTP {response.status_code}")


async def _task_runs(client: Any, flow_run_id: UUID) -> list[TaskRunStatus]:
    flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    found: list[TaskRunStatus] = []
    offset = 0
    while True:
        page = await client.read_task_runs(
            flow_run_filter=flow_filter,
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            limit=TASK_RUN_PAGE,
            offset=offset,
        )
        for task_run in page:
            if "__parents__" in task_run.task_inputs:
                # Prefect's tracking task run for a child workflow (a subflow called from a spec
                # task): it names that task as its parent and is not one of the spec's tasks.
                continue
            found.append(
                TaskRunStatus(task_run_id=task_run.id, task_key=task_run.task_key, **_observed(task_run))
            )
        if len(page) < TASK_RUN_PAGE:
            return found
        offset += TASK_RUN_PAGE


async def _reruns(client: Any, flow_run_id: UUID) -> list[UUID]:
    reruns = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[rerun_tag(flow_run_id)])),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
    )
    return [run.id for run in reruns]


async def read_run(*, flow_run_id: UUID) -> RunStatus:
    """A flow run's state, the states of all its task runs and its reruns (concurrent calls)."""
    async with get_client() as client:
        try:
            flow_run, tasks, reruns = await asyncio.gather(
                client.read_flow_run(flow_run_id),
                _task_runs(client, flow_run_id),
                _reruns(client, flow_run_id),
            )
        except ObjectNotFound as exc:
            raise FlowRunNotFoundError(f"Prefect has no flow run {flow_run_id}") from exc
    return RunStatus(
        flow_run_id=flow_run.id,
        deployment_id=flow_run.deployment_id,
        expected_start_time=flow_run.expected_start_time,
        **_observed(flow_run),
        parameters=dict(flow_run.parameters or {}),
        ui_url=flow_run_ui_url(flow_run.id),
        tasks=tasks,
        rerun_of=rerun_of(flow_run.tags),
        reruns=reruns,
    )


async def read_flow_run_origin(*, flow_run_id: UUID) -> tuple[UUID | None, dict[str, Any]]:
    """For a flow run Trinity started on its own (a rerun): the crashed run it reruns, and its
    parameters; ``(None, {})`` for any other run."""
    async with get_client() as client:
        try:
            flow_run = await client.read_flow_run(flow_run_id)
        except ObjectNotFound:
            return None, {}
    return rerun_of(flow_run.tags), dict(flow_run.parameters or {})


async def read_run_states(*, flow_run_ids: Sequence[UUID]) -> dict[UUID, tuple[str, str]]:
    """Current (state type, state name) of many flow runs in one call; missing runs are left out."""
    ids = list(dict.fromkeys(flow_run_ids))
    states: dict[UUID, tuple[str, str]] = {}
    async with get_client() as client:
        for start in range(0, len(ids), TASK_RUN_PAGE):
            chunk = ids[start : start + TASK_RUN_PAGE]
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=len(chunk)
            )
            states.update((run.id, _state(run)) for run in runs)
    return states
