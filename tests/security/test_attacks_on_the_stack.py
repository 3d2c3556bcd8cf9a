"""The attacks of an operator key, reproduced as they were found, on the real stack: the API on
PostgreSQL, a Prefect server and a ``trinity worker`` that runs what the API starts.

An admin stores the workflows (or is refused); the operator only starts runs through
``POST /api/v1/workflows/{id}/execute``, as the attacker did.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.api.live_support import FINAL, live_api
from tests.api.support import ApiServer, create_key
from tests.flows.worker.support import REPO, WorkerProcess, running_worker, trinity_worker_command, worker_env
from tests.security.support import ATTACK, documents, one_task_documents
from tests.support.servers import PrefectServer

POOL = f"attacks-{uuid.uuid4().hex[:6]}"
RUN_TIMEOUT = 240.0
BUSY_ATTEMPTS = 10


def busy_prefect_retried(send: Callable[[], httpx.Response]) -> httpx.Response:
    """``send()`` again while the API answers 503: Prefect was busy, and the API says to retry."""
    response = send()
    for _ in range(BUSY_ATTEMPTS - 1):
        if response.status_code != 503:
            break
        time.sleep(2)
        response = send()
    return response


class Stack:
    """The API, its Prefect server, a worker on the API's pool, and an operator's client."""

    def __init__(self, api: ApiServer, prefect: PrefectServer, worker: WorkerProcess) -> None:
        self.api = api
        self.prefect = prefect
        self.worker = worker
        self.admin = api.client()
        operator, _ = create_key(api, "operator", "attacker")
        self.operator = api.client(operator)

    def store(self, spec: dict[str, Any], workflow: dict[str, Any]) -> httpx.Response:
        """Store ``spec`` (once) and ``workflow``, active, as the admin."""
        assert self.admin.post("/specs", json=spec).status_code in (201, 409)
        return busy_prefect_retried(
            lambda: self.admin.post("/workflows", params={"status": "active"}, json=workflow)
        )

    def run(self, workflow_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """Start a run as the operator and wait for the worker to finish it; the run's detail."""
        key = {"Idempotency-Key": uuid.uuid4().hex}
        started = busy_prefect_retried(
            lambda: self.operator.post(
                f"/workflows/{workflow_id}/execute", json={"parameters": parameters}, headers=key
            )
        )
        assert started.status_code == 202, started.text
        url = f"/runs/{started.json()['id']}"
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            detail: dict[str, Any] = self.operator.get(url).json()
            if detail["state"]["type"] in FINAL:
                return detail
            time.sleep(0.5)
        raise AssertionError(f"the run {url} did not finish within {RUN_TIMEOUT:g}s")

    def state_message(self, detail: dict[str, Any]) -> str:
        """The flow run's state message as Prefect holds it (what the attacker read)."""
        flow_run = httpx.get(f"{self.prefect.api_url}/flow_runs/{detail['flow_run_id']}", timeout=30)
        return str(flow_run.json()["state"]["message"])


@pytest.fixture(scope="module")
def stack(prefect_sqlite_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("attacks")
    with live_api(prefect_sqlite_server, folder, work_pool=POOL) as api:
        env = worker_env(prefect_sqlite_server, api.settings.database_url)
        command = trinity_worker_command(POOL, processes=1, concurrency=2)
        with running_worker(command, env, folder / "worker.log") as worker:
            yield Stack(api, prefect_sqlite_server, worker)


def test_parameter_to_shell_injection(stack: Stack, tmp_path: Path) -> None:
    spec, as_found = documents("echo ${{ params.name }}", tmp_path)
    refused = stack.store(spec, as_found)
    assert refused.status_code == 422, refused.text
    assert [d["loc"] for d in refused.json()["error"]["details"]] == ["$.tasks[0].with.argv[2]"]

    _, quoted = documents("echo ${{ params.name | quote }} > said.txt", tmp_path)
    stored = stack.store(spec, quoted)
    assert stored.status_code == 201, stored.text

    run = stack.run(stored.json()["id"], {"name": ATTACK})

    assert run["state"]["type"] == "COMPLETED", stack.state_message(run)
    assert (tmp_path / "said.txt").read_text() == ATTACK + "\n"  # the value, said as text
    assert not (tmp_path / "pwned.txt").exists()
    assert not (REPO / "pwned.txt").exists()
    # The attempt is on the record under the attacker's key, without the value it sent.
    trail = stack.admin.get("/audit", params={"actor": "attacker", "action": "workflow.execute"})
    assert run["id"] in {event["details"]["run_id"] for event in trail.json()["items"]}
    assert ATTACK not in stack.admin.get("/audit", params={"limit": 500}).text


def fetch_documents() -> tuple[dict[str, Any], dict[str, Any]]:
    """``fetch``: one ``http`` task whose URL is the parameter ``url``."""
    task = {"id": "fetch", "uses": "http", "with": {"url": "${{ params.url }}"}}
    return one_task_documents("fetch", "url", task)


def test_http_tasks_cannot_reach_the_stack_or_the_metadata_address(stack: Stack) -> None:
    stored = stack.store(*fetch_documents())
    assert stored.status_code == 201, stored.text
    targets = {
        f"{stack.prefect.api_url}/admin/version": "(the Prefect API)",
        "http://127.0.0.1:5432/": "'127.0.0.1:5432' (Trinity's database)",
        "http://169.254.169.254/latest/meta-data/": "'169.254.0.0/16' (link-local)",
    }
    for url, rule in targets.items():
        run = stack.run(stored.json()["id"], {"url": url})
        message = stack.state_message(run)
        assert run["state"]["type"] == "FAILED", (url, message)
        assert "is denied by the security.http rule" in message, (url, message)
        assert rule in message, (url, message)


def expression_workflow(expression: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``fetch`` specification and a new workflow whose one task evaluates ``expression``."""
    spec, workflow = fetch_documents()
    workflow = dict(workflow, name=f"eval-{uuid.uuid4().hex[:6]}")
    workflow["tasks"] = [{"id": "say", "uses": "noop", "with": {"output": f"${{{{ {expression} }}}}"}}]
    return spec, workflow


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("dict.fromkeys(range(10000), 'a' * 100000) | string | length", "fromkeys"),
        ("dict.update(params, {'url': 'http://169.254.169.254/'})", "dict.update is not available"),
    ],
)
def test_unbounded_evaluation_is_refused_when_stored(stack: Stack, expression: str, reason: str) -> None:
    refused = stack.store(*expression_workflow(expression))

    assert refused.status_code == 422, refused.text
    details = refused.json()["error"]["details"]
    assert {d["loc"] for d in details} == {"$.tasks[0].with.output"}
    assert any(reason in d["msg"] for d in details), details


# Found as: a 100 kB string shared 10,000 times, then |string or |tojson: ~1 GB in the executor.
BOUNDED_AT_RUN = [
    ("(['a' * 100000] * 10000) | string | length", "more than 1,000,000"),
    ("(['a' * 100000] * 10000) | tojson | length", "more than 1,000,000"),
    ("range(10000) | list | tojson(indent=100000)", "indent"),
]
PEAK_GROWTH_BOUND_MIB = 100


def peak_kib(worker: psutil.Process) -> dict[int, int]:
    """The high-water mark of resident memory (VmHWM) of each process under the worker."""
    peaks = {}
    for child in worker.children(recursive=True):
        status = Path(f"/proc/{child.pid}/status").read_text()
        peaks[child.pid] = int(
            next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]
        )
    return peaks


def test_unbounded_evaluation_on_the_worker_fails_the_run_within_a_fixed_memory(stack: Stack) -> None:
    worker = psutil.Process(stack.worker.process.pid)
    warm_up = stack.store(*expression_workflow("(['a' * 100000] * 9) | join | length"))
    assert warm_up.status_code == 201, warm_up.text
    assert stack.run(warm_up.json()["id"], {"url": "-"})["state"]["type"] == "COMPLETED"
    before = peak_kib(worker)

    for expression, reason in BOUNDED_AT_RUN:
        stored = stack.store(*expression_workflow(expression))
        assert stored.status_code == 201, stored.text  # it passes the static checks...
        run = stack.run(stored.json()["id"], {"url": "-"})
        message = stack.state_message(run)
        assert run["state"]["type"] == "FAILED", (expression, message)  # ...and stops at its bound
        assert reason in message, (expression, message)

    after = peak_kib(worker)
    assert after.keys() == before.keys()  # the same executor ran them all: none died
    growth_mib = max(after[pid] - before[pid] for pid in after) / 1024
    assert growth_mib < PEAK_GROWTH_BOUND_MIB, (before, after)
