"""A worker killed with SIGKILL mid-run: the run is found by its missing heartbeats, marked
Crashed, and rerun exactly once because its workflow says ``on_crash: {rerun: 1}``."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from flows.worker.reruns import rerun_tag
from tests.chaos import support as chaos
from tests.support.servers import PrefectServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

# First attempt: leave the marker and hang; any later attempt: finish at once.
FIRST_HANGS = 'if [ -e "$MARKER" ]; then echo "second attempt"; exit 0; fi; touch "$MARKER"; sleep 120'


async def test_a_killed_worker_leaves_no_run_running_and_the_run_is_rerun_once(
    chaos_api: PrefectServer, tmp_path: Path
) -> None:
    pool = f"dead-{uuid.uuid4().hex[:6]}"
    deployment = await chaos.deploy(
        "killed-mid-run", pool, [chaos.shell_task(FIRST_HANGS)], on_crash={"rerun": 1}
    )
    marker = chaos.marker_path(tmp_path)
    env = chaos.worker_env(chaos_api, tmp_path)
    with chaos.running_worker(pool, env, tmp_path / "first.log") as first:
        [run_id] = await chaos.start_runs(deployment, 1, marker=marker)
        await chaos.wait_until([run_id], chaos.is_running, timeout=90, what="running", worker=first)
        deadline = time.monotonic() + 30
        while not Path(marker).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        first.kill_tree()
        killed_at = time.monotonic()
        assert first.tree() == []

    # Nobody runs it any more: its heartbeats stop and Trinity's automation marks it Crashed.
    [crashed] = await chaos.wait_until(
        [run_id],
        lambda run: run.state_name == "Crashed",
        timeout=20 * chaos.HEARTBEAT_SECONDS,
        what="crashed",
    )
    found_after = time.monotonic() - killed_at
    assert crashed.state is not None
    assert "heartbeat" in (crashed.state.message or "")
    print(f"killed run found dead {found_after:.1f}s after the kill ({chaos.HEARTBEAT_SECONDS}s heartbeats)")

    # A worker sees the crash and starts the one rerun the workflow allows, which completes.
    with chaos.running_worker(pool, env, tmp_path / "second.log") as second:
        reruns = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (reruns and all(chaos.is_final(r) for r in reruns)):
            reruns = await chaos.runs_of(deployment, tag=rerun_tag(run_id))
            time.sleep(0.5)
        log = second.log()
    assert [rerun.state_name for rerun in reruns] == ["Completed"], log[-3000:]
    [rerun] = reruns
    assert rerun.parameters == crashed.parameters == {"marker": marker}
    assert set(crashed.tags) <= set(rerun.tags)
    assert f"started rerun {rerun.id}" in log
    # Exactly two runs of the deployment: the crashed one and its rerun, each executed once.
    assert sorted(run.id for run in await chaos.runs_of(deployment)) == sorted([run_id, rerun.id])
    assert [await chaos.running_state_count(run_id), await chaos.running_state_count(rerun.id)] == [1, 1]


async def test_a_worker_frozen_past_its_heartbeats_is_crashed_but_never_run_twice(
    chaos_api: PrefectServer, tmp_path: Path
) -> None:
    pool = f"frozen-{uuid.uuid4().hex[:6]}"
    # Long enough to be still going when a rerun would be started (two intervals after the crash).
    task = chaos.shell_task('sleep 40; echo "finished: $MARKER"')
    deployment = await chaos.deploy("frozen-mid-run", pool, [task], on_crash={"rerun": 1})
    env = chaos.worker_env(chaos_api, tmp_path)
    with chaos.running_worker(pool, env, tmp_path / "frozen.log") as frozen_worker:
        [run_id] = await chaos.start_runs(deployment, 1, marker=chaos.marker_path(tmp_path))
        await chaos.wait_until([run_id], chaos.is_running, timeout=90, what="running", worker=frozen_worker)
        # Another worker on the pool sees the crash as it happens.
        with chaos.running_worker(pool, env, tmp_path / "bystander.log") as bystander:
            frozen = frozen_worker.tree()
            for process in frozen:
                process.suspend()  # SIGSTOP: alive, but silent
            try:
                await chaos.wait_until(
                    [run_id],
                    lambda run: run.state_name == "Crashed",
                    timeout=20 * chaos.HEARTBEAT_SECONDS,
                    what="crashed",
                )
            finally:
                for process in frozen:
                    process.resume()
            # Back, it carries on: the run ends Completed, and its heartbeats keep a rerun away.
            await chaos.wait_until(
                [run_id], lambda r: r.state_name == "Completed", timeout=120, what="completed"
            )
            log = bystander.log()
    assert "still sends heartbeats; not rerun" in log, log[-3000:]
    assert await chaos.runs_of(deployment, tag=rerun_tag(run_id)) == []
    assert await chaos.running_state_count(run_id) == 1
