"""``POST /workflows/{id}/execute`` with an Idempotency-Key, the API process SIGKILLed at every step
between receiving the request and answering it: the client's retry with the same key gets the one
Prefect flow run there is -- never two -- and ten concurrent retries agree on it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from tests.api.support import ADMIN_KEY, JWT_SECRET, spec_document, workflow_document
from tests.chaos.api_kill_points import STEPS
from tests.flows.worker.support import REPO
from tests.support.servers import PrefectServer, create_database, drop_database, free_port

pytestmark = pytest.mark.timeout(300)
DAY = {"day": "2024-05-01"}


@pytest.fixture
def api_database() -> Iterator[str]:
    url = create_database("trinity_chaos_api")
    yield url
    drop_database(url)


class ApiProcess:
    """The API in a process of its own, armed to die at one step for one key."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self, *, step: str = "", key: str = "") -> None:
        env = {"TRINITY_CONFIG": str(self.config), "TRINITY_TEST_KILL_AT": step, "TRINITY_TEST_KILL_KEY": key}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.api_kill_points", "--port", str(self.port)],
                cwd=REPO,
                env={**_base_env(), **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"the API did not start:\n{self.log.read_text()[-3000:]}")

    def execute(self, workflow_id: str, key: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/workflows/{workflow_id}/execute",
            json={"parameters": DAY},
            headers={"X-API-Key": ADMIN_KEY, "Idempotency-Key": key},
            timeout=30,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def _base_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    return env


def _active_workflow(api: ApiProcess) -> dict[str, Any]:
    headers = {"X-API-Key": ADMIN_KEY}
    assert (
        httpx.post(f"{api.url}/specs", json=spec_document(), headers=headers, timeout=30).status_code == 201
    )
    created = httpx.post(
        f"{api.url}/workflows",
        params={"status": "active"},
        json=workflow_document("killed-api"),
        headers=headers,
        timeout=60,
    )
    assert created.status_code == 201, created.text
    workflow: dict[str, Any] = created.json()
    return workflow


def test_a_retry_after_the_api_died_at_any_step_gets_the_one_run(
    chaos_prefect: PrefectServer, api_database: str, tmp_path: Path
) -> None:
    config = tmp_path / "trinity.config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": api_database},
                "security": {"jwt_secret": JWT_SECRET, "bootstrap_api_key": ADMIN_KEY, "rate_limit": None},
                "prefect": {"api_url": chaos_prefect.api_url, "work_pool": f"idle-{uuid.uuid4().hex[:6]}"},
                "state_dir": str(tmp_path / "state"),
                "logging": {"level": "WARNING"},
            }
        )
    )
    api = ApiProcess(config, free_port(), tmp_path / "api.log")
    answers: dict[str, httpx.Response] = {}
    previous: str | None = None
    try:
        for step in STEPS:
            key = f"killed-{step}"
            api.start(step=step, key=key)
            if previous is None:
                workflow = _active_workflow(api)
            else:
                answers[previous] = api.execute(workflow["id"], previous)  # the client's retry
            with pytest.raises(httpx.TransportError):
                api.execute(workflow["id"], key)
            assert api.process is not None
            assert api.process.wait(timeout=30) == -9, f"the API was not killed at {step}"
            previous = key
        api.start()
        with ThreadPoolExecutor(max_workers=10) as pool:
            retries = list(pool.map(lambda _: api.execute(workflow["id"], str(previous)), range(10)))
        answers[str(previous)] = retries[0]
    finally:
        api.stop()

    assert {key: answer.status_code for key, answer in answers.items()} == {f"killed-{s}": 202 for s in STEPS}
    assert {r.status_code for r in retries} == {202}
    assert len({r.json()["flow_run_id"] for r in retries}) == 1
    answered = {answer.json()["flow_run_id"] for answer in answers.values()}
    assert len(answered) == len(STEPS)

    # Prefect has exactly one flow run per key, the one each retry was given...
    runs = httpx.post(
        f"{chaos_prefect.api_url}/flow_runs/filter",
        json={"deployments": {"id": {"any_": [workflow["deployment_id"]]}}},
        timeout=30,
    ).json()
    assert {run["id"] for run in runs} == answered
    # ...and the API's database one run row per flow run, each key linked to its own run.
    with psycopg.connect(api_database) as conn:
        recorded = conn.execute("SELECT flow_run_id::text FROM runs").fetchall()
        links = conn.execute(
            "SELECT k.key, r.flow_run_id::text FROM idempotency_keys k JOIN runs r ON r.id = k.run_id"
        ).fetchall()
    assert sorted(row[0] for row in recorded) == sorted(answered)
    assert dict(links) == {key: answer.json()["flow_run_id"] for key, answer in answers.items()}
