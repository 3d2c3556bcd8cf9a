"""The Prefect server SIGKILLed and restarted mid-run: the worker and its running flows reconnect,
every run completes, and the task runs and log lines made while the server was away arrive."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

from flows.worker.delivery_status import read_delivery_status
from tests.chaos.support import (
    deploy,
    is_final,
    is_running,
    kill_prefect_server,
    marker_path,
    restart_prefect_server,
    running_state_count,
    running_worker,
    shell_task,
    start_runs,
    wait_until,
    worker_env,
)
from tests.support.servers import PrefectServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

LINES = 30
# One line a second: the server goes away and comes back while the lines are being written.
TALKER = f'for i in $(seq 1 {LINES}); do echo "line $i of $MARKER"; sleep 1; done'
TASKS = [
    shell_task(TALKER, task_id="talk"),
    {"id": "after_a", "uses": "noop", "needs": ["talk"]},
    {"id": "after_b", "uses": "noop", "needs": ["talk"]},
    {"id": "last", "uses": "noop", "needs": ["after_a", "after_b"]},
]
# Heartbeats slower than the outage: runs that are alive must not be taken for dead meanwhile.
SLOW_HEARTBEATS = "30"


async def _log_lines(flow_run_id: uuid.UUID) -> list[str]:
    async with get_client() as client:
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
    return [log.message for log in logs]


async def _task_run_names(flow_run_id: uuid.UUID) -> list[str]:
    async with get_client() as client:
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return sorted(task_run.name for task_run in task_runs)


async def test_a_prefect_server_restart_mid_run_loses_no_run_record_or_log(
    chaos_api: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRINITY_HEARTBEAT_SECONDS", SLOW_HEARTBEATS)
    pool = f"restart-{uuid.uuid4().hex[:6]}"
    deployment = await deploy("outlives-prefect", pool, TASKS)
    env = worker_env(chaos_api, tmp_path, TRINITY_HEARTBEAT_SECONDS=SLOW_HEARTBEATS)
    markers = [marker_path(tmp_path) for _ in range(3)]
    server = chaos_api
    with running_worker(pool, env, tmp_path / "worker.log", concurrency=4) as worker:
        ids = [run_id for marker in markers for run_id in await start_runs(deployment, 1, marker=marker)]
        await wait_until(ids, is_running, timeout=90, what="running", worker=worker)
        time.sleep(4)
        kill_prefect_server(server)
        down_at = time.monotonic()
        time.sleep(3)
        restart_prefect_server(server)
        outage = time.monotonic() - down_at
        runs = await wait_until(ids, is_final, timeout=180, what="finished", worker=worker)
        # Lines logged while the server was away were kept and sent once it was back.
        deadline = time.monotonic() + 60
        while (
            "sent" not in (log := worker.log()).split("reachable again", 1)[-1]
            and time.monotonic() < deadline
        ):
            time.sleep(1)
        delivery = read_delivery_status(tmp_path / "state" / "delivery")
    assert [run.state_name for run in runs] == ["Completed"] * 3, log[-4000:]
    assert "keeping run log lines in memory" in log
    assert "Prefect API reachable again: sent" in log
    assert delivery.logs_delivered_late > 0
    assert (delivery.logs_dropped, delivery.events_dropped, delivery.logs_waiting) == (0, 0, 0)
    assert [await running_state_count(run_id) for run_id in ids] == [1, 1, 1]
    for run_id, marker in zip(ids, markers, strict=True):
        # Task runs reach the server as events, and log lines in batches, a moment after the run.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            names, lines = await _task_run_names(run_id), await _log_lines(run_id)
            said = {line for line in lines if line.startswith("stdout: line ")}
            if len(names) == len(TASKS) and len(said) == LINES:
                break
            time.sleep(1)
        assert names == sorted(task["id"] for task in TASKS)
        assert said == {f"stdout: line {i} of {marker}" for i in range(1, LINES + 1)}, lines[:20]
    print(f"Prefect server away for {outage:.1f}s; every run completed with all its records")
