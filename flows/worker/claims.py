"""Claiming a flow run, undoing a claim that landed after the worker gave up, handing a run back.

A worker claims a run by proposing ``Pending``; Prefect's orchestration lets one claim win. The
claim is sent once, never retried by the client: a claim retried late -- after the Prefect server
came back from a restart -- may land on a run that another worker has run to completion since, and
Prefect accepts ``Completed -> Pending`` (it is how a run is run again), so the run would execute a
second time.

Each claim carries a transition id of its own, so a claim whose answer was lost is read back: the
run's state carrying that id means the claim was recorded and the run is ours. Prefect's client
replaces the transition id of every state it sends with a fresh one, so the claim is posted to the
``set_state`` route directly. When the read-back does not find the claim (or cannot read the run),
the worker gives the run up -- but the claim may still be on its way (held by a server that is
slow or restarting) and land later, leaving the run ``Pending`` with nobody to run it, or turning a
run that finished meanwhile back to ``Pending``. :class:`LateClaims` watches such claims for a while
and undoes one that lands: the run gets back the final state the claim replaced, or, if it had not
run yet, goes back to the pool.

When the worker stops before a claimed run has started -- it was still waiting for an executor, or
its executor had not begun it -- the run is proposed ``Scheduled`` again (due now), so the next
poll of any worker takes it, instead of leaving it ``Pending`` with nobody to start it. Prefect's
own runner does the same on SIGTERM.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import StateCreate
from prefect.client.schemas.objects import FlowRun, State, StateDetails, StateType
from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus
from prefect.exceptions import Abort
from prefect.logging.loggers import get_logger
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from prefect.states import Scheduled
from prefect.utilities.engine import propose_state

logger = get_logger("trinity.worker.claims")

# How long a claim the worker gave up on may still land (a request held by a stalled server).
LATE_CLAIM_WATCH_SECONDS = 600.0
LATE_CLAIM_CHECK_SECONDS = 5.0


async def claim(client: PrefectClient, flow_run: FlowRun, *, late: LateClaims | None = None) -> bool:
    """Propose ``Pending`` for a scheduled run, once; True when this worker now holds it.

    A claim left unanswered is read back; one given up on is handed to ``late`` to watch.
    """
    marker = uuid4()
    pending = StateCreate(
        type=StateType.PENDING, name="Pending", state_details=StateDetails(transition_id=marker)
    )
    try:
        with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}):
            result = await set_state(client, flow_run.id, pending)
    except Exception as exc:
        return await _read_back(client, flow_run.id, marker, type(exc).__name__, late)
    if result.status == SetStateStatus.ACCEPT and result.state is not None and result.state.is_pending():
        return True
    logger.debug("Flow run %s not claimed: %s %s", flow_run.id, result.status.value, result.details)
    return False


async def set_state(
    client: PrefectClient, flow_run_id: UUID, state: StateCreate, *, force: bool = False
) -> OrchestrationResult[Any]:
    """Post ``state`` to the run's ``set_state`` route as given (its transition id kept)."""
    response = await client.request(
        "POST",
        "/flow_runs/{id}/set_state",
        path_params={"id": flow_run_id},
        json={"state": state.model_dump(mode="json", serialize_as_any=True), "force": force},
    )
    return OrchestrationResult.model_validate(response.json())


def is_claimed_by(state: State | None, marker: UUID) -> bool:
    """Whether ``state`` is the ``Pending`` that the claim ``marker`` made."""
    return state is not None and state.is_pending() and state.state_details.transition_id == marker


async def _read_back(
    client: PrefectClient, flow_run_id: UUID, marker: UUID, error: str, late: LateClaims | None
) -> bool:
    try:
        current = (await client.read_flow_run(flow_run_id)).state
    except Exception:
        current = None
        outcome = "the run could not be read back; not running it"
    else:
        if is_claimed_by(current, marker):
            logger.warning(
                "Claim of flow run %s unanswered (%s); read back: it was recorded, running it",
                flow_run_id,
                error,
            )
            return True
        outcome = "read back: not ours; not running it"
    if late is not None:
        late.watch(flow_run_id, marker)
        outcome += f", and undoing the claim should it land within {late.watch_seconds:g}s"
    logger.warning("Claim of flow run %s unanswered (%s); %s", flow_run_id, error, outcome)
    return False


@dataclass
class _Watched:
    marker: UUID
    until: float


class LateClaims:
    """Claims this worker gave up on, watched until they can no longer land; one that lands is undone."""

    def __init__(
        self,
        client: PrefectClient,
        *,
        worker_name: str | None = None,
        watch_seconds: float = LATE_CLAIM_WATCH_SECONDS,
        check_seconds: float = LATE_CLAIM_CHECK_SECONDS,
    ) -> None:
        self._client = client
        self._worker_name = worker_name
        self.watch_seconds = watch_seconds
        self._check_seconds = check_seconds
        self._watched: dict[UUID, _Watched] = {}

    def watch(self, flow_run_id: UUID, marker: UUID) -> None:
        """Watch the claim ``marker`` of ``flow_run_id`` for :attr:`watch_seconds`."""
        self._watched[flow_run_id] = _Watched(marker=marker, until=time.monotonic() + self.watch_seconds)

    def watched(self) -> set[UUID]:
        """The flow runs whose claims are still watched."""
        return set(self._watched)

    async def run(self) -> None:
        """Check the watched claims every ``check_seconds``, until cancelled."""
        while True:
            await asyncio.sleep(self._check_seconds)
            await self.check()

    async def check(self) -> list[UUID]:
        """Undo each watched claim that has landed; stop watching those past their time. Returns
        the flow runs whose claims were undone."""
        undone = []
        now = time.monotonic()
        for flow_run_id, watched in list(self._watched.items()):
            try:
                current = (await self._client.read_flow_run(flow_run_id)).state
            except Exception:
                logger.debug("Could not read flow run %s", flow_run_id, exc_info=True)
                continue
            if is_claimed_by(current, watched.marker):
                if await self._undo(flow_run_id, watched.marker):
                    undone.append(flow_run_id)
                    del self._watched[flow_run_id]
            elif now >= watched.until:
                del self._watched[flow_run_id]
        return undone

    async def _undo(self, flow_run_id: UUID, marker: UUID) -> bool:
        """Give the run back the final state the late claim replaced, or hand it back to the pool."""
        states = await self._client.read_flow_run_states(flow_run_id)
        index = next((i for i, s in enumerate(states) if s.state_details.transition_id == marker), None)
        before = states[index - 1] if index else None
        name = self._worker_name or os.environ.get("PREFECT__WORKER_NAME") or "this worker"
        if before is not None and before.is_final():
            note = f"a claim by worker {name!r} that arrived after it had given up was undone"
            restored = StateCreate(
                type=before.type,
                name=before.name,
                message=f"{before.message} (restored: {note})" if before.message else f"Restored: {note}",
                data=before.data,
            )
            try:
                await set_state(self._client, flow_run_id, restored, force=True)
            except Exception:
                logger.exception("Could not undo the late claim of flow run %s", flow_run_id)
                return False
            logger.warning(
                "Claim of flow run %s landed after this worker had given up on it, turning a %s run "
                "Pending; undone: the run is %s again, not run twice",
                flow_run_id,
                before.name,
                before.name,
            )
            return True
        reason = "had given up on its claim, which landed late (undone)"
        return await hand_back(self._client, flow_run_id, worker_name=name, reason=reason) is not None


async def hand_back(
    client: PrefectClient,
    flow_run_id: UUID,
    *,
    worker_name: str | None = None,
    reason: str = "stopped before starting this run",
) -> State | None:
    """Propose ``Scheduled`` (now) for a claimed run that was not started; return the new state.

    Orchestration refuses it when the run has moved on meanwhile (cancelled, started elsewhere);
    then the run's current state is returned and nothing else is done.
    """
    name = worker_name or os.environ.get("PREFECT__WORKER_NAME") or "this worker"
    message = f"Handed back to the work pool: worker {name!r} {reason}."
    now = datetime.datetime.now(datetime.UTC)
    try:
        state = await propose_state(
            client, Scheduled(scheduled_time=now, message=message), flow_run_id=flow_run_id
        )
    except Abort:
        return (await client.read_flow_run(flow_run_id)).state
    except Exception:
        logger.exception("Could not hand flow run %s back to its work pool", flow_run_id)
        return None
    logger.warning("Flow run %s handed back to its work pool: worker %r %s", flow_run_id, name, reason)
    return state
