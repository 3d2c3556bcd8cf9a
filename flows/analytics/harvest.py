"""Harvest: copy Trinity workflow runs from Prefect into Trinity's tables, incrementally.

Only workflow runs are read: every one carries the ``trinity`` tag (deployed runs, runs from a file
and child runs of ``workflow`` tasks alike, see :mod:`specs.naming`), and the analytics flows' own
runs, tagged ``trinity-analytics`` too, are left out. A pass reads the flow runs that *ended* since
the watermark minus a re-read window, page by page, with their task runs, and writes them with
upserts:

* ``execution_logs`` keyed by flow run id: state and times from Prefect. The row the executor wrote
  keeps its workflow name, version and ``metrics``; a run the executor never recorded (it crashed
  before its final hook) gets a row from Prefect alone.
* ``task_runs`` keyed by Prefect's task run id, with the executor's per-task figures merged in. A
  task the executor recorded that Prefect has not received yet is stored under a stand-in id and
  replaced once Prefect has it (task runs reach Prefect's database as events, after the flow run's
  final state).
* ``harvested_runs``: trigger, deployment, parent, and when the run was harvested.

The re-read window (15 minutes by default) is what picks up those late task runs: every pass reads
again the runs that ended shortly before the previous pass. The workflow name comes from the
executor's row, else the run's ``workflow:<name>`` tag, else its flow (named after the workflow);
runs with none of these are counted as unresolved and left for a later pass.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import sqlalchemy as sa
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterId,
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterId,
    FlowRunFilterTags,
    TaskRunFilter,
    TaskRunFilterSubFlowRuns,
)
from prefect.client.schemas.objects import FlowRun, TaskRun
from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort
from prefect.exceptions import ObjectNotFound

from flows.analytics.database import (
    Tables,
    database_now,
    migrated_tables,
    read_watermark,
    upsert,
    write_watermark,
)
from flows.analytics.records import (
    RunIdentity,
    execution_log_row,
    harvested_run_row,
    recorded_task_row,
    recorded_tasks,
    task_run_row,
)
from specs.naming import ANALYTICS_TAG, RESERVED_FLOW_NAMES, TRINITY_TAG, workflow_from_tags
from specs.secrets import mask_references
from trinity.core import tables as core_tables
from trinity.core.tables import non_key_columns

HARVEST_WATERMARK = "harvest"
DEFAULT_REREAD_WINDOW = dt.timedelta(minutes=15)
PAGE_SIZE = 200  # Prefect's server refuses larger pages by default
_DELETE_BATCH = 500
_RUN_UPDATES = ("status", "execution_time", "expected_start_time", "started_at", "ended_at")
_TASK_UPDATES = non_key_columns(core_tables.task_runs)
_HARVEST_UPDATES = non_key_columns(core_tables.harvested_runs)


@dataclass
class HarvestResult:
    """What one pass read and wrote."""

    ended_after: dt.datetime | None
    ended_before: dt.datetime
    flow_runs: list[uuid.UUID] = field(default_factory=list)
    runs_new: int = 0
    runs_updated: int = 0
    runs_changed: int = 0
    task_runs_new: int = 0
    task_runs_updated: int = 0
    task_runs_removed: int = 0
    unresolved: list[uuid.UUID] = field(default_factory=list)

    def summary(self) -> str:
        """One line in plain words, for logs, artifacts and the CLI."""
        read = len(self.flow_runs)
        scope = f"that ended since {self.ended_after.isoformat()}" if self.ended_after else "(all so far)"
        text = (
            f"Read {read} run{'' if read == 1 else 's'} from Prefect {scope}: {self.runs_new} new, "
            f"{self.runs_updated} already known ({self.runs_changed} of them changed since last read); "
            f"their task runs: {self.task_runs_new} new, {self.task_runs_updated} updated, "
            f"{self.task_runs_removed} replaced"
        )
        if self.unresolved:
            text += f"; skipped {len(self.unresolved)} run(s) of workflows Trinity does not know"
        return text


@dataclass
class _Page:
    """One page of flow runs with everything read from Prefect about them."""

    flow_runs: list[FlowRun]
    task_runs: dict[uuid.UUID, list[TaskRun]]
    flow_names: dict[uuid.UUID, str]
    parents: dict[uuid.UUID, uuid.UUID]
    schemas: dict[uuid.UUID, dict[str, Any]]


async def harvest_history(
    *,
    engine: sa.Engine,
    tables: Tables | None = None,
    reread_window: dt.timedelta = DEFAULT_REREAD_WINDOW,
    since: dt.datetime | None = None,
    now: dt.datetime | None = None,
    page_size: int = PAGE_SIZE,
) -> HarvestResult:
    """Read the Trinity runs that ended since the last pass (minus ``reread_window``) into the tables.

    ``since`` overrides the watermark (e.g. a first harvest of only recent history); ``now`` is the
    upper bound of end times read (default: the current time), which becomes the new watermark.
    """
    return await _harvest_into(
        engine=engine,
        tables=tables if tables is not None else await anyio.to_thread.run_sync(migrated_tables, engine),
        reread_window=reread_window,
        since=since,
        now=now,
        page_size=page_size,
    )


async def _harvest_into(
    *,
    engine: sa.Engine,
    tables: Tables,
    reread_window: dt.timedelta,
    since: dt.datetime | None,
    now: dt.datetime | None,
    page_size: int,
) -> HarvestResult:
    watermark = await anyio.to_thread.run_sync(_read_harvest_watermark, engine, tables)
    upper = now or dt.datetime.now(dt.UTC)
    lower = since if since is not None else (watermark - reread_window if watermark else None)
    result = HarvestResult(ended_after=lower, ended_before=upper)
    flows: dict[uuid.UUID, str] = {}
    parents: dict[uuid.UUID, uuid.UUID | None] = {}
    schemas: dict[uuid.UUID, dict[str, Any]] = {}
    async with get_client() as client:
        offset = 0
        while True:
            tagged = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=[TRINITY_TAG]),
                    end_time=FlowRunFilterEndTime(after_=lower, before_=upper),
                ),
                sort=FlowRunSort.END_TIME_DESC,
                limit=page_size,
                offset=offset,
            )
            flow_runs = [run for run in tagged if ANALYTICS_TAG not in run.tags]
            if flow_runs:
                page = _Page(
                    flow_runs=flow_runs,
                    task_runs=await _task_runs(client, [run.id for run in flow_runs], page_size),
                    flow_names=await _flow_names(client, flow_runs, flows),
                    parents=await _parent_flow_runs(client, flow_runs, parents),
                    schemas=await _parameter_schemas(client, flow_runs, schemas),
                )
                await anyio.to_thread.run_sync(_store_page, engine, tables, page, result)
            if len(tagged) < page_size:
                break
            offset += page_size
    await anyio.to_thread.run_sync(_write_harvest_watermark, engine, tables, upper)
    return result


def _read_harvest_watermark(engine: sa.Engine, tables: Tables) -> dt.datetime | None:
    with engine.connect() as connection:
        return read_watermark(connection, tables, HARVEST_WATERMARK)


def _write_harvest_watermark(engine: sa.Engine, tables: Tables, value: dt.datetime) -> None:
    with engine.begin() as connection:
        write_watermark(connection, tables, HARVEST_WATERMARK, value)


async def _task_runs(
    client: PrefectClient, flow_run_ids: list[uuid.UUID], page_size: int
) -> dict[uuid.UUID, list[TaskRun]]:
    by_flow_run: dict[uuid.UUID, list[TaskRun]] = {run_id: [] for run_id in flow_run_ids}
    offset = 0
    while True:
        page = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids)),
            # A subflow shows in its parent as an extra task run: not a spec task.
            task_run_filter=TaskRunFilter(subflow_runs=TaskRunFilterSubFlowRuns(exists_=False)),
            sort=TaskRunSort.ID_DESC,
            limit=page_size,
            offset=offset,
        )
        for task_run in page:
            # The tracking task run also names its parent task in a "__parents__" input.
            if task_run.flow_run_id in by_flow_run and "__parents__" not in task_run.task_inputs:
                by_flow_run[task_run.flow_run_id].append(task_run)
        if len(page) < page_size:
            return by_flow_run
        offset += page_size


async def _flow_names(
    client: PrefectClient, flow_runs: list[FlowRun], cache: dict[uuid.UUID, str]
) -> dict[uuid.UUID, str]:
    """Flow id -> name, for the flows of these runs (read once per harvest)."""
    missing = list({run.flow_id for run in flow_runs} - set(cache))
    if missing:
        flows = await client.read_flows(
            flow_filter=FlowFilter(id=FlowFilterId(any_=missing)), limit=len(missing)
        )
        cache.update({flow.id: flow.name for flow in flows})
    return cache


async def _parent_flow_runs(
    client: PrefectClient, flow_runs: list[FlowRun], cache: dict[uuid.UUID, uuid.UUID | None]
) -> dict[uuid.UUID, uuid.UUID]:
    """Subflow run id -> the flow run of the task that started it."""
    found: dict[uuid.UUID, uuid.UUID] = {}
    for run in flow_runs:
        parent_task = run.parent_task_run_id
        if parent_task is None:
            continue
        if parent_task not in cache:
            try:
                cache[parent_task] = (await client.read_task_run(parent_task)).flow_run_id
            except ObjectNotFound:
                cache[parent_task] = None
        parent = cache[parent_task]
        if parent is not None:
            found[run.id] = parent
    return found


async def _parameter_schemas(
    client: PrefectClient, flow_runs: list[FlowRun], cache: dict[uuid.UUID, dict[str, Any]]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Deployment id -> its parameter schema, where secret parameters are marked (read once per
    harvest)."""
    for deployment_id in {run.deployment_id for run in flow_runs if run.deployment_id} - set(cache):
        try:
            deployment = await client.read_deployment(deployment_id)
        except ObjectNotFound:
            cache[deployment_id] = {}
            continue
        cache[deployment_id] = deployment.parameter_openapi_schema or {}
    return cache


def _identity(run: FlowRun, page: _Page, stored: Mapping[str, Any] | None) -> RunIdentity | None:
    name = (stored["workflow_name"] if stored else None) or workflow_from_tags(run.tags)
    if not name:
        flow_name = page.flow_names.get(run.flow_id)
        name = flow_name if flow_name not in RESERVED_FLOW_NAMES else None
    if not name:
        return None
    version = (stored or {}).get("workflow_version") or run.flow_version or run.deployment_version or ""
    return RunIdentity(name=str(name), version=str(version))


def _stored_runs(connection: sa.Connection, tables: Tables, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    logs = tables.execution_logs
    rows = connection.execute(
        sa.select(logs.c.flow_run_id, logs.c.workflow_name, logs.c.workflow_version, logs.c.metrics).where(
            logs.c.flow_run_id.in_(ids)
        )
    ).mappings()
    return {row["flow_run_id"]: row for row in rows}


def _stored_task_ids(
    connection: sa.Connection, tables: Tables, ids: list[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    table = tables.task_runs
    rows = connection.execute(
        sa.select(table.c.task_run_id, table.c.flow_run_id).where(table.c.flow_run_id.in_(ids))
    )
    return {row.task_run_id: row.flow_run_id for row in rows}


def _stored_fingerprints(
    connection: sa.Connection, tables: Tables, ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    table = tables.harvested_runs
    rows = connection.execute(
        sa.select(table.c.flow_run_id, table.c.fingerprint).where(table.c.flow_run_id.in_(ids))
    )
    return {row.flow_run_id: row.fingerprint for row in rows}


def fingerprint(
    log_row: Mapping[str, Any], harvest_row: Mapping[str, Any], task_rows: list[dict[str, Any]]
) -> str:
    """A hash of everything harvested about one run (not the harvest time or fresh row ids)."""
    content = {
        "run": {k: v for k, v in log_row.items() if k not in ("id", "metrics")},
        "harvest": {k: v for k, v in harvest_row.items() if k not in ("harvested_at", "fingerprint")},
        "tasks": sorted(task_rows, key=lambda row: str(row["task_run_id"])),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def _task_rows(
    run: FlowRun, identity: RunIdentity, task_runs: Sequence[TaskRun], metrics: Any
) -> list[dict[str, Any]]:
    recorded = recorded_tasks(metrics)
    rows = [task_run_row(task_run, identity.name, recorded.get(task_run.name)) for task_run in task_runs]
    known = {task_run.name for task_run in task_runs}
    rows += [
        recorded_task_row(run.id, identity.name, name, entry)
        for name, entry in recorded.items()
        if name not in known
    ]
    return rows


def _store_page(engine: sa.Engine, tables: Tables, page: _Page, result: HarvestResult) -> None:
    ids = [run.id for run in page.flow_runs]
    with engine.begin() as connection:
        stored = _stored_runs(connection, tables, ids)
        fingerprints = _stored_fingerprints(connection, tables, ids)
        existing_tasks = _stored_task_ids(connection, tables, ids)
        harvested_at = database_now(connection)
        log_rows: list[dict[str, Any]] = []
        harvest_rows: list[dict[str, Any]] = []
        task_rows: list[dict[str, Any]] = []
        for run in page.flow_runs:
            previous = stored.get(run.id)
            identity = _identity(run, page, previous)
            if identity is None:
                result.unresolved.append(run.id)
                continue
            row = execution_log_row(run, identity)
            # A run started in clear from Prefect's UI that never started holds its secrets in clear.
            schema = page.schemas.get(run.deployment_id) if run.deployment_id else None
            row["metrics"] = {"parameters": mask_references(run.parameters or {}, schema)}
            log_rows.append(row)
            rows = _task_rows(run, identity, page.task_runs.get(run.id, []), (previous or {}).get("metrics"))
            task_rows += rows
            harvest_row = harvested_run_row(
                run,
                identity,
                task_runs=len(rows),
                harvested_at=harvested_at,
                parent_flow_run_id=page.parents.get(run.id),
            )
            harvest_row["fingerprint"] = fingerprint(row, harvest_row, rows)
            harvest_rows.append(harvest_row)
            result.flow_runs.append(run.id)
            if previous is None:
                result.runs_new += 1
            else:
                result.runs_updated += 1
            if fingerprints.get(run.id) != harvest_row["fingerprint"]:
                result.runs_changed += 1
        upsert(connection, tables.execution_logs, log_rows, key=["flow_run_id"], update=_RUN_UPDATES)
        fresh = {row["task_run_id"] for row in task_rows}
        kept = {row["flow_run_id"] for row in log_rows}
        stale = [
            task_run_id
            for task_run_id, flow_run_id in existing_tasks.items()
            if task_run_id not in fresh and flow_run_id in kept
        ]
        for start in range(0, len(stale), _DELETE_BATCH):
            batch = stale[start : start + _DELETE_BATCH]
            connection.execute(tables.task_runs.delete().where(tables.task_runs.c.task_run_id.in_(batch)))
        upsert(connection, tables.task_runs, task_rows, key=["task_run_id"], update=_TASK_UPDATES)
        # Unchanged re-reads keep their harvest time, so the performance refresh skips them.
        upsert(
            connection,
            tables.harvested_runs,
            harvest_rows,
            key=["flow_run_id"],
            update=_HARVEST_UPDATES,
            unless_equal="fingerprint",
        )
    updated = len(fresh & set(existing_tasks))
    result.task_runs_updated += updated
    result.task_runs_new += len(fresh) - updated
    result.task_runs_removed += len(stale)
