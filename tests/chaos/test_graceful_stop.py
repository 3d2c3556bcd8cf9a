"""SIGTERM to a worker's process group (what ``trinity up`` and systemd send): the run in progress
finishes within the grace period, the run it had claimed but not started goes back to the pool and
another worker runs it; nothing is left Running, nothing runs twice, and the handed-back run is not
taken for dead meanwhile (no heartbeat of it arrives after the hand-back).

To hold the second run claimed but unstarted, the executor is frozen (SIGSTOP) until the worker has
claimed it. A frozen executor sends no heartbeats either, and on a loaded machine the claim can take
longer than the crash automation's window (two heartbeat intervals): the automation would then
rightly take the frozen run for dead and mark it Crashed. The freeze stands for "the executor has
not started the run yet", not for a dead executor, so this test sends the run's heartbeats itself
(with the worker's own sender) for as long as the executor is frozen.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from flows.worker.heartbeat import sending_heartbeats
from tests.chaos import support as chaos
from tests.flows.worker.support import executor_pid, read_runs
from tests.support.servers import PrefectServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]


async def test_sigterm_lets_the_run_in_progress_finish_and_hands_back_the_unstarted_one(
    chaos_api: PrefectServer, tmp_path: Path
) -> None:
    pool = f"stop-{uuid.uuid4().hex[:6]}"
    deployment = await chaos.deploy("graceful", pool, [chaos.shell_task('sleep 6; echo "done: $MARKER"')])
    env = chaos.worker_env(chaos_api, tmp_path)
    with chaos.running_worker(pool, env, tmp_path / "first.log", concurrency=2, grace_seconds=30) as first:
        [in_progress] = await chaos.start_runs(deployment, 1, marker=chaos.marker_path(tmp_path))
        [running] = await chaos.wait_until(
            [in_progress], chaos.is_running, timeout=90, what="running", worker=first
        )
        executor = executor_pid(running)
        # Freeze the executor so the next run is claimed (Pending) but cannot start; its run stays
        # alive in Prefect's eyes meanwhile (see the module docstring).
        with sending_heartbeats(running):
            os.kill(executor, signal.SIGSTOP)
            try:
                [claimed] = await chaos.start_runs(deployment, 1, marker=chaos.marker_path(tmp_path))
                await chaos.wait_until(
                    [claimed],
                    lambda run: run.state is not None and run.state.is_pending(),
                    timeout=30,
                    what="claimed",
                    worker=first,
                )
                first.signal_group(signal.SIGTERM)
                stopped_at = time.monotonic()
            finally:
                os.kill(executor, signal.SIGCONT)
        code = first.wait(timeout=60)
        stop_seconds = time.monotonic() - stopped_at
        log = first.log()
    assert code == 0, log[-3000:]
    # The run in progress finished on the stopping worker; the other went back to the pool.
    [done] = await chaos.wait_until([in_progress], chaos.is_final, timeout=10, what="finished")
    assert done.state_name == "Completed", (
        f"{done.state_name}: {done.state and done.state.message}\n{log[-3000:]}"
    )
    [handed_back] = await chaos.wait_until(
        [claimed], lambda run: run.state_name == "Scheduled", timeout=10, what="back"
    )
    assert "Handed back to the work pool" in (handed_back.state.message or "")
    assert "stopping: claiming no new runs" in log
    print(f"worker stopped {stop_seconds:.1f}s after SIGTERM (a 6 s task in progress)")
    # Left alone for longer than the crash automation's window, the handed-back run stays
    # scheduled: no heartbeat of it may reach Prefect after the hand-back.
    await asyncio.sleep(2 * chaos.HEARTBEAT_SECONDS + 5)
    [waiting] = await read_runs([claimed])
    # Scheduled, or Late (Prefect's name for a scheduled run past its time), never Crashed.
    assert waiting.state is not None
    assert waiting.state.is_scheduled(), f"{waiting.state_name}: {waiting.state.message}"

    # Another worker takes the handed-back run and completes it; each run was executed once.
    with chaos.running_worker(pool, env, tmp_path / "second.log") as second:
        [finished] = await chaos.wait_until(
            [claimed], chaos.is_final, timeout=90, what="finished", worker=second
        )
    assert finished.state_name == "Completed"
    assert [await chaos.running_state_count(in_progress), await chaos.running_state_count(claimed)] == [1, 1]
    # Frozen is not dead: the run in progress was never taken for crashed on the way.
    assert "Crashed" not in await chaos.state_names(in_progress)
    assert "Crashed" not in await chaos.state_names(claimed)
