"""The set-up steps of ``trinity up`` and the checks it makes against Prefect.

Kept apart from :mod:`trinity.stack` so that module stays about starting and stopping processes.
"""

from __future__ import annotations

import base64
import datetime
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote

import httpx

from specs.loader import load_path
from specs.models import Document
from trinity.supervisor import StopRequestedError, stop_process_group


class StackError(Exception):
    """``trinity up``/``down``/``status`` could not do what was asked; the message says why."""


def run_step(
    argv: list[str],
    env: dict[str, str],
    log_path: Path,
    *,
    timeout: float,
    stop_requested: Callable[[], bool],
    tick: Callable[[], None] | None = None,
) -> str:
    """Run one set-up command (deploy, demo run), logging its output; return its output.

    The command runs in its own process group, which is killed when a stop is requested
    (:class:`StopRequestedError` is raised) or when ``timeout`` passes (:class:`StackError`).
    ``tick`` is called about twice a second meanwhile, so the caller can keep supervising.
    """
    # Files rather than pipes: a chatty step cannot fill a pipe and block while we poll.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    process.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if stop_requested():
                    raise StopRequestedError(f"stop requested while running `{' '.join(argv[2:])}`")
                if time.monotonic() >= deadline:
                    raise StackError(f"`{' '.join(argv[2:])}` did not finish within {timeout:.0f}s")
                if tick is not None:
                    tick()
        finally:
            stop_process_group(process)
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
            with log_path.open("a") as log:
                log.write(f"$ {' '.join(argv)}\n{stdout}{stderr}\n")
    if process.returncode != 0:
        raise StackError(
            f"`{' '.join(argv[2:])}` failed (exit {process.returncode}): "
            f"{(stderr or stdout).strip().splitlines()[-1:] or ['no output']}"
        )
    return stdout


def prefect_auth_headers(auth_string: str | None) -> dict[str, str]:
    """The header Prefect's client sends with ``PREFECT_API_AUTH_STRING`` (HTTP basic auth)."""
    if not auth_string:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}


def worker_heartbeat(
    api_url: str, pool: str, name: str, since: float, *, auth_string: str | None = None
) -> bool:
    """True when the worker ``name`` has sent Prefect a heartbeat for ``pool`` since ``since``.

    A worker heartbeats once it has reached the API and created or found its pool, so this says
    more than "the process is alive". Same endpoint as the client's ``read_workers_for_work_pool``.
    """
    after = datetime.datetime.fromtimestamp(since, tz=datetime.UTC).isoformat()
    try:
        response = httpx.post(
            f"{api_url}/work_pools/{quote(pool, safe='')}/workers/filter",
            json={"workers": {"last_heartbeat_time": {"after_": after}}},
            headers=prefect_auth_headers(auth_string),
            timeout=2.0,
        )
    except httpx.HTTPError:
        return False
    # 404 until the worker has created the pool.
    if response.status_code != 200:
        return False
    return any(isinstance(w, dict) and w.get("name") == name for w in response.json())


def register_in_api(*, api_url: str, api_key: str, examples: Sequence[Path], workflow_name: str) -> str:
    """Store the workflow ``workflow_name`` of the example files and its specification through the
    REST API at ``api_url``, and activate it.

    Idempotent: documents already stored are found by name and reused. Returns the workflow id.
    """
    path = next(
        (p for base in examples for p in sorted(Path(base).glob(f"{workflow_name}.y*ml"))),
        None,
    )
    if path is None:
        raise StackError(f"no example file named {workflow_name}.yaml in {list(examples)}")
    documents: dict[str, Document] = {doc.kind: doc for doc in load_path(path)}
    headers = {"X-API-Key": api_key}
    with httpx.Client(base_url=api_url, headers=headers, timeout=120) as client:
        for kind, route, query in (
            ("Specification", "/specs", {}),
            ("Workflow", "/workflows", {"status": "active"}),
        ):
            body = documents[kind].model_dump(mode="json", by_alias=True, exclude_none=True)
            response = client.post(route, json=body, params=query)
            if response.status_code == 409:
                continue
            if response.status_code >= 400:
                raise StackError(f"POST {route} answered {response.status_code}: {response.text[:300]}")
        found = client.get("/workflows", params={"name": workflow_name}).json()
        items = found.get("items", [])
        if not items:
            raise StackError(f"workflow {workflow_name} not found in the API after storing it")
        workflow = items[0]
        if workflow.get("status") != "active":
            client.put(f"/workflows/{workflow['id']}", json={"status": "active"}).raise_for_status()
        return str(workflow["id"])
