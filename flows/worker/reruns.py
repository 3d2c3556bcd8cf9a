"""Reruns of crashed runs, as a workflow's ``on_crash: {rerun: N}`` asks.

A run *crashes* when the process running it dies: its executor exits (the worker reports it), or
its heartbeats stop (Trinity's automation marks it, :mod:`deployments.automations`). For a run of a
workflow deployment whose stored definition says ``on_crash: {rerun: N}``, Trinity starts a new
flow run of the same deployment with the same parameters and tags, plus ``rerun-of:<crashed flow
run id>``. A rerun that crashes is rerun in turn, until the chain holds N reruns.

Every ``trinity worker`` watches for crashes (Prefect's ``prefect.flow-run.Crashed`` events, and a
poll of the last hour's crashed runs when it starts and whenever the event stream is down), so
reruns need no-one to act and no extra process. Several workers see the same crash; each asks
Prefect for the rerun with the idempotency key ``rerun-of:<crashed flow run id>``, and Prefect
creates one flow run per key: exactly one rerun, whichever worker asks first.
"""

from __future__ import annotations

import asyncio
import datetime
from collections import OrderedDict
from collections.abc import Iterable
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventResourceFilter,
)
from prefect.exceptions import ObjectNotFound
from prefect.logging.loggers import get_logger

from blocks.workflow_definition import DefinitionNotFoundError, load_definition
from flows.entry import block_name_from_entrypoint
from flows.worker.flow_run_events import flow_run_event_stream
from flows.worker.heartbeat import HEARTBEAT_EVENT, heartbeat_seconds

logger = get_logger("trinity.worker.reruns")

RERUN_TAG_PREFIX = "rerun-of:"
CRASHED_EVENT = "prefect.flow-run.Crashed"
WATCHED_TAG = "trinity"
# A worker that starts (or finds the event stream down) looks this far back for crashed runs.
LOOKBACK = datetime.timedelta(hours=1)
_REMEMBERED = 10_000


def rerun_tag(flow_run_id: UUID | str) -> str:
    """The tag a rerun carries: ``rerun-of:<crashed flow run id>``."""
    return f"{RERUN_TAG_PREFIX}{flow_run_id}"


def rerun_of(tags: Iterable[str] | None) -> UUID | None:
    """The crashed flow run a run reruns, read from its tags (None for a first run)."""
    for tag in tags or ():
        if tag.startswith(RERUN_TAG_PREFIX):
            try:
                return UUID(tag.removeprefix(RERUN_TAG_PREFIX))
            except ValueError:
                continue
    return None


class CrashPolicies:
    """``on_crash.rerun`` of each deployment's workflow, read from its stored definition once per
    deployment version."""

    def __init__(self, client: PrefectClient) -> None:
        self._client = client
        self._limits: dict[UUID, tuple[datetime.datetime | None, int]] = {}

    async def rerun_limit(self, deployment_id: UUID) -> int:
        """How many reruns the deployment's workflow allows (0 for anything not a Trinity workflow)."""
        try:
            deployment = await self._client.read_deployment(deployment_id)
        except ObjectNotFound:
            return 0
        cached = self._limits.get(deployment_id)
        if cached is not None and cached[0] == deployment.updated:
            return cached[1]
        limit = 0
        block_name = block_name_from_entrypoint(deployment.entrypoint)
        if block_name is not None:
            try:
                definition = await load_definition(block_name)
            except DefinitionNotFoundError:
                definition = None
            on_crash = definition.workflow_model().on_crash if definition is not None else None
            limit = on_crash.rerun if on_crash is not None else 0
        self._limits[deployment_id] = (deployment.updated, limit)
        return limit


async def reruns_before(client: PrefectClient, flow_run: FlowRun, *, limit: int) -> int:
    """How many reruns precede ``flow_run`` in its chain (0 for a first run; counts up to ``limit``)."""
    count = 0
    parent = rerun_of(flow_run.tags)
    while parent is not None and count < limit:
        count += 1
        try:
            parent = rerun_of((await client.read_flow_run(parent)).tags)
        except ObjectNotFound:
            break
    return count


async def existing_rerun(client: PrefectClient, flow_run_id: UUID) -> FlowRun | None:
    """The rerun already made of ``flow_run_id``, if any."""
    found = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[rerun_tag(flow_run_id)])), limit=1
    )
    return found[0] if found else None


async def heartbeats_since(client: PrefectClient, flow_run_id: UUID, since: datetime.datetime) -> int:
    """How many heartbeats of the run Prefect has recorded since ``since`` (0 or 1 is enough)."""
    page = await client.read_events(
        filter=EventFilter(
            occurred=EventOccurredFilter(since=since, until=datetime.datetime.now(datetime.UTC)),
            event=EventNameFilter(name=[HEARTBEAT_EVENT]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
        ),
        limit=1,
    )
    return len(page.events)


def _crash_time(flow_run: FlowRun) -> datetime.datetime | None:
    """When the run crashed, or None if it is not a crashed deployment run."""
    state = flow_run.state
    if state is None or not state.is_crashed() or flow_run.deployment_id is None:
        return None
    return state.timestamp


async def rerun_if_allowed(
    client: PrefectClient, flow_run_id: UUID, policies: CrashPolicies, *, quiet_seconds: float = 0.0
) -> FlowRun | None:
    """Start the rerun of a crashed run when its workflow's ``on_crash`` allows one; return it.

    The rerun waits until ``quiet_seconds`` have passed since the crash with no heartbeat of the
    run arriving: a process that was only frozen or cut off (SIGSTOP, a Prefect server restart)
    still holds the run and carries on with it, and a rerun would execute it twice.

    Returns None when the run is not (or no longer) crashed, has no deployment, its workflow
    allows no rerun, the chain is used up, its process is still alive, or another worker made
    the rerun already.
    """
    flow_run = await client.read_flow_run(flow_run_id)
    crashed_at = _crash_time(flow_run)
    if crashed_at is None or flow_run.deployment_id is None:
        return None
    deployment_id = flow_run.deployment_id
    allowed = await policies.rerun_limit(deployment_id)
    if allowed < 1:
        return None
    wait = crashed_at + datetime.timedelta(seconds=quiet_seconds) - datetime.datetime.now(datetime.UTC)
    if wait.total_seconds() > 0:
        await asyncio.sleep(wait.total_seconds())
        flow_run = await client.read_flow_run(flow_run_id)
        if _crash_time(flow_run) != crashed_at:
            return None
    if await heartbeats_since(client, flow_run_id, crashed_at):
        logger.warning(
            "Flow run %s was marked Crashed but its process still sends heartbeats; not rerun: "
            "that process carries on with it",
            flow_run_id,
        )
        return None
    used = await reruns_before(client, flow_run, limit=allowed)
    if used >= allowed:
        logger.warning(
            "Flow run %s crashed; not rerun: its workflow allows %d rerun(s) and this chain has used them",
            flow_run_id,
            allowed,
        )
        return None
    if await existing_rerun(client, flow_run_id) is not None:
        return None
    tags = [tag for tag in flow_run.tags or [] if not tag.startswith(RERUN_TAG_PREFIX)]
    crash_message = flow_run.state.message if flow_run.state is not None else None
    rerun = await client.create_flow_run_from_deployment(
        deployment_id,
        parameters=dict(flow_run.parameters or {}),
        tags=[*tags, rerun_tag(flow_run_id)],
        idempotency_key=rerun_tag(flow_run_id),
        work_queue_name=flow_run.work_queue_name,
    )
    logger.warning(
        "Flow run %s crashed (%s); started rerun %s, %d of %d allowed by on_crash",
        flow_run_id,
        (crash_message or "no message").strip().splitlines()[0][:200],
        rerun.id,
        used + 1,
        allowed,
    )
    return rerun


class CrashWatcher:
    """Reruns crashed runs as their workflows ask, until cancelled (one per worker)."""

    def __init__(self, *, poll_seconds: float = 30.0, quiet_seconds: float | None = None) -> None:
        self._poll_seconds = poll_seconds
        # Two heartbeat intervals, plus the few seconds Prefect may take to store an event.
        self._quiet_seconds = 2 * heartbeat_seconds() + 5 if quiet_seconds is None else quiet_seconds
        self._seen: OrderedDict[UUID, None] = OrderedDict()
        self._pending: dict[UUID, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Listen to Prefect's event stream; poll recent crashes at start and while it is down."""
        async with get_client() as client:
            policies = CrashPolicies(client)
            try:
                while True:
                    try:
                        await self._listen(client, policies)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        logger.warning("Crash event stream unavailable (%s); polling for crashed runs", exc)
                    await self._poll(client, policies)
                    await asyncio.sleep(self._poll_seconds)
            finally:
                for task in list(self._pending.values()):
                    task.cancel()

    async def _listen(self, client: PrefectClient, policies: CrashPolicies) -> None:
        async with flow_run_event_stream(CRASHED_EVENT) as flow_run_ids:
            # Crashes from before the stream was up (or while no worker was running).
            await self._poll(client, policies)
            async for flow_run_id in flow_run_ids:
                await self._handle(client, policies, flow_run_id)

    async def _poll(self, client: PrefectClient, policies: CrashPolicies) -> None:
        since = datetime.datetime.now(datetime.UTC) - LOOKBACK
        try:
            crashed = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED])),
                    tags=FlowRunFilterTags(all_=[WATCHED_TAG]),
                    end_time=FlowRunFilterEndTime(after_=since),
                ),
                sort=FlowRunSort.END_TIME_DESC,
                limit=200,
            )
        except Exception:
            logger.warning("Could not poll for crashed flow runs", exc_info=True)
            return
        for flow_run in crashed:
            if flow_run.deployment_id is not None:
                await self._handle(client, policies, flow_run.id)

    async def _handle(self, client: PrefectClient, policies: CrashPolicies, flow_run_id: UUID) -> None:
        # Each crash is judged in a task of its own: its quiet period must not hold up others.
        if flow_run_id in self._seen or flow_run_id in self._pending:
            return
        task = asyncio.create_task(self._judge(client, policies, flow_run_id))
        self._pending[flow_run_id] = task
        task.add_done_callback(lambda _: self._pending.pop(flow_run_id, None))

    async def _judge(self, client: PrefectClient, policies: CrashPolicies, flow_run_id: UUID) -> None:
        try:
            await rerun_if_allowed(client, flow_run_id, policies, quiet_seconds=self._quiet_seconds)
        except ObjectNotFound:
            pass
        except Exception:
            # Not remembered: the next poll tries again.
            logger.warning("Could not rerun crashed flow run %s", flow_run_id, exc_info=True)
            return
        self._seen[flow_run_id] = None
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
