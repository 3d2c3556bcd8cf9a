"""Executing workflows and reading their runs.

``execute`` validates the parameters against the specification's JSON Schema, then makes one call
to Prefect (create the flow run) and records the run. An ``Idempotency-Key`` is stored (committed)
with a hash of the body before Prefect is called, and Prefect gets a key derived from that row, so
a retried request -- even one whose first attempt died at any step: before the Prefect call, after
it, before the run was recorded -- gets the same flow run, never a second one: Prefect itself
answers a repeated key with the run it already made.

Keys are remembered for ``server.idempotency_ttl_seconds`` (default a day). An expired key is
purged, by :func:`purge_idempotency_keys` (run periodically by the app) or when it is used again;
used again, it starts a new run, since its new row gives Prefect a new key.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
import anyio.to_thread
import httpx
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select, update
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
from api.services.audit import AuditTrail
from api.services.paging import fetch_page
from deployments import runs as prefect_runs
from specs.errors import SpecError
from specs.parameters import checked_run_parameters
from specs.schema_limits import (
    PARAMETER_TIME_LIMIT_SECONDS,
    TIMEOUT_MESSAGE,
    WAIT_LIMIT_SECONDS,
    ParameterTimeoutError,
)
from specs.secrets import mask_secret_parameters, secret_parameters
from trinity.core.types import utcnow

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# Reruns are followed back at most this far to the run the API recorded (on_crash allows 100).
MAX_RERUN_CHAIN = 100


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


async def _checked_off_the_loop(schema: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters checked in a worker thread, so a schema pattern that backtracks for
    seconds never holds the event loop (health checks included); 422 past the time limit."""
    check = functools.partial(checked_run_parameters, schema, parameters, source="request body")
    try:
        with anyio.fail_after(WAIT_LIMIT_SECONDS):
            return await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
    except (TimeoutError, ParameterTimeoutError) as exc:
        raise UnprocessableError(
            TIMEOUT_MESSAGE,
            details=[
                Detail(
                    loc="$.parameters",
                    msg=f"checking them against the specification's schema took over "
                    f"{PARAMETER_TIME_LIMIT_SECONDS:g} s (a pattern that backtracks?)",
                )
            ],
        ) from exc


@dataclass(frozen=True)
class _Target:
    """What execute needs of the workflow, read once: a rollback expires ORM objects."""

    id: uuid.UUID
    name: str
    version: str
    deployment_id: uuid.UUID


async def _claim_key(
    session: AsyncSession, target: _Target, key: str, body_hash: str, ttl_seconds: int
) -> tuple[uuid.UUID, Run | None]:
    """Record the key (or find it); returns its id and the run it already produced, if any."""
    statement = select(IdempotencyKey).where(
        IdempotencyKey.workflow_id == target.id, IdempotencyKey.key == key
    )
    existing = (await session.exec(statement)).first()
    if existing is not None and existing.created_at < utcnow() - timedelta(seconds=ttl_seconds):
        # Expired: forget it; this request is a new one.
        await session.exec(delete(IdempotencyKey).where(col(IdempotencyKey.id) == existing.id))
        await session.commit()
        existing = None
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
    idempotency_ttl_seconds: int,
    audit: AuditTrail | None = None,
) -> tuple[Run, str | None, bool]:
    """Start a run of an active workflow; returns (run, Prefect UI link, replayed).

    The audit event (the workflow, the run; never the parameters) is committed with the run.
    """
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
        run_parameters = await _checked_off_the_loop(schema, parameters)
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
        claimed, earlier = await _claim_key(
            session, target, idempotency_key, body_hash, idempotency_ttl_seconds
        )
        if earlier is not None:
            await _audit_run(session, audit, target, earlier, replayed=True)
            return earlier, prefect.flow_run_url(earlier.flow_run_id), True
        # The key's row outlives any attempt that dies after committing it, and a key used again
        # after it expired gets a new row: the same run for retries, a new one after expiry.
        prefect_key = f"trinity-api:{target.id}:{claimed}"
    else:
        prefect_key = f"trinity-api:{uuid.uuid4()}"

    async with prefect.scope():
        try:
            ref = await prefect_runs.start_run(
                deployment_id=target.deployment_id,
                parameters=run_parameters,
                idempotency_key=prefect_key,
                secrets=secret_parameters(schema),
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
    # What the API keeps and shows of the run: secret parameters masked.
    run = await _record_run(session, target, ref, mask_secret_parameters(schema, parameters), audit)
    if claimed is not None:
        link = update(IdempotencyKey).where(col(IdempotencyKey.id) == claimed).values(run_id=run.id)
        await session.exec(link)
        await session.commit()
    return run, ref.ui_url, False


async def purge_idempotency_keys(*, session: AsyncSession, ttl_seconds: int) -> int:
    """Delete the keys older than ``ttl_seconds``; returns how many went."""
    cutoff = utcnow() - timedelta(seconds=ttl_seconds)
    result = await session.exec(delete(IdempotencyKey).where(col(IdempotencyKey.created_at) < cutoff))
    await session.commit()
    return int(result.rowcount or 0)


def _stage_run(
    session: AsyncSession, audit: AuditTrail | None, target: _Target, run: Run, *, replayed: bool
) -> None:
    if audit is None:
        return
    details = {"run_id": str(run.id), "flow_run_id": str(run.flow_run_id), "replayed": replayed}
    audit.stage(
        session, resource_type="workflow", resource_id=target.id, version=target.version, details=details
    )


async def _audit_run(
    session: AsyncSession, audit: AuditTrail | None, target: _Target, run: Run, *, replayed: bool
) -> None:
    """Record an execute that made no new run (a replay) in a transaction of its own."""
    if audit is not None:
        _stage_run(session, audit, target, run, replayed=replayed)
        await session.commit()


async def _record_run(
    session: AsyncSession,
    target: _Target,
    ref: prefect_runs.RunRef,
    parameters: dict[str, Any],
    audit: AuditTrail | None,
) -> Run:
    existing = (await session.exec(select(Run).where(Run.flow_run_id == ref.flow_run_id))).first()
    if existing is not None:
        # Prefect replayed a run we recorded before (same idempotency key).
        await _audit_run(session, audit, target, existing, replayed=True)
        return existing
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
    _stage_run(session, audit, target, run, replayed=False)
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent retry recorded this flow run first: record this request as its replay.
        await session.rollback()
        existing = (await session.exec(select(Run).where(Run.flow_run_id == ref.flow_run_id))).one()
        await _audit_run(session, audit, target, existing, replayed=True)
        return existing
    return run


async def _run_by_flow_run(session: AsyncSession, flow_run_id: uuid.UUID) -> Run | None:
    return (await session.exec(select(Run).where(Run.flow_run_id == flow_run_id))).first()


async def get_run(*, session: AsyncSession, run_id: uuid.UUID, prefect: PrefectGateway | None = None) -> Run:
    """A run by its id or its Prefect flow-run id (404 otherwise).

    A rerun Trinity started on its own after a crash is found by its flow-run id too (given
    ``prefect``): it is recorded then, as a run of the crashed run's workflow.
    """
    run = await session.get(Run, run_id) or await _run_by_flow_run(session, run_id)
    if run is None and prefect is not None and prefect.api_url:
        run = await _record_rerun(session, prefect, run_id)
    if run is None:
        raise NotFoundError(f"no run with id {run_id}")
    return run


async def _record_rerun(
    session: AsyncSession, prefect: PrefectGateway, flow_run_id: uuid.UUID, depth: int = 0
) -> Run | None:
    """Record a rerun whose chain leads back to a recorded run (None for any other flow run)."""
    async with prefect.scope():
        origin, _ = await prefect_runs.read_flow_run_origin(flow_run_id=flow_run_id)
    if origin is None or depth > MAX_RERUN_CHAIN:
        return None
    parent = await _run_by_flow_run(session, origin) or await _record_rerun(
        session, prefect, origin, depth + 1
    )
    if parent is None:
        return None
    return await _record_rerun_of(session, parent, flow_run_id)


async def _record_rerun_of(session: AsyncSession, parent: Run, flow_run_id: uuid.UUID) -> Run:
    existing = await _run_by_flow_run(session, flow_run_id)
    if existing is not None:
        return existing
    run = Run(
        workflow_id=parent.workflow_id,
        workflow_name=parent.workflow_name,
        workflow_version=parent.workflow_version,
        flow_run_id=flow_run_id,
        parameters=parent.parameters,  # a rerun has its crashed run's parameters
        state_type="SCHEDULED",
        state_name="Scheduled",
    )
    session.add(run)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return (await session.exec(select(Run).where(Run.flow_run_id == flow_run_id))).one()
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


async def read_run_detail(*, session: AsyncSession, prefect: PrefectGateway, run: Run) -> RunDetail:
    """The run with its current state, per-task states and rerun links, from Prefect.

    Reruns started since the run crashed are recorded as runs of its workflow on the way.
    """
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
    for rerun in status.reruns:
        await _record_rerun_of(session, run, rerun)
    return RunDetail(
        **base.model_dump(),
        start_time=status.start_time,
        end_time=status.end_time,
        tasks=tasks,
        rerun_of=status.rerun_of,
        reruns=status.reruns,
    )


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
