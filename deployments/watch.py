"""Running a workflow and following it to its end: in this process, or through its deployment.

:func:`run_here` runs a workflow document in the calling process (a flow run recorded by the
configured Prefect API, executed right here); :func:`find_workflow_deployment`, then
:func:`~deployments.runs.start_run` and :func:`wait_for_run`, run it through its deployment, where
a worker picks it up. Both can report the run's status (its task runs included) as it goes, for a
live view. Nothing here prints: callers are told through callbacks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from prefect.exceptions import ObjectNotFound
from prefect.flow_engine import run_flow_async

from blocks.workflow_definition import DefinitionNotFoundError, load_definition
from deployments.live_watch import LiveChanges
from deployments.runs import DeploymentNotFoundError, RunStatus, flow_run_ui_url, read_run
from flows.entry import block_name_from_entrypoint
from flows.local_run import start_local_run
from flows.worker.heartbeat import sending_heartbeats
from specs.models import Specification, Workflow
from specs.naming import deployment_full_name

FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
WAITING_STATES = frozenset({"SCHEDULED", "PENDING"})
POLL_SECONDS = 0.5
# Task-run states reach the server as events, a moment after the flow run ends.
SETTLE_SECONDS = POLL_SECONDS * 2
NO_WORKER_AFTER_SECONDS = 10.0

StatusCallback = Callable[[RunStatus], None]


@dataclass(frozen=True)
class RunOutcome:
    """Where a run stands when the caller stops following it."""

    flow_run_id: UUID
    state_type: str
    state_name: str
    message: str
    ui_url: str | None

    @property
    def final(self) -> bool:
        """True when the run has ended (completed or not); False when the wait was given up."""
        return self.state_type in FINAL_STATES


@dataclass(frozen=True)
class WorkflowDeployment:
    """A deployed workflow, as ``trinity run NAME`` needs it."""

    deployment_id: UUID
    full_name: str
    work_pool_name: str | None
    parameters_schema: dict[str, Any]
    entrypoint: str | None


async def run_here(
    workflow: Workflow,
    specification: Specification,
    params: dict[str, Any],
    *,
    on_created: Callable[[str], None],
    on_status: StatusCallback | None = None,
    on_note: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run ``workflow`` in this process as a flow run of the configured Prefect API; wait for it.

    ``on_created`` is given the flow run's name once Prefect has recorded it; ``on_status``, when
    given, the run's status every :data:`POLL_SECONDS` while it runs and once more after it ends.
    """
    flow, flow_run = await start_local_run(workflow, specification, params)
    on_created(flow_run.name)
    # Heartbeats: if this process dies, Trinity's automation marks the run Crashed.
    with sending_heartbeats(flow_run):
        runner = asyncio.ensure_future(
            # As Prefect holds them: secret parameters are references (flows.local_run).
            run_flow_async(flow, flow_run=flow_run, parameters=dict(flow_run.parameters), return_type="state")
        )
        if on_status is not None:

            async def flow_done() -> bool:
                return runner.done()

            await _follow(flow_run.id, finished=flow_done, on_status=on_status, on_note=on_note)
        state = await runner
    return _outcome(flow_run.id, state)


async def find_workflow_deployment(workflow_name: str) -> WorkflowDeployment:
    """The deployment of a workflow by its name (:class:`DeploymentNotFoundError` when none)."""
    full_name = deployment_full_name(workflow_name)
    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(full_name)
        except ObjectNotFound as exc:
            raise DeploymentNotFoundError(f"no deployment '{full_name}'") from exc
    return WorkflowDeployment(
        deployment_id=deployment.id,
        full_name=full_name,
        work_pool_name=deployment.work_pool_name,
        parameters_schema=dict(deployment.parameter_openapi_schema or {}),
        entrypoint=deployment.entrypoint,
    )


async def deployed_task_ids(deployment: WorkflowDeployment) -> list[str]:
    """The spec task ids of the definition a deployment runs (empty when it is not one of ours)."""
    block_name = block_name_from_entrypoint(deployment.entrypoint)
    if block_name is None:
        return []
    try:
        definition = await load_definition(block_name)
    except DefinitionNotFoundError:
        return []
    return [task["id"] for task in definition.workflow.get("tasks", [])]


async def wait_for_run(
    flow_run_id: UUID,
    *,
    timeout: float | None = None,
    on_status: StatusCallback | None = None,
    on_no_worker: Callable[[], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Poll a flow run until it ends or ``timeout`` seconds pass (the run itself goes on).

    ``on_status``, when given, gets the run's status at every poll and once more after it ends;
    ``on_no_worker`` is called once when the run is still waiting for a worker after
    :data:`NO_WORKER_AFTER_SECONDS`.
    """
    started = time.monotonic()
    deadline = started + timeout if timeout else None
    warned = False

    async def finished() -> bool:
        nonlocal warned
        state_type = _state_type(await _read_state(flow_run_id))
        waited = time.monotonic() - started
        if state_type in WAITING_STATES and not warned and waited > NO_WORKER_AFTER_SECONDS:
            warned = True
            if on_no_worker is not None:
                on_no_worker()
        return state_type in FINAL_STATES or (deadline is not None and time.monotonic() > deadline)

    if on_status is not None:
        await _follow(flow_run_id, finished=finished, on_status=on_status, on_note=on_note)
    else:
        while not await finished():
            await asyncio.sleep(POLL_SECONDS)
    return _outcome(flow_run_id, await _read_state(flow_run_id))


async def _follow(
    flow_run_id: UUID,
    *,
    finished: Callable[[], Awaitable[bool]],
    on_status: StatusCallback,
    on_note: Callable[[str], None] | None = None,
) -> None:
    """Report the run's status until ``finished()``, then once more when its task runs settled.

    The status is read again at each change the live event stream announces (polling every
    :data:`POLL_SECONDS` only when the stream cannot be had; ``on_note`` is told why, once).
    """
    changes = await LiveChanges(flow_run_id, on_note or (lambda _note: None)).start()
    try:
        while True:
            done = await finished()
            on_status(await read_run(flow_run_id=flow_run_id))
            if done:
                break
            await changes.wait(POLL_SECONDS)
    finally:
        await changes.close()
    await asyncio.sleep(SETTLE_SECONDS)
    on_status(await read_run(flow_run_id=flow_run_id))


async def _read_state(flow_run_id: UUID) -> State | None:
    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
    return flow_run.state


def _state_type(state: State | None) -> str:
    return "PENDING" if state is None else state.type.value


def _outcome(flow_run_id: UUID, state: State | None) -> RunOutcome:
    return RunOutcome(
        flow_run_id=flow_run_id,
        state_type=_state_type(state),
        state_name="Pending" if state is None else str(state.name),
        message="" if state is None else state.message or "",
        ui_url=flow_run_ui_url(flow_run_id),
    )
