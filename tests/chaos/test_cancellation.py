"""Cancelling a run whose ``shell`` program ignores SIGTERM (and left a grandchild in a session of
its own): within the stop grace plus a few seconds the whole process tree is gone and the run is
Cancelled."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psutil
import pytest
from prefect.client.orchestration import get_client
from prefect.states import Cancelling

from flows.actions.shell import STOP_GRACE_SECONDS
from tests.chaos.support import (
    deploy,
    is_final,
    is_running,
    marker_path,
    running_worker,
    shell_task,
    start_runs,
    wait_until,
    worker_env,
)
from tests.support.servers import PrefectServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

# Ignores SIGTERM, starts a child that ignores it too and a grandchild in a new session, and
# writes their pids once all three are up.
STUBBORN = """
trap '' TERM
setsid sh -c 'trap "" TERM; echo $$ > "$MARKER.grandchild"; exec sleep 300' &
sleep 300 &
echo $! > "$MARKER.child"
while [ ! -s "$MARKER.grandchild" ]; do sleep 0.1; done
echo $$ > "$MARKER"
wait
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_cancelling_a_run_stops_a_program_that_ignores_sigterm(
    chaos_api: PrefectServer, tmp_path: Path
) -> None:
    pool = f"cancel-{uuid.uuid4().hex[:6]}"
    deployment = await deploy("stubborn", pool, [shell_task(STUBBORN)])
    marker = marker_path(tmp_path)
    with running_worker(pool, worker_env(chaos_api, tmp_path), tmp_path / "worker.log") as worker:
        [run_id] = await start_runs(deployment, 1, marker=marker)
        await wait_until([run_id], is_running, timeout=90, what="running", worker=worker)
        deadline = time.monotonic() + 30
        while not Path(marker).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = [int(Path(path).read_text()) for path in (marker, f"{marker}.child", f"{marker}.grandchild")]
        assert all(_alive(pid) for pid in pids)

        # What the Prefect UI and `prefect flow-run cancel` do.
        async with get_client() as client:
            await client.set_flow_run_state(run_id, Cancelling(message="cancelled by the test"))
        cancelled_at = time.monotonic()
        [run] = await wait_until(
            [run_id], is_final, timeout=STOP_GRACE_SECONDS + 30, what="finished", worker=worker
        )
        settled = time.monotonic() - cancelled_at
        log = worker.log()
    assert run.state_name == "Cancelled", log[-3000:]
    assert [pid for pid in pids if _alive(pid)] == []
    assert "SIGTERM ignored" in log
    print(f"cancelled run settled {settled:.1f}s after the request (stop grace {STOP_GRACE_SECONDS:g}s)")
