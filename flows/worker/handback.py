"""Handing a claimed flow run back to its work pool, for another worker to run.

A worker claims a run by moving it to ``Pending``. When the worker stops before the run has
started -- it was still waiting for an executor, or its executor had not yet begun it -- the run is
proposed ``Scheduled`` again (due now), so the next poll of any worker on the pool takes it, instead
of leaving it ``Pending`` with nobody to start it. Prefect's own runner does the same on SIGTERM.
"""

from __future__ import annotations

import datetime
import os
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import State
from prefect.exceptions import Abort
from prefect.logging.loggers import get_logger
from prefect.states import Scheduled
from prefect.utilities.engine import propose_state

logger = get_logger("trinity.worker.handback")


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
