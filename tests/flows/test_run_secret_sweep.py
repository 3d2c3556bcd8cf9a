"""The sweep of per-run Secret blocks, against a real Prefect server: only blocks older than the
grace that no run may still read are deleted."""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
import pytest
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.states import Cancelled, Crashed, Scheduled

from blocks.run_secrets import stash_secret
from flows.run_secret_sweep import SWEEP_GRACE, sweep_run_secrets
from flows.worker.reruns import LOOKBACK
from specs.secrets import secret_reference
from tests.security.secret_records import block_exists

pytestmark = pytest.mark.anyio


def _body(password: str) -> None:
    return None


async def _created(name: str) -> dt.datetime:
    async with get_client() as client:
        block = await client.read_block_document_by_name(name, block_type_slug="secret")
    assert block.created is not None
    return block.created


async def test_blocks_no_run_may_read_are_swept_after_the_grace(prefect_api: object) -> None:
    orphan, cancelled, waiting, crashed = [await stash_secret(f"value-{n}") for n in range(4)]
    flow: Flow[..., Any] = Flow(fn=_body, name="sweep-demo")
    async with get_client() as client:
        await client.create_flow_run(
            flow, parameters={"password": secret_reference(waiting)}, state=Scheduled()
        )
        cancelled_run = await client.create_flow_run(
            flow, parameters={"password": secret_reference(cancelled)}
        )
        await client.set_flow_run_state(cancelled_run.id, Cancelled(), force=True)
        crashed_run = await client.create_flow_run(flow, parameters={"password": secret_reference(crashed)})
        await anyio.sleep(0.3)  # so the crash and the next block come strictly later
        await client.set_flow_run_state(crashed_run.id, Crashed(), force=True)
        crashed_at = (await client.read_flow_run(crashed_run.id)).end_time
    fresh = await stash_secret("value-fresh")
    # Just after the grace of the first four blocks: the fresh one is younger, the crash recent.
    now = await _created(crashed) + SWEEP_GRACE + dt.timedelta(milliseconds=100)
    assert now < await _created(fresh) + SWEEP_GRACE
    assert crashed_at is not None
    assert crashed_at > now - LOOKBACK

    swept = set(await sweep_run_secrets(now=now))

    assert {orphan, cancelled} <= swept
    assert not {waiting, crashed, fresh} & swept
    assert not await block_exists(orphan)
    assert not await block_exists(cancelled)
    assert await block_exists(waiting)
    assert await block_exists(crashed)
    assert await block_exists(fresh)

    # Later, past the reruns' look-back: only the block of the run still scheduled stays.
    later = max(crashed_at + LOOKBACK, await _created(fresh) + SWEEP_GRACE) + dt.timedelta(seconds=1)
    swept = set(await sweep_run_secrets(now=later))

    assert {crashed, fresh} <= swept
    assert waiting not in swept
    assert await block_exists(waiting)
