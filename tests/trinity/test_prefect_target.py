"""The CLI finds the Prefect API without ``PREFECT_API_URL``: from the config or a running ``trinity up``."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import anyio
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from blocks.workflow_definition import definition_block_name, load_definition
from tests.conftest import PREFECT_AUTH_STRING
from tests.support.documents import spec_and_workflow
from tests.support.servers import PrefectServer
from tests.support.shell import run_command
from trinity.core.signing import DEFINITION_KEY_ENV

ROOT = Path(__file__).resolve().parents[2]
TRINITY = ROOT / ".venv" / "bin" / "trinity"

TASKS = "  - {id: only, uses: noop}\n"


def _deploy(tmp_path: Path, name: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(spec_and_workflow(name, TASKS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "TRINITY_"))}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-home"), **extra_env}
    return run_command(
        [str(TRINITY), "deploy", str(spec), "--pool", "target-tests", "--no-analytics"], cwd=tmp_path, env=env
    )


def _deployed(name: str) -> bool:
    async def read() -> bool:
        async with get_client() as client:
            try:
                await client.read_deployment_by_name(f"{name}/trinity")
            except ObjectNotFound:
                return False
        return True

    return anyio.run(read)


def test_deploy_uses_prefect_api_url_from_the_config(prefect_api: PrefectServer, tmp_path: Path) -> None:
    name = f"cfg-{uuid.uuid4().hex[:8]}"
    (tmp_path / "trinity.config.yml").write_text(f"prefect:\n  api_url: {prefect_api.api_url}\n")

    result = _deploy(tmp_path, name, {DEFINITION_KEY_ENV: os.environ[DEFINITION_KEY_ENV]})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{name}/trinity"
    assert _deployed(name)


def test_deploy_uses_the_running_stack_and_its_secrets(insider: PrefectServer, tmp_path: Path) -> None:
    name = f"stack-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    state.mkdir()
    # This test process stands in for the live `trinity up` the pid file names; its Prefect is
    # closed, and neither the auth string nor the definition key is in the command's environment.
    (state / "up.pid").write_text(str(os.getpid()))
    (state / "status.json").write_text(json.dumps({"prefect_api": insider.api_url, "children": []}))
    secrets = {"prefect_auth_string": PREFECT_AUTH_STRING, "definition_key": "the-stack-s-definition-key"}
    (state / "secrets.json").write_text(json.dumps(secrets))

    result = _deploy(tmp_path, name, {"TRINITY_STATE_DIR": str(state)})

    assert result.returncode == 0, result.stderr
    assert _deployed(name)
    block = definition_block_name(name, "1.0.0")
    stored = anyio.run(load_definition, block)
    stored.verify("the-stack-s-definition-key", block_name=block)  # signed with the stack's key


def test_an_invalid_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "trinity.config.yml").write_text("prefect: [not, a, mapping]\n")

    result = _deploy(tmp_path, "broken-config", {})

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "trinity.config.yml" in lines[0]
