"""``trinity deploy`` and ``trinity run`` through the real command line, against a real Prefect server."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client

from tests.flows.conftest import fresh_events_worker
from tests.support.processes import running_process
from tests.support.servers import PrefectServer
from tests.trinity.invoke import invoke
from trinity.commands import run_commands

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "specs" / "examples"

__all__ = ["fresh_events_worker"]

WORKFLOW = """\
kind: Specification
name: cli-demo
version: 1.0.0
parameters:
  type: object
  properties:
    n: {type: integer, minimum: 1}
    label: {type: string, default: run}
  required: [n]
  additionalProperties: false
---
kind: Workflow
name: cli-demo
version: 1.0.0
spec: {name: cli-demo, version: ^1.0.0}
tasks:
  - {id: first, uses: noop, with: {output: "${{ params.n * 2 }}"}}
  - {id: second, uses: noop, needs: [first], with: {output: "${{ params.label }}-${{ tasks.first.output }}"}}
  - id: maybe
    uses: python
    needs: [first]
    if: "${{ tasks.first.output > 100 }}"
    with: {callable: "tests.flows.helpers:boom", args: ["too big"]}
"""


def cli(*args: str) -> tuple[int, str, str]:
    return invoke(run_commands.register, *args)


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(WORKFLOW)
    return path


def test_run_file_in_process(prefect_api: object, demo_file: Path) -> None:
    code, out, err = cli("run", str(demo_file), "--param", "n=4", "--param", "label=x")

    assert code == 0, err
    assert out.splitlines()[-1].startswith("Completed")
    assert "running cli-demo 1.0.0 here" in err


def test_run_file_fails_naming_the_task(prefect_api: object, demo_file: Path) -> None:
    code, _, err = cli("run", str(demo_file), "--param", "n=60")

    assert code == 1
    assert "Failed: task 'maybe' failed: ValueError: too big" in err


def test_run_file_watch_shows_every_task(prefect_api: object, demo_file: Path) -> None:
    code, out, err = cli("run", str(demo_file), "--param", "n=1", "--watch")

    assert code == 0, err
    table = "\n".join(out.splitlines()[:-1])
    for name in ("first", "second", "maybe"):
        assert name in table
    assert "Skipped" in table


def test_bad_parameters_one_line_each_and_no_run(prefect_api: object, demo_file: Path) -> None:
    code, out, err = cli("run", str(demo_file), "--param", "n=0", "--param", "colour=red")

    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert any("(at $.n)" in line for line in lines)
    assert any("unknown parameter 'colour'" in line for line in lines)
    assert "Traceback" not in out + err


def test_malformed_param_is_one_line(demo_file: Path) -> None:
    code, _, err = cli("run", str(demo_file), "--param", "novalue")

    assert code == 1
    assert err.strip() == "--param: expected KEY=VALUE, got 'novalue'"


def test_deploy_rejects_invalid_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(WORKFLOW.replace("needs: [first], with", "needs: [nothing], with", 1))

    code, out, err = cli("deploy", str(bad))

    assert code == 1
    assert out == ""
    assert err.startswith(f"{bad}:")
    assert "error:" in err
    assert "nothing" in err


def test_deploy_examples_and_write_prefect_yaml(prefect_api: object, tmp_path: Path) -> None:
    pool = f"cli-{uuid.uuid4().hex[:8]}"
    target = tmp_path / "prefect.yaml"

    code, out, err = cli("deploy", str(EXAMPLES), "--pool", pool, "--write-prefect-yaml", str(target))

    assert code == 0, err
    analytics = ("trinity-performance-report/trinity", "trinity-insights-report/trinity")
    names = [line for line in out.splitlines() if line.endswith("/trinity") and line not in analytics]
    assert set(analytics) <= set(out.splitlines())
    assert "orders-etl/trinity" in names
    assert "noop-dag/trinity" in names
    assert len(names) == 8
    document = yaml.safe_load(target.read_text())
    assert [entry["name"] for entry in document["deployments"]] == ["trinity"] * len(names)

    async def pools() -> tuple[str, str]:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("orders-etl/trinity")
            flow = await client.read_flow(deployment.flow_id)
            return str(deployment.work_pool_name), flow.name

    assert asyncio.run(pools()) == (pool, "orders-etl")


def test_run_unknown_deployment(prefect_api: object) -> None:
    code, _, err = cli("run", "no-such-workflow")

    assert code == 1
    assert err.strip() == (
        "error: no deployment 'no-such-workflow/trinity' (deploy it with `trinity deploy FILE`)"
    )


@pytest.fixture
def worker(prefect_api: PrefectServer, tmp_path: Path) -> Iterator[str]:
    """A stock Prefect process worker serving a fresh pool, stopped after the test."""
    pool = f"cli-worker-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PREFECT_API_URL": prefect_api.api_url, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    argv = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    with running_process(argv, cwd=tmp_path, env=env, output=tmp_path / "worker.log"):
        yield pool


def test_run_deployed_workflow_by_name_through_a_worker(worker: str, demo_file: Path) -> None:
    code, out, err = cli("deploy", str(demo_file), "--pool", worker, "--no-analytics")
    assert code == 0, err
    assert out.strip() == "cli-demo/trinity"

    bad_code, _, bad_err = cli("run", "cli-demo", "--param", "n=zero")
    assert bad_code == 1
    assert "(at $.n)" in bad_err

    code, out, err = cli("run", "cli-demo", "--param", "n=3", "--watch", "--timeout", "240")

    assert code == 0, err
    assert f"on pool '{worker}'" in err
    assert "second" in out
    assert out.splitlines()[-1].startswith("Completed")
