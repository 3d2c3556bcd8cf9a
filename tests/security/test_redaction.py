"""Credentials in URLs stay out of Prefect's records of a run: state messages and log lines."""

from __future__ import annotations

import pytest

from tests.flows.conftest import anyio_backend, fresh_events_worker
from tests.flows.factories import flow_run_id, log_lines, run_workflow, task_runs, workflow

__all__ = ["anyio_backend", "fresh_events_worker"]
pytestmark = pytest.mark.anyio

SCRIPT = (
    'echo "using postgresql://app:s3cret-pw@db/x"; echo "connect https://u:s3cret-pw@db/ failed" >&2; exit 3'
)


async def test_a_failing_task_with_credentials_in_its_output(prefect_api: object) -> None:
    wf = workflow([{"id": "load", "uses": "shell", "with": {"argv": ["sh", "-c", SCRIPT]}}])

    state = await run_workflow(wf)

    assert state.is_failed()
    assert "s3cret-pw" not in str(state.message)
    assert "https://u:***@db/ failed" in str(state.message)
    run_id = flow_run_id(state)
    [task_run] = (await task_runs(run_id, expected=1)).values()
    assert task_run.state is not None
    assert "s3cret-pw" not in str(task_run.state.message)
    lines = await log_lines(run_id, until="using postgresql")
    assert any("postgresql://app:***@db/x" in line for line in lines), lines
    assert not [line for line in lines if "s3cret-pw" in line]
