"""A deployment's parameter schema: Prefect itself refuses unknown parameter names.

Against a real Prefect server: its own check (``enforce_parameter_schema``, what the UI and
``prefect deployment run`` go through) refuses a flow run with a name the specification does not
declare, and a specification that accepts undeclared names gets runs that carry and use them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import PrefectHTTPStatusError

from deployments.service import deploy_workflow
from specs.parameters import EXTRA_PARAMETERS
from tests.flows.factories import specification, workflow
from tests.flows.worker.support import deployment_run_count
from tests.support.servers import PrefectServer
from tests.support.shell import run_command

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"names": {"type": "array", "items": {"type": "string"}, "default": ["ada"]}}


async def _deploy(name: str, schema: dict[str, object], tasks: list[dict[str, object]]) -> uuid.UUID:
    ref = await deploy_workflow(
        workflow=workflow(tasks, name=name),
        specification=specification(schema),
        work_pool=f"pool-{uuid.uuid4().hex[:8]}",
    )
    return ref.id


async def test_prefect_refuses_a_run_with_an_unknown_parameter(prefect_api: PrefectServer) -> None:
    deployment_id = await _deploy(
        f"closed-{uuid.uuid4().hex[:6]}",
        {"type": "object", "properties": NAMES},
        [{"id": "a", "uses": "noop"}],
    )

    async with get_client() as client:
        deployment = await client.read_deployment(deployment_id)
        with pytest.raises(PrefectHTTPStatusError) as refused:
            await client.create_flow_run_from_deployment(deployment_id, parameters={"nams": ["ada"]})
        accepted = await client.create_flow_run_from_deployment(deployment_id, parameters={"names": ["x"]})

    assert deployment.enforce_parameter_schema is True
    assert deployment.parameter_openapi_schema["additionalProperties"] is False
    assert refused.value.response.status_code == 409
    assert "nams" in refused.value.response.json()["detail"]
    assert accepted.parameters == {"names": ["x"]}
    assert await deployment_run_count(deployment_id) == 1


async def test_prefect_cli_refuses_an_unknown_parameter(prefect_api: PrefectServer) -> None:
    name = f"cli-closed-{uuid.uuid4().hex[:6]}"
    deployment_id = await _deploy(
        name, {"type": "object", "properties": NAMES}, [{"id": "a", "uses": "noop"}]
    )
    async with get_client() as client:
        deployment = await client.read_deployment(deployment_id)
        flow = await client.read_flow(deployment.flow_id)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefect",
            "deployment",
            "run",
            f"{flow.name}/{deployment.name}",
            "--param",
            "nams=ada",
        ],
        env={**os.environ, "PREFECT_API_URL": prefect_api.api_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "nams" in result.stdout + result.stderr
    assert await deployment_run_count(deployment_id) == 0


async def test_a_spec_that_accepts_more_names_gets_them_into_the_run(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    schema = {"type": "object", "properties": NAMES, "additionalProperties": {"type": "integer"}}
    # The run fails unless the undeclared parameter reaches the executor with its value.
    tasks = [
        {
            "id": "check",
            "uses": "python",
            "if": "${{ params.k != 7 }}",
            "with": {"callable": "tests.flows.helpers:boom"},
        }
    ]
    deployment_id = await _deploy(f"open-{uuid.uuid4().hex[:6]}", schema, tasks)

    async with get_client() as client:
        with pytest.raises(PrefectHTTPStatusError):  # top level: Prefect cannot bind it to the flow
            await client.create_flow_run_from_deployment(deployment_id, parameters={"k": 7})
        with pytest.raises(PrefectHTTPStatusError):  # the spec's own rule for undeclared values
            await client.create_flow_run_from_deployment(
                deployment_id, parameters={EXTRA_PARAMETERS: {"k": "seven"}}
            )
        flow_run = await client.create_flow_run_from_deployment(
            deployment_id, parameters={EXTRA_PARAMETERS: {"k": 7}}
        )

    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api.api_url,
        "TRINITY_DATABASE_URL": f"sqlite:///{tmp_path / 'trinity.db'}",
    }
    result = run_command(
        [sys.executable, "-m", "prefect", "flow-run", "execute", str(flow_run.id)], cwd=ROOT, env=env
    )
    async with get_client() as client:
        final = await client.read_flow_run(flow_run.id)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert final.state is not None
    assert final.state.type.value == "COMPLETED", final.state.message
