"""Claiming runs and handing them back, against a real Prefect server; lost and late claims go
through a proxy that loses the answer or holds the request (:mod:`tests.support.faulty_proxy`)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from prefect.client.orchestration import PrefectClient, get_client
from prefect.settings import PREFECT_API_REQUEST_TIMEOUT, PREFECT_API_URL, temporary_settings
from prefect.states import Completed, Running
from prefect.utilities.engine import propose_state

from flows.worker.claims import LateClaims, claim, hand_back
from tests.flows.worker.support import deploy_tasks
from tests.support.faulty_proxy import FaultyProxy, faulty_proxy
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


@contextlib.asynccontextmanager
async def client_through(proxy: FaultyProxy) -> AsyncIterator[PrefectClient]:
    """A Prefect client whose requests go through ``proxy`` and give up after 2 s."""
    with temporary_settings(updates={PREFECT_API_URL: proxy.url, PREFECT_API_REQUEST_TIMEOUT: 2.0}):
        async with get_client() as client:
            yield client


async def test_a_claim_whose_answer_is_lost_is_read_back_and_held(prefect_api: PrefectServer) -> None:
    deployment = await deploy_tasks("lost-answer", "claims-idle", [{"id": "a", "uses": "noop"}])
    async with get_client() as client, faulty_proxy(prefect_api.api_url) as proxy:
        run = await client.create_flow_run_from_deployment(deployment)
        proxy.lose("/set_state")
        async with client_through(proxy) as proxied:
            assert await claim(proxied, run) is True
        assert [rule.matched for rule in proxy.rules] == [1]  # the answer was lost, once
        held = (await client.read_flow_run(run.id)).state
        assert held is not None
        assert held.is_pending()
        # Nobody else can claim it now: it is ours, and held exactly once.
        assert await claim(client, run) is False
        assert sum(state.is_pending() for state in await client.read_flow_run_states(run.id)) == 1


@pytest.mark.parametrize("meanwhile", ["completed elsewhere", "still scheduled"])
async def test_a_claim_that_lands_after_the_worker_gave_up_is_undone(
    prefect_api: PrefectServer, meanwhile: str
) -> None:
    deployment = await deploy_tasks("late-claim", "claims-idle", [{"id": "a", "uses": "noop"}])
    async with get_client() as client, faulty_proxy(prefect_api.api_url) as proxy:
        run = await client.create_flow_run_from_deployment(deployment)
        late = LateClaims(client, worker_name="w-late", check_seconds=0.1)
        proxy.hold("/set_state")
        async with client_through(proxy) as proxied:
            assert await claim(proxied, run, late=late) is False  # timed out; read back: not ours
        assert late.watched() == {run.id}
        if meanwhile == "completed elsewhere":
            assert await claim(client, run) is True
            await propose_state(client, Running(), flow_run_id=run.id)
            await propose_state(client, Completed(message="done by the other worker"), flow_run_id=run.id)
        await proxy.release()  # the held claim reaches the server now
        landed = (await client.read_flow_run(run.id)).state
        assert landed is not None
        assert landed.is_pending(), "the late claim did not land; the test proves nothing"
        assert await late.check() == [run.id]
        assert late.watched() == set()
        final = (await client.read_flow_run(run.id)).state
        assert final is not None
        if meanwhile == "completed elsewhere":
            assert final.is_completed()
            assert "done by the other worker" in (final.message or "")
            assert "worker 'w-late' that arrived after it had given up was undone" in (final.message or "")
            assert sum(state.is_running() for state in await client.read_flow_run_states(run.id)) == 1
        else:
            assert final.is_scheduled()
            assert "Handed back to the work pool: worker 'w-late'" in (final.message or "")
            assert await claim(client, run) is True  # any worker can take it now


async def test_a_claim_given_up_on_that_never_lands_is_watched_only_for_its_time(
    prefect_api: PrefectServer,
) -> None:
    deployment = await deploy_tasks("never-lands", "claims-idle", [{"id": "a", "uses": "noop"}])
    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(deployment)
        late = LateClaims(client, watch_seconds=0.5)
        late.watch(run.id, uuid.uuid4())
        assert await late.check() == []
        assert late.watched() == {run.id}
        await asyncio.sleep(0.6)
        assert await late.check() == []
        assert late.watched() == set()
        state = (await client.read_flow_run(run.id)).state
        assert state is not None
        assert state.is_scheduled()
