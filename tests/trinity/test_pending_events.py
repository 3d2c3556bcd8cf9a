"""A command that ran a flow in-process delivers its events before it exits, without a warning.

The warning ("EventsWorker - Still processing items") came from Prefect's exit hook finding the
run's last events still queued; only a real process shows it, so ``trinity run`` runs as one.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from pathlib import Path

import anyio
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from tests.support.documents import spec_and_workflow
from tests.support.servers import PrefectServer
from tests.support.shell import run_command

TRINITY = Path(sys.executable).parent / "trinity"
FAILING_TASKS = """\
  - {id: fan, uses: noop, for_each: [1, 2, 3, 4, 5, 6]}
  - {id: breaks, uses: shell, needs: [fan], with: {argv: ["false"]}}
  - {id: after, uses: noop, needs: [breaks]}
"""


async def _task_states(flow_run_id: uuid.UUID) -> dict[str, str]:
    async with get_client() as client:
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {run.name: run.state.name for run in task_runs if run.state is not None}


def test_a_failed_in_process_run_exits_without_the_events_warning(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    name = f"failing-{uuid.uuid4().hex[:6]}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(spec_and_workflow(name, FAILING_TASKS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TRINITY_"))}
    env |= {
        "PREFECT_API_URL": prefect_api.api_url,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "TRINITY_DATABASE_URL": f"sqlite:///{tmp_path / 'trinity.db'}",
    }

    # The warning came at about two exits in three: three runs.
    for _ in range(3):
        result = run_command([str(TRINITY), "run", str(path)], cwd=tmp_path, env=env)
        output = result.stdout + result.stderr

        assert result.returncode == 1, output
        assert "Failed: task 'breaks' failed" in result.stderr
        assert "Still processing items" not in output
        assert "EventsWorker" not in output
        # Delivered, not dropped: Prefect has every task run's final state.
        found = re.search(r"/runs/flow-run/([0-9a-f-]{36})", result.stderr)
        assert found is not None, output
        states = anyio.run(_task_states, uuid.UUID(found.group(1)))
        assert states["breaks"] == "Failed"
        assert sorted(n for n, s in states.items() if n.startswith("fan[") and s == "Completed") == [
            f"fan[{i}]" for i in range(6)
        ]
