"""Claiming a flow run, and handing a claimed one back to its work pool.

A worker claims a run by proposing ``Pending``; Prefect's orchestration lets one claim win. The
claim is sent once, never retried by the client: a claim retried late -- after the Prefect server
came back from a restart -- may land on a run that another worker has run to completion since, and
Prefect accepts ``Completed -> Pending`` (it is how a run is run again), so the run would execute a
second time. When the one attempt fails without an answer, the claim carries a transition id, and
reading the run back tells whether it was recorded.

When the worker stops before a claimed run has started -- it was still waiting for an executor, or
its executor had not begun it -- the run is proposed ``Scheduled`` again (due now), so the next
poll of any worker takes it, instead of leaving it ``Pending`` with nobody to start it. Prefect's
own runner does the same on SIGTERM.
"""

from __future__ import annotations

import datetime
import os
from uuid import UUID, uuid4

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, State, StateDetails
from prefect.exceptions import Abort
from prefect.logging.loggers import get_logger
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from prefect.states import Pending, Scheduled
from prefect.utilities.engine import propose_state

logger = get_logger("trinity.worker.claims")


async def claim(client: PrefectClient, flow_run: FlowRun) -> bool:
    """Propose ``Pending`` for a scheduled run, once; True when this worker now holds it."""
    marker = uuid4()
    try:
        with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}):
            state = await propose_state(
                client, Pending(state_details=StateDetails(transition_id=marker)), flow_run_id=flow_run.id
            )
    except Abort as exc:
        logger.debug("Flow run %s not claimed: %s", flow_run.id, exc)
        return False
    except Exception as exc:
        try:
            current = (await client.read_flow_run(flow_run.id)).state
        except Exception:
            logger.warning(
                "Claim of flow run %s unanswered (%s) and the run could not be read back; left to other "
                "workers and to the heartbeat automation",
                flow_run.id,
                type(exc).__name__,
            )
            return False
        held = current is not None and current.is_pending() and current.state_details.transition_id == marker
        logger.warning(
            "Claim of flow run %s unanswered (%s); read back: %s",
            flow_run.id,
            type(exc).__name__,
            "it was recorded, running it" if held else "not ours, leaving it",
        )
        return held
    return state.is_pending()


async def hand_back(
    client: PrefectClient, flow_run_id: UUID, *, worker_name: str | None = None
) -> State | None:
    """Propose ``Scheduled`` (now) for a claimed run that was not started; return the new state.

    Orchestration refuses it when the run has moved on meanwhile (cancelled, started elsewhere);
    then the run's current state is returned and nothing else is done.
    """
    name = worker_name or os.environ.get("PREFECT__WORKER_NAME") or "this worker"
    message = f"Handed back to the work pool: worker {name!r} stopped before starting this run."
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
    logger.warning("Flow run %s handed back to its work pool: the worker is stopping", flow_run_id)
    return state
