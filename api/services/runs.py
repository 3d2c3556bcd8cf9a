"""Executing workflows and reading their runs.

``execute`` validates the parameters against the specification's JSON Schema, then makes one call
to Prefect (create the flow run) and records the run. An ``Idempotency-Key`` is stored with a
hash of the body before Prefect is called and is also handed to Prefect, so a retried request --
even one whose first attempt died half-way -- gets the same flow run, never a second one.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from api.documents import check_storable, content_hash, problems_to_details
from api.errors import (
    ConflictError,
    Detail,
    IdempotencyKeyReusedError,
    NotFoundError,
    ServiceUnavailableError,
    UnprocessableError,
)
from api.models.run import IdempotencyKey, Run, RunDetail, RunPublic, RunState, TaskRunPublic
from api.models.specification import Specification
from api.models.workflow import Workflow, WorkflowStatus
from api.prefect import PrefectGateway
from api.services.paging import fetch_page
from deployments import runs as prefect_runs
from specs.errors import SpecError
from specs.parameters import checked_run_parameters

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def check_idempotency_key(key: str | None) -> str | None:
    """Printable ASCII without blanks, 1 to 255 characters (422 otherwise)."""
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise UnprocessableError(
            "invalid Idempotency-Key",
            details=[Detail(loc="header.Idempotency-Key", msg="1-255 printable ASCII characters, no blanks")],
        )
    return key


async def _parameters_schema(session: AsyncSession, workflow: Workflow) -> dict[str, Any]:
    spec = await session.get(Specification, workflow.spec_id) if workflow.spec_id else None
    if spec is None:
        raise ConflictError(f"workflow {workflow.name} has no stored specification; update it first")
    schema = spec.document.get("parameters") or {"type": "object"}
    return dict(schema)


@dataclass(frozen=True)
class _Target:
    """What execute needs of the workflow, read once: a rollback expires ORM objects."""

    id: uuid.UUID
    name: str
    version: str
    deployment_id: uuid.UUID


async def _claim_key(
    session: AsyncSession, target: _Target, key: str, body_hash: str
) -> tuple[uuid.UUID, Run | None]:
    """Record the key (or find it); returns its id and the run it already produced, if any."""
    statement = select(IdempotencyKey).where(
        IdempotencyKey.workflow_id == target.id, IdempotencyKey.key == key
    )
    existing = (await session.exec(statement)).first()
    if existing is None:
        existing = IdempotencyKey(workflow_id=target.id, key=key, body_hash=body_hash)
        session.add(existing)
        try:
            await session.commit()
        except IntegrityError:
            # Another request with this key won the race: use its row.
            await session.rollback()
            existing = (await session.exec(statement)).one()
    if existing.body_hash != body_hash:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used with a different request body",
            details=[Detail(loc="header.Idempotency-Key", msg="reuse a key only to retry the same request")],
        )
    run = await session.get(Run, existing.run_id) if existing.run_id else None
    return existing.id, run


async def execute_workflow(
    *,
    session: AsyncSession,
    prefect: PrefectGateway,
    workflow: Workflow,
    parameters: dict[str, Any],
    idempotency_key: str | None,
) -> tuple[Run, str | None, bool]:
    """Start a run of an active workflow; returns (run, Prefect UI link, replayed)."""
    if workflow.status != WorkflowStatus.ACTIVE or workflow.deployment_id is None:
        raise ConflictError(
            f"workflow {workflow.name} {workflow.version} is {workflow.status}; only active workflows run",
            code="workflow_not_active",
        )
    target = _Target(
        id=workflow.id, name=workflow.name, version=workflow.version, deployment_id=workflow.deployment_id
    )
    check_storable(parameters, prefix=("parameters",), what="the parameters")
    schema = await _parameters_schema(session, workflow)
    try:
        run_parameters = checked_run_parameters(schema, parameters, source="request body")
    except SpecError as exc:
        # Problems are located inside the parameters object; the body nests it under "parameters".
        details = [
            Detail(loc="$.parameters" + d.loc.removeprefix("$"), msg=d.msg)
            for d in problems_to_details(exc.problems)
        ]
        raise UnprocessableError("the parameters do not match the specification", details=details) from exc

    body_hash = content_hash({"parameters": parameters})
    claimed: uuid.UUID | None = None
    if idempotency_key is not None:
        claimed, earlier = await _claim_key(session, target, idempotency_key, body_hash)
        if earlier is not None:
            return earlier, prefect.flow_run_url(earlier.flow_run_id), True
        prefect_key = f"trinity-api:{target.id}:{idempotency_key}"
    else:
        prefect_key = f"trinity-api:{uuid.uuid4()}"

    async with prefect.scope():
        try:
            ref = await prefect_runs.start_run(
                deployment_id=target.deployment_id,
                parameters=run_parameters,
                idempotency_key=prefect_key,
            )
        except prefect_runs.DeploymentNotFoundError as exc:
            raise ConflictError(
                f"Prefect no longer has the deployment of {target.name}; pause and re-activate it",
                code="deployment_missing",
            ) from exc
        except prefect_runs.RunRejectedError as exc:
            raise UnprocessableError(
                "Prefect refused the run", details=[Detail(loc="$.parameters", msg=str(exc))]
            ) from exc
    run = await _record_run(session, target, ref, parameters)
    if claimed is not None:
        link = update(IdempotencyKey).where(col(IdempotencyKey.id) == claimed).values(run_id=run.id)
        await session.exec(link)
        await session.commit()
    return run, ref.ui_url, False


async def _record_run(
    session: AsyncSession, target: _Target, ref: prefect_runs.RunRef, parameters: dict[str, Any]
) -> Run:
    existing = (await session.exec(select(Run).where(Run.flow_run_id == ref.flow_run_id))).first()
    if existing is not None:
        return existing  # Prefect replayed a run we recorded before (same idempotency key)
    run = Run(
        workflow_id=target.id,
        workflow_name=target.name,
        workflow_version=target.version,
        flow_run_id=ref.flow_run_id,
        parameters=parameters,
        state_type=ref.state_type,
        state_name=ref.state_name,
    )
    session.add(run)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return (await session.exec(select(Run).where(Run.flow_run_id == ref.flow_run_id))).one()
    return run


async def get_run(*, session: AsyncSession, run_id: uuid.UUID) -> Run:
    """A run by its id or its Prefect flow-run id (404 otherwise)."""
    run = await session.get(Run, run_id)
    if run is None:
        run = (await session.exec(select(Run).where(Run.flow_run_id == run_id))).first()
    if run is None:
        raise NotFoundError(f"no run with id {run_id}")
    return run


def public_run(run: Run, *, state: tuple[str, str] | None = None, ui_url: str | None = None) -> RunPublic:
    """The list view of a run; ``state`` overrides the stored one with Prefect's current state."""
    state_type, state_name = state or (run.state_type, run.state_name)
    return RunPublic(
        id=run.id,
        workflow_id=run.workflow_id,
        workflow_name=run.workflow_name,
        workflow_version=run.workflow_version,
        flow_run_id=run.flow_run_id,
        state=RunState(type=state_type, name=state_name),
        ui_url=ui_url,
        parameters=run.parameters,
        created_at=run.created_at,
    )


async def read_run_detail(*, prefect: PrefectGateway, run: Run) -> RunDetail:
    """The run with its current state and per-task states, from Prefect."""
    async with prefect.scope():
        try:
            status = await prefect_runs.read_run(flow_run_id=run.flow_run_id)
        except prefect_runs.FlowRunNotFoundError as exc:
            raise NotFoundError(
                f"Prefect no longer has flow run {run.flow_run_id}", code="flow_run_not_found"
            ) from exc
    base = public_run(run, state=(status.state_type, status.state_name), ui_url=status.ui_url)
    tasks = [
        TaskRunPublic(
            id=task.task_run_id,
            task_id=task.name.split("[", 1)[0],
            name=task.name,
            state=RunState(type=task.state_type, name=task.state_name),
            start_time=task.start_time,
            end_time=task.end_time,
        )
        for task in status.tasks
    ]
    return RunDetail(**base.model_dump(), start_time=status.start_time, end_time=status.end_time, tasks=tasks)


async def list_runs(
    *, session: AsyncSession, prefect: PrefectGateway, workflow_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[RunPublic], int]:
    """A workflow's runs, newest first, with current states from Prefect (stored ones if it is down)."""
    newest_first = (col(Run.created_at).desc(), col(Run.id))
    statement = sa.select(Run).where(col(Run.workflow_id) == workflow_id).order_by(*newest_first)
    page, total = await fetch_page(session, statement, limit=limit, offset=offset)
    rows = [row[0] for row in page]
    states: dict[uuid.UUID, tuple[str, str]] = {}
    if rows:
        try:
            async with prefect.scope():
                states = await prefect_runs.read_run_states(flow_run_ids=[r.flow_run_id for r in rows])
        except (ServiceUnavailableError, httpx.HTTPError):
            states = {}  # a list degrades to the stored states rather than failing
    items = [
        public_run(row, state=states.get(row.flow_run_id), ui_url=prefect.flow_run_url(row.flow_run_id))
        for row in rows
    ]
    return items, total
