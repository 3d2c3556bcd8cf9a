"""Claiming runs and handing them back, against a real Prefect server."""

from __future__ import annotations

import asyncio

import pytest
from prefect.client.orchestration import get_client

from flows.worker.claims import claim, hand_back
from tests.flows.worker.support import deploy_tasks
from tests.support.servers import PrefectServer

pytestmark = pytest.mark.anyio


async def test_one_claim_wins_and_a_handed_back_run_can_be_claimed_again(prefect_api: PrefectServer) -> None:
    deployment = await deploy_tasks("claimed", "claims-idle", [{"id": "a", "uses": "noop"}])
    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(deployment)
        first, second = await asyncio.gather(claim(client, run), claim(client, run))
        assert sorted([first, second]) == [False, True]
        held = (await client.read_flow_run(run.id)).state
        assert held is not None
        assert held.is_pending()
        assert held.state_details.transition_id is not None  # what an unanswered claim is read back by

        back = await hand_back(client, run.id, worker_name="w")
        assert back is not None
        assert back.is_scheduled()
        assert "worker 'w' stopped before starting this run" in (back.message or "")
        assert await claim(client, run) is True
