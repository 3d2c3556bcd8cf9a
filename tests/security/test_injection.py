"""Parameter -> shell injection, reproduced as it was found: refused by validate and the API, and
the quoted form runs end to end without running the value."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api.support import ApiServer, make_settings, running_api_server
from tests.flows.conftest import anyio_backend, fresh_events_worker
from tests.flows.factories import run_workflow, specification, workflow
from tests.security.support import ATTACK, documents
from tests.trinity.invoke import invoke
from trinity.commands import run_commands

__all__ = ["anyio_backend", "fresh_events_worker"]

TRINITY = Path(sys.executable).parent / "trinity"


def write(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    folder = tmp_path_factory.mktemp("injection-api")
    with running_api_server(make_settings(f"sqlite:///{folder / 'trinity.db'}", state_dir=folder)) as server:
        yield server


def test_validate_refuses_the_attack_in_one_located_line(tmp_path: Path) -> None:
    path = write(tmp_path / "greet.yaml", documents("echo ${{ params.name }}", tmp_path))

    done = subprocess.run([str(TRINITY), "validate", str(path)], capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    assert lines[0].startswith(f"{path}:")
    assert lines[0].endswith("(at $.tasks[0].with.argv[2])")
    assert "${{ params.name | quote }}" in lines[0]
    assert "with.env: {NAME: '${{ params.name }}'}" in lines[0]
    assert '"$NAME"' in lines[0]
    assert "Traceback" not in done.stderr


def test_validate_accepts_the_quoted_form(tmp_path: Path) -> None:
    path = write(tmp_path / "greet.yaml", documents("echo ${{ params.name | quote }}", tmp_path))
    done = subprocess.run([str(TRINITY), "validate", str(path)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.startswith("OK: ")) == (0, True), done.stdout


def test_api_answers_422_at_the_argv_item(api_server: ApiServer, tmp_path: Path) -> None:
    spec, workflow = documents("echo ${{ params.name }}", tmp_path)
    client = api_server.client()
    assert client.post("/specs", json=spec).status_code in (201, 409)

    refused = client.post("/workflows", json=workflow)

    assert refused.status_code == 422, refused.text
    details = refused.json()["error"]["details"]
    assert [d["loc"] for d in details] == ["$.tasks[0].with.argv[2]"]
    assert "| quote" in details[0]["msg"]
    quoted = client.post("/workflows", json=documents("echo ${{ params.name | quote }}", tmp_path)[1])
    assert quoted.status_code == 201, quoted.text


def test_run_refuses_the_attack_and_runs_the_quoted_form(prefect_api: object, tmp_path: Path) -> None:
    attack = write(tmp_path / "attack.yaml", documents("echo ${{ params.name }}", tmp_path))
    code, out, err = invoke(run_commands.register, "run", str(attack), "--param", f"name={ATTACK}")
    assert code == 1
    assert "(at $.tasks[0].with.argv[2])" in out + err
    assert not (tmp_path / "pwned.txt").exists()

    quoted = write(
        tmp_path / "quoted.yaml", documents("echo ${{ params.name | quote }} > said.txt", tmp_path)
    )
    code, out, err = invoke(run_commands.register, "run", str(quoted), "--param", f"name={ATTACK}")

    assert code == 0, out + err
    assert out.splitlines()[-1].startswith("Completed")
    assert (tmp_path / "said.txt").read_text() == ATTACK + "\n"
    assert not (tmp_path / "pwned.txt").exists()


@pytest.mark.anyio
async def test_a_definition_that_skipped_validation_does_not_run(prefect_api: object, tmp_path: Path) -> None:
    argv = ["sh", "-c", "echo ${{ params.name }}"]
    wf = workflow([{"id": "hello", "uses": "shell", "with": {"argv": argv, "cwd": str(tmp_path)}}])
    spec = specification({"type": "object", "properties": {"name": {"type": "string"}}})

    state = await run_workflow(wf, spec, name=ATTACK)

    assert state.is_failed()
    assert "with.argv[2]: expression '${{ params.name }}' is inside the script of 'sh -c'" in str(
        state.message
    )
    assert not (tmp_path / "pwned.txt").exists()
