"""/runs and /workflows/{id}/runs: run status with per-task states, from Prefect."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.deps import PrefectDep, SessionDep, Viewer
from api.models.run import RunDetail, RunsPublic
from api.routes.common import PROTECTED, Limit, Offset, errors
from api.services import runs as service
from api.services import workflows as workflow_service

router = APIRouter(tags=["runs"], responses=PROTECTED)


@router.get(
    "/workflows/{workflow_id}/runs",
    response_model=RunsPublic,
    summary="List a workflow's runs, newest first",
    responses=errors(404),
)
async def list_runs(
    workflow_id: uuid.UUID,
    session: SessionDep,
    prefect: PrefectDep,
    _: Viewer,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RunsPublic:
    await workflow_service.get_workflow(session=session, workflow_id=workflow_id)
    items, total = await service.list_runs(
        session=session, prefect=prefect, workflow_id=workflow_id, limit=limit, offset=offset
    )
    return RunsPublic(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/runs/{run_id}",
    response_model=RunDetail,
    summary="Get a run's state and its tasks' states (by run id or Prefect flow-run id)",
    description=(
        "`rerun_of` and `reruns` link a crashed run and the reruns Trinity started after it "
        "(the workflow's `on_crash: {rerun: N}`), by Prefect flow-run id."
    ),
    responses=errors(404),
)
async def get_run(run_id: uuid.UUID, session: SessionDep, prefect: PrefectDep, _: Viewer) -> RunDetail:
    run = await service.get_run(session=session, run_id=run_id, prefect=prefect)
    return await service.read_run_detail(session=session, prefect=prefect, run=run)
