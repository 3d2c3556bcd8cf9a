"""A deployed workflow run by Prefect's stock process worker, started like an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

from api.db import migrate
from deployments.service import deploy_workflow
from tests.flows.factories import specification, task_runs, upstream_ids, workflow
from tests.support.servers import PrefectServer
from trinity.core.tables import execution_logs

pytestmark = pytest.mark.anyio


def _prefect(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def test_prefect_deployment_run_through_a_process_worker(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    pool = f"worker-{uuid.uuid4().hex[:8]}"
    logs_url = f"sqlite:///{tmp_path / 'trinity.db'}"
    migrate(logs_url)
    spec = specification(
        {"type": "object", "properties": {"day": {"type": "string", "format": "date"}}, "required": ["day"]}
    )
    wf = workflow(
        [
            {"id": "extract", "uses": "noop", "with": {"output": "${{ params.day }}"}},
            {
                "id": "announce",
                "uses": "shell",
                "needs": ["extract"],
                "with": {"argv": ["echo", "loaded ${{ tasks.extract.output }}"]},
            },
        ],
        name="worker-e2e",
    )
    await deploy_workflow(workflow=wf, specification=spec, work_pool=pool)
    env = {**os.environ, "PREFECT_API_URL": prefect_api.api_url, "TRINITY_DATABASE_URL": logs_url}

    started = _prefect(
        ["deployment", "run", "worker-e2e/trinity", "--param", "day=2026-11-21"], env, tmp_path, 120
    )
    assert started.returncode == 0, started.stdout + started.stderr
    worker = _prefect(
        ["worker", "start", "--pool", pool, "--type", "process", "--run-once"], env, tmp_path, 240
    )
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]

    async with get_client() as client:
        deployment = await client.read_deployment_by_name("worker-e2e/trinity")
        (flow_run,) = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        )
        flow = await client.read_flow(flow_run.flow_id)
    assert flow.name == "worker-e2e"
    assert set(flow_run.tags) >= {"trinity", "workflow:worker-e2e"}
    assert flow_run.state.is_completed(), flow_run.state.message
    assert flow_run.parameters == {"day": "2026-11-21"}
    runs = await task_runs(flow_run.id, expected=2)
    assert runs["announce"].state.is_completed()
    assert upstream_ids(runs["announce"]) == {runs["extract"].id}
    engine = sa.create_engine(logs_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(execution_logs)).mappings().all()
    engine.dispose()
    assert [(row["flow_run_id"], row["status"]) for row in rows] == [(flow_run.id, "COMPLETED")]
    assert set(rows[0]["metrics"]["tasks"]) == {"extract", "announce"}
