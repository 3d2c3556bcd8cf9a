"""Stored definitions are signed: one rewritten through Prefect's API never runs a task.

As found: ``PATCH /api/block_documents/{id}`` turned a ``noop`` workflow into ``sh -c ...``, run on
the next run. Reproduced here (and with a pull step added to the deployment, which runs before
the definition is even loaded) by an insider (someone with Prefect's auth string) on the real stack
-- Prefect on PostgreSQL with its auth string, a ``trinity worker`` -- the run now fails with
"definition ... was changed outside Trinity" before any task runs, and the file the shell task
would write is never written. A control workflow, signed by Trinity, runs the same kind of shell
task and writes its file, so the worker does run shell tasks. And with no definition key, the
worker, the API and ``trinity deploy`` refuse, each with one line naming the setting.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client

from blocks.workflow_definition import BLOCK_TYPE_SLUG, definition_block_name
from tests.api.support import ADMIN_KEY, make_settings, running_api_server, spec_document, workflow_document
from tests.conftest import PREFECT_AUTH_STRING as AUTH_STRING
from tests.flows.conftest import anyio_backend
from tests.flows.worker import support
from tests.support.servers import PrefectServer
from trinity.core.signing import DEFINITION_KEY_ENV, MISSING_KEY_MESSAGE, sign_definition
from trinity.stack_setup import prefect_auth_headers

__all__ = ["anyio_backend"]
pytestmark = pytest.mark.anyio

POOL = "closed-signed-pool"


def _touch(path: Path) -> list[dict[str, Any]]:
    return [{"id": "write", "uses": "shell", "with": {"argv": ["sh", "-c", f"echo pwned > {path}"]}}]


def _closed_env(server: PrefectServer, folder: Path) -> dict[str, str]:
    return support.worker_env(server, support.sqlite_trinity_database(folder)) | {
        "PREFECT_API_AUTH_STRING": AUTH_STRING
    }


@pytest.fixture(scope="module")
def worker(
    closed_prefect: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[support.WorkerProcess]:
    """A ``trinity worker`` on the closed Prefect, with the session's definition key."""
    folder = tmp_path_factory.mktemp("closed-worker")
    env = _closed_env(closed_prefect, folder)
    assert env[DEFINITION_KEY_ENV]
    with support.running_worker(
        support.trinity_worker_command(POOL, processes=1), env, folder / "worker.log"
    ) as process:
        yield process


async def _tamper(
    api_url: str, workflow_name: str, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    """Rewrite a stored definition through Prefect's API, as an insider with the auth string can."""
    async with get_client() as client:
        document = await client.read_block_document_by_name(
            definition_block_name(workflow_name, "1.0.0"), BLOCK_TYPE_SLUG
        )
    response = httpx.patch(
        f"{api_url}/block_documents/{document.id}",
        json={"data": change(document.data)},
        headers=prefect_auth_headers(AUTH_STRING),
        timeout=30,
    )
    assert response.status_code == 204, response.text


async def test_a_definition_rewritten_through_prefect_fails_its_run_before_any_task(
    insider: PrefectServer, worker: support.WorkerProcess, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    refused = ("kept-signature", "forged-signature", "pull-step")
    names = {kind: f"{kind}-{suffix}" for kind in ("control", *refused)}
    files = {kind: tmp_path / f"{kind}.txt" for kind in names}
    deployments = {"control": await support.deploy_tasks(names["control"], POOL, _touch(files["control"]))}
    for kind in refused:
        deployments[kind] = await support.deploy_tasks(names[kind], POOL, [{"id": "only", "uses": "noop"}])
    # As found: the noop workflow becomes a shell command. Once with the signature left as it was,
    # once re-signed under a guessed key.
    await _tamper(
        insider.api_url,
        names["kept-signature"],
        lambda data: {"workflow": dict(data["workflow"], tasks=_touch(files["kept-signature"]))},
    )

    def forge(data: dict[str, Any]) -> dict[str, Any]:
        workflow = dict(data["workflow"], tasks=_touch(files["forged-signature"]))
        signed = {"workflow": workflow, "specification": data["specification"]}
        fields = {"name": data["workflow_name"], "version": data["workflow_version"], **signed}
        return signed | {"signature": sign_definition("a-guessed-key", **fields)}

    await _tamper(insider.api_url, names["forged-signature"], forge)
    # The definition left alone, the deployment given a pull step that runs a shell script (pull
    # steps run before the flow is loaded).
    script = {
        "prefect.deployments.steps.run_shell_script": {"script": f"sh -c 'echo pwned > {files['pull-step']}'"}
    }
    patched = httpx.patch(
        f"{insider.api_url}/deployments/{deployments['pull-step']}",
        json={"pull_steps": [script]},
        headers=prefect_auth_headers(AUTH_STRING),
        timeout=30,
    )
    assert patched.status_code == 204, patched.text

    run_ids = {
        kind: (await support.create_runs(deployment, 1))[0] for kind, deployment in deployments.items()
    }
    runs = {
        run.id: run
        for run in await support.wait_for(run_ids.values(), support.is_final, timeout=240, what="final")
    }
    control = runs[run_ids["control"]]
    assert control.state is not None
    assert control.state.is_completed(), (control.state, worker.log())
    assert files["control"].read_text().strip() == "pwned"
    for kind in refused:
        run = runs[run_ids[kind]]
        assert run.state is not None
        assert run.state.is_failed(), (kind, run.state, worker.log())
        message = run.state.message or ""
        block = definition_block_name(names[kind], "1.0.0")
        shown = f"definition {block}" + ("" if kind == "pull-step" else f" (workflow {names[kind]} 1.0.0)")
        assert f"{shown} was changed outside Trinity" in message
        assert not files[kind].exists()
    # No task of a refused run was ever recorded; the control's one was.
    recorded = await support.task_run_names(run_ids.values(), expected=1)
    assert recorded[run_ids["control"]] == ["write"]
    assert [recorded[run_ids[kind]] for kind in refused] == [[], [], []]


def _without_key(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in (DEFINITION_KEY_ENV, "TRINITY_CONFIG")}


async def test_without_a_definition_key_the_worker_refuses_to_start(
    closed_prefect: PrefectServer, tmp_path: Path
) -> None:
    env = _without_key(_closed_env(closed_prefect, tmp_path))
    done = subprocess.run(
        support.trinity_worker_command(POOL),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: no definition key: set security.definition_key")
    assert DEFINITION_KEY_ENV in lines[0]


async def test_without_a_definition_key_trinity_deploy_refuses(
    closed_prefect: PrefectServer, tmp_path: Path
) -> None:
    example = support.REPO / "specs" / "examples" / "regional-report.yaml"
    env = _without_key(_closed_env(closed_prefect, tmp_path))
    argv = [sys.executable, "-m", "trinity.cli", "deploy", str(example), "--pool", POOL, "--no-analytics"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {MISSING_KEY_MESSAGE}"]


def test_without_a_definition_key_the_api_refuses_to_activate(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'trinity.db'}", state_dir=tmp_path)
    settings.security.definition_key = None
    with running_api_server(settings) as server:
        client = server.client(ADMIN_KEY)
        assert client.post("/specs", json=spec_document()).status_code == 201
        refused = client.post("/workflows", params={"status": "active"}, json=workflow_document())
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "definition_key_missing"
        assert "security.definition_key" in error["message"]
        assert "\n" not in error["message"]
        assert client.get("/workflows").json()["items"] == []
        # A draft is stored; activating it is refused the same way.
        draft = client.post("/workflows", json=workflow_document())
        assert draft.status_code == 201, draft.text
        again = client.put(f"/workflows/{draft.json()['id']}", json={"status": "active"})
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "definition_key_missing"
        assert client.get(f"/workflows/{draft.json()['id']}").json()["status"] == "draft"
