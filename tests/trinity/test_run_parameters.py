"""``trinity run`` refuses unknown parameter names before a run exists (file and deployed runs)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from tests.flows.conftest import fresh_events_worker
from tests.support.servers import PrefectServer
from tests.trinity.invoke import invoke
from trinity.commands import run_commands

__all__ = ["fresh_events_worker"]

HELLO = """\
kind: Specification
name: {name}
version: 1.0.0
parameters:
  type: object
  properties:
    names: {{type: array, items: {{type: string}}, default: [ada, grace]}}
{extra}---
kind: Workflow
name: {name}
version: 1.0.0
spec: {{name: {name}, version: ^1.0}}
tasks:
  - id: greet
    for_each: "${{{{ params.names }}}}"
    uses: noop
    with: {{output: "hello ${{{{ item }}}}"}}
{more_tasks}"""

MISSPELT = "--param: error: unknown parameter 'nams'; did you mean 'names'? (at $.nams)"


def cli(*args: str) -> tuple[int, str, str]:
    return invoke(run_commands.register, *args)


def hello_file(folder: Path, name: str, *, extra: str = "", more_tasks: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(HELLO.format(name=name, extra=extra, more_tasks=more_tasks))
    return path


async def flow_run_count(name: str) -> int:
    async with get_client() as client:
        runs = await client.read_flow_runs()
    return sum(f"workflow:{name}" in run.tags for run in runs)


def test_file_run_refuses_a_misspelt_parameter(prefect_api: PrefectServer, tmp_path: Path) -> None:
    name = f"hello-{uuid.uuid4().hex[:6]}"

    code, out, err = cli("run", str(hello_file(tmp_path, name)), "--param", 'nams=["ada"]')

    assert code == 1
    assert err.strip() == MISSPELT
    assert "Traceback" not in out + err
    assert asyncio.run(flow_run_count(name)) == 0


def test_deployed_run_refuses_a_misspelt_parameter(prefect_api: PrefectServer, tmp_path: Path) -> None:
    name = f"hello-{uuid.uuid4().hex[:6]}"
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    code, _, err = cli("deploy", str(hello_file(tmp_path, name)), "--pool", pool, "--no-analytics")
    assert code == 0, err

    code, out, err = cli("run", name, "--param", 'nams=["ada"]')

    assert code == 1
    assert err.strip() == MISSPELT
    assert "Traceback" not in out + err
    assert asyncio.run(flow_run_count(name)) == 0


@pytest.mark.parametrize("given", ["k=7", "nams=7"])
def test_a_spec_that_accepts_more_names_runs_with_them(
    prefect_api: PrefectServer, tmp_path: Path, given: str
) -> None:
    name = f"open-{uuid.uuid4().hex[:6]}"
    # Fails unless the undeclared parameter reaches the tasks with its value.
    check = (
        "  - id: check\n"
        "    uses: python\n"
        f'    if: "${{{{ params.{given.split("=")[0]} != 7 }}}}"\n'
        "    with: {callable: 'tests.flows.helpers:boom'}\n"
    )
    path = hello_file(tmp_path, name, extra="  additionalProperties: {type: integer}\n", more_tasks=check)

    code, out, err = cli("run", str(path), "--param", given)

    assert code == 0, err
    assert out.splitlines()[-1].startswith("Completed")
