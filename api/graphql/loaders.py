"""Batched reads for one GraphQL request, so a list of N workflows costs a few queries, not N.

Each loader collects the keys asked for in one resolver pass and answers them with one database
query (or one Prefect call): workflows' specifications, their versions, their latest runs and
findings, and the runs' current states.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
import sqlalchemy as sa
from sqlmodel import col, func, select
from strawberry.dataloader import DataLoader

from api.errors import ApiError, ServiceUnavailableError
from api.models.analytics import AnalyticsInsight
from api.models.run import Run, RunDetail
from api.models.specification import Specification
from api.models.workflow import Workflow
from api.services import runs as run_service
from deployments import runs as prefect_runs

if TYPE_CHECKING:
    from api.deps import AppState

RunsKey = tuple[uuid.UUID, int]
FindingsKey = tuple[str, int]
DETAIL_CONCURRENCY = 8
STATE_CHUNK = 100


class Loaders:
    """The DataLoaders of one request (created lazily; they cache for the request only)."""

    def __init__(self, state: AppState | None) -> None:
        self.state = state
        self.specification = DataLoader(self._specifications)
        self.versions = DataLoader(self._versions)
        self.latest_runs = DataLoader(self._latest_runs)
        self.findings = DataLoader(self._findings)
        self.run_state = DataLoader(self._run_states)
        self.run_detail = DataLoader(self._run_details, cache_key_fn=lambda run: run.id)

    def _app(self) -> AppState:
        assert self.state is not None
        return self.state

    async def _specifications(self, ids: list[uuid.UUID]) -> list[Specification | None]:
        async with self._app().db.session(read_only=True) as session:
            rows = (await session.exec(select(Specification).where(col(Specification.id).in_(ids)))).all()
        found = {row.id: row for row in rows}
        return [found.get(spec_id) for spec_id in ids]

    async def _versions(self, names: list[str]) -> list[list[Workflow]]:
        statement = (
            select(Workflow)
            .where(col(Workflow.name).in_(names))
            .order_by(col(Workflow.created_at).desc(), col(Workflow.id))
        )
        async with self._app().db.session(read_only=True) as session:
            rows = (await session.exec(statement)).all()
        by_name: dict[str, list[Workflow]] = defaultdict(list)
        for row in rows:
            by_name[row.name].append(row)
        return [by_name.get(name, []) for name in names]

    async def _latest_runs(self, keys: list[RunsKey]) -> list[tuple[list[Run], int]]:
        """The newest ``n`` runs of each workflow and its run count, in one query."""
        limit = max(n for _, n in keys)
        ids = list({workflow_id for workflow_id, _ in keys})
        newest_first = (col(Run.created_at).desc(), col(Run.id))
        ranked = (
            sa.select(
                col(Run.id).label("run_id"),
                func.row_number()
                .over(partition_by=col(Run.workflow_id), order_by=newest_first)
                .label("rank"),
                func.count().over(partition_by=col(Run.workflow_id)).label("total"),
            )
            .where(col(Run.workflow_id).in_(ids))
            .subquery()
        )
        statement: Any = (
            sa.select(Run, ranked.c.rank, ranked.c.total)
            .join(ranked, col(Run.id) == ranked.c.run_id)
            .where(ranked.c.rank <= limit)
            .order_by(ranked.c.rank)
        )
        async with self._app().db.session(read_only=True) as session:
            rows = (await session.exec(statement)).all()
        runs: dict[uuid.UUID | None, list[Run]] = defaultdict(list)
        totals: dict[uuid.UUID | None, int] = {}
        for run, _rank, total in rows:
            runs[run.workflow_id].append(run)
            totals[run.workflow_id] = int(total)
        return [(runs.get(workflow_id, [])[:n], totals.get(workflow_id, 0)) for workflow_id, n in keys]

    async def _findings(self, keys: list[FindingsKey]) -> list[list[AnalyticsInsight]]:
        """The newest ``n`` insights of each workflow (by name), in one query."""
        limit = max(n for _, n in keys)
        names = list({name for name, _ in keys})
        newest_first = (
            col(AnalyticsInsight.window_start).desc(),
            col(AnalyticsInsight.created_at).desc(),
            col(AnalyticsInsight.id),
        )
        ranked = (
            sa.select(
                col(AnalyticsInsight.id).label("insight_id"),
                func.row_number()
                .over(partition_by=col(AnalyticsInsight.workflow), order_by=newest_first)
                .label("rank"),
            )
            .where(col(AnalyticsInsight.workflow).in_(names))
            .subquery()
        )
        statement: Any = (
            sa.select(AnalyticsInsight)
            .join(ranked, col(AnalyticsInsight.id) == ranked.c.insight_id)
            .where(ranked.c.rank <= limit)
            .order_by(ranked.c.rank)
        )
        async with self._app().db.session(read_only=True) as session:
            rows = (await session.exec(statement)).all()
        by_name: dict[str, list[AnalyticsInsight]] = defaultdict(list)
        for (row,) in rows:
            by_name[row.workflow].append(row)
        return [by_name.get(name, [])[:n] for name, n in keys]

    async def _run_states(self, flow_run_ids: list[uuid.UUID]) -> list[tuple[str, str] | None]:
        """Current Prefect states in one call; None (the stored state) when Prefect is away."""
        prefect = self._app().prefect
        chunks = [flow_run_ids[i : i + STATE_CHUNK] for i in range(0, len(flow_run_ids), STATE_CHUNK)]
        states: dict[uuid.UUID, tuple[str, str]] = {}
        try:
            async with prefect.scope():
                # Prefect's filter is the slow part of a big page: its chunks are read side by side.
                for found in await asyncio.gather(
                    *(prefect_runs.read_run_states(flow_run_ids=chunk) for chunk in chunks)
                ):
                    states.update(found)
        except (ServiceUnavailableError, httpx.HTTPError):
            states = {}
        return [states.get(flow_run_id) for flow_run_id in flow_run_ids]

    async def _run_details(self, runs: Sequence[Run]) -> list[RunDetail | ApiError]:
        """Task states of each run from Prefect, a few runs at a time."""
        app = self._app()
        gate = asyncio.Semaphore(DETAIL_CONCURRENCY)

        async def one(run: Run) -> RunDetail | ApiError:
            # A session each: reading a run records the reruns started since it crashed.
            async with gate, app.db.session() as session:
                try:
                    return await run_service.read_run_detail(session=session, prefect=app.prefect, run=run)
                except ApiError as exc:
                    return exc

        return list(await asyncio.gather(*(one(run) for run in runs)))
