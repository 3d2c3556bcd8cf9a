"""``trinity up`` with a replicated topology from ``trinity.config.yml``.

The whole thing runs for real: two Prefect API servers without services on a fresh PostgreSQL
database, one services process, prefect-redis on the machine's Redis (a database number of its
own), Debian's HAProxy in front, the Trinity API and two workers. Runs are created through the
load balancer; one API server is killed with SIGKILL while they go, and every run must still
complete exactly once while the server comes back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from specs.naming import deployment_full_name
from tests.conftest import require_postgres
from tests.support.servers import asyncpg_url, create_database, drop_database, free_port
from tests.support.services import service_missing
from trinity.load_balancer import CONFIG_FILE, haproxy_binary, write_config
from trinity.stack_config import StackConfig, child_specs
from trinity.topology import (
    KIND_LOAD_BALANCER,
    KIND_PREFECT_API,
    KIND_PREFECT_SERVICES,
    KIND_TRINITY_API,
    KIND_WORKER,
    Topology,
)

TRINITY = [sys.executable, "-m", "trinity.cli"]
REDIS_URL = os.environ.get("TRINITY_TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Prefect's messaging of this test lives in its own Redis database, emptied before and after.
REDIS_DB = 12
RUNS_PER_BATCH = 6

WORKFLOW = """\
kind: Specification
name: mark-once
version: 1.0.0
description: Appends its run id to a file, so the test can count how often each run executed.
---
kind: Workflow
name: mark-once
version: 1.0.0
spec:
  name: mark-once
  version: ^1.0.0
tasks:
  - id: mark
    uses: shell
    with:
      argv: ["sh", "-c", "echo ${{{{ run.id | quote }}}} >> {marks}"]
      timeout_seconds: 60
"""


def clean_env() -> dict[str, str]:
    """This environment without Trinity's and Prefect's variables: the config file decides."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TRINITY_", "PREFECT_"))}


def run_up_command(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRINITY, *args], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("prefect", "expected"),
    [
        ("api_replicas: 2\n  messaging: redis://127.0.0.1:6379/3", ["prefect.database_url: "]),
        ("api_replicas: 2\n  database_url: postgresql://db/prefect", ["prefect.messaging: "]),
        ("api_replicas: 3", ["prefect.database_url: ", "prefect.messaging: "]),
        (
            "api_replicas: 2\n  database_url: sqlite+aiosqlite:///p.db\n  messaging: redis://h:6379/1",
            ["prefect.database_url: Value error, SQLite cannot be shared"],
        ),
        ("messaging: http://127.0.0.1:6379", ["prefect.messaging: Value error, 'http://"]),
    ],
)
def test_a_bad_topology_is_one_line_per_problem(tmp_path: Path, prefect: str, expected: list[str]) -> None:
    (tmp_path / "trinity.config.yml").write_text(f"prefect:\n  {prefect}\n")

    up = run_up_command("up", "--state-dir", str(tmp_path / "state"), cwd=tmp_path)

    assert up.returncode == 1
    lines = up.stderr.strip().splitlines()
    assert len(lines) == len(expected), up.stderr
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(f"error: trinity.config.yml: {start}"), line
    assert not (tmp_path / "state" / "up.pid").exists()


def test_workers_must_be_a_positive_count(tmp_path: Path) -> None:
    (tmp_path / "trinity.config.yml").write_text("workers: 0\n")

    up = run_up_command("up", "--state-dir", str(tmp_path / "state"), cwd=tmp_path)

    assert up.returncode == 1
    assert up.stderr.strip().splitlines() == [
        "error: trinity.config.yml: workers: Input should be greater than or equal to 1"
    ]


def require_haproxy() -> str:
    binary = haproxy_binary()
    if binary is None:
        service_missing("Debian's haproxy is not installed (scripts/test installs it)")
    return binary


def test_the_load_balancer_configuration_is_valid_for_haproxy(tmp_path: Path) -> None:
    binary = require_haproxy()
    config = write_config(
        tmp_path / "haproxy.cfg",
        listen_host="127.0.0.1",
        listen_port=free_port(),
        servers=[("127.0.0.1", free_port()), ("127.0.0.1", free_port())],
    )

    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=60)

    assert check.returncode == 0, check.stdout + check.stderr
    text = config.read_text()
    assert "option httpchk GET /api/health" in text
    assert text.count(" check") >= 2


def test_without_topology_keys_the_stack_is_todays(tmp_path: Path) -> None:
    specs = child_specs(StackConfig(state_dir=tmp_path), STACK_ENV)

    assert [(spec.name, spec.kind) for spec in specs] == [
        ("prefect-server", KIND_PREFECT_API),
        ("trinity-api", KIND_TRINITY_API),
        ("trinity-worker", KIND_WORKER),
    ]
    assert "--no-services" not in specs[0].argv
    assert "PREFECT_MESSAGING_BROKER" not in specs[0].env
    assert not (tmp_path / CONFIG_FILE).exists()


def test_the_replicated_stack_puts_the_load_balancer_before_the_api_servers(tmp_path: Path) -> None:
    require_haproxy()
    topology = Topology(api_replicas=3, messaging="redis://127.0.0.1:6379/9", workers=2)
    config = StackConfig(state_dir=tmp_path, prefect_port=4321, topology=topology)

    specs = child_specs(config, STACK_ENV)

    assert [(spec.name, spec.kind) for spec in specs] == [
        ("prefect-api-1", KIND_PREFECT_API),
        ("prefect-api-2", KIND_PREFECT_API),
        ("prefect-api-3", KIND_PREFECT_API),
        ("prefect-services", KIND_PREFECT_SERVICES),
        ("load-balancer", KIND_LOAD_BALANCER),
        ("trinity-api", KIND_TRINITY_API),
        ("trinity-worker-1", KIND_WORKER),
        ("trinity-worker-2", KIND_WORKER),
    ]
    api_servers = specs[:3]
    assert all("--no-services" in spec.argv for spec in api_servers)
    assert len({spec.port for spec in api_servers}) == 3
    assert all(spec.env["PREFECT_MESSAGING_BROKER"] == "prefect_redis.messaging" for spec in specs[:5])
    assert specs[4].port == 4321
    assert specs[4].url == config.prefect_ui_url
    lb_config = (tmp_path / CONFIG_FILE).read_text()
    assert "bind 127.0.0.1:4321" in lb_config
    assert all(f"127.0.0.1:{spec.port} check" in lb_config for spec in api_servers)
    # Each worker has a name of its own in Prefect, so each one's heartbeat is told apart.
    names = [spec.argv[spec.argv.index("--name") + 1] for spec in specs[6:]]
    assert len(set(names)) == 2


# What stack_env adds that the children's specs read.
STACK_ENV = dict(os.environ) | {"PREFECT_API_AUTH_STRING": "trinity:test-auth-string"}


@pytest.fixture
def messaging_redis() -> Iterator[str]:
    """A Redis database of this test's own, empty before and after."""
    url = f"{REDIS_URL}/{REDIS_DB}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError:
        service_missing(f"Redis is not reachable at {REDIS_URL} (scripts/test starts it)")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def prefect_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the Prefect API servers, dropped afterwards."""
    require_postgres()
    url = create_database("trinity_topology")
    yield url
    drop_database(url)


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"{what}: not within {timeout:.0f}s")


def status_parts(state: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [*TRINITY, "status", "--state-dir", str(state), "--json"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    parts: list[dict[str, Any]] = json.loads(result.stdout)["parts"]
    return parts


def auth_string(state: Path) -> str:
    """The closed Prefect's auth string, as ``trinity up`` keeps it with the stack's secrets."""
    secrets: dict[str, str] = json.loads((state / "secrets.json").read_text())
    return secrets["prefect_auth_string"]


async def create_runs(api_url: str, auth: str, deployment: str, keys: list[str]) -> list[str]:
    """Create one run per idempotency key through ``api_url``; a retried request makes no twin."""
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api_url, auth_string=auth) as client:
        found = await client.read_deployment_by_name(deployment)
        ids = []
        for key in keys:
            run = await client.create_flow_run_from_deployment(found.id, idempotency_key=key)
            ids.append(str(run.id))
        return ids


async def final_states(api_url: str, auth: str, ids: list[str]) -> dict[str, str | None]:
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api_url, auth_string=auth) as client:
        states = {}
        for run_id in ids:
            run = await client.read_flow_run(uuid.UUID(run_id))
            states[run_id] = run.state.type.value if run.state else None
        return states


@pytest.mark.slow
# Seven processes start one after another; on a busy two-core machine that takes minutes.
@pytest.mark.timeout(1500)
def test_a_replicated_stack_survives_losing_an_api_server(
    tmp_path: Path, prefect_database: str, messaging_redis: str
) -> None:
    require_haproxy()
    marks = tmp_path / "marks.txt"
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "mark-once.yaml").write_text(WORKFLOW.format(marks=marks))
    (tmp_path / "trinity.config.yml").write_text(
        "prefect:\n"
        f"  database_url: {asyncpg_url(prefect_database)}\n"
        "  api_replicas: 2\n"
        f"  messaging: {messaging_redis}\n"
        "workers: 2\n"
    )
    state, out = tmp_path / "state", tmp_path / "up.out"
    prefect_port, api_port = free_port(), free_port()
    argv = [*TRINITY, "up", "--state-dir", str(state), "--prefect-port", str(prefect_port)]
    argv += ["--api-port", str(api_port), "--worker-processes", "1", "--no-demo"]
    argv += ["--examples", str(tmp_path / "workflows")]
    with out.open("wb") as handle:
        up = subprocess.Popen(
            argv,
            cwd=tmp_path,
            env=clean_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> bool:
            if up.poll() is not None:
                pytest.fail(f"trinity up exited with {up.returncode}:\n{out.read_text()[-3000:]}")
            return "Trinity is up." in out.read_text()

        wait_until(ready, 900, "trinity up ready")
        lb_url = f"http://127.0.0.1:{prefect_port}"
        assert f"Prefect UI    {lb_url}" in out.read_text()

        parts = status_parts(state)
        kinds = sorted(part["kind"] for part in parts)
        assert kinds == sorted(
            [KIND_PREFECT_API] * 2
            + [KIND_PREFECT_SERVICES, KIND_LOAD_BALANCER, KIND_TRINITY_API]
            + [KIND_WORKER] * 2
        )
        assert all(part["healthy"] for part in parts), parts
        assert all(set(part) == {"name", "kind", "pid", "url", "healthy"} for part in parts)
        assert next(p for p in parts if p["kind"] == KIND_LOAD_BALANCER)["url"] == lb_url

        api_url = f"{lb_url}/api"
        deployment = deployment_full_name("mark-once")
        first = asyncio.run(
            create_runs(api_url, auth_string(state), deployment, [f"a{i}" for i in range(RUNS_PER_BATCH)])
        )
        victim = next(p for p in parts if p["kind"] == KIND_PREFECT_API)
        os.kill(victim["pid"], signal.SIGKILL)
        second = asyncio.run(
            create_runs(api_url, auth_string(state), deployment, [f"b{i}" for i in range(RUNS_PER_BATCH)])
        )
        ids = first + second
        assert len(set(ids)) == 2 * RUNS_PER_BATCH

        def all_final() -> dict[str, str | None] | None:
            states = asyncio.run(final_states(api_url, auth_string(state), ids))
            terminal = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
            return states if all(state in terminal for state in states.values()) else None

        states = wait_until(all_final, 300, "every run finished", interval=2.0)
        assert set(states.values()) == {"COMPLETED"}, states
        executed = marks.read_text().split()
        assert sorted(executed) == sorted(ids), "each run must execute exactly once"

        def victim_back() -> dict[str, Any] | None:
            again = next(p for p in status_parts(state) if p["name"] == victim["name"])
            return again if again["healthy"] and again["pid"] != victim["pid"] else None

        wait_until(victim_back, 180, f"{victim['name']} restarted and healthy", interval=2.0)
        assert f"{victim['name']} restarted" in out.read_text()
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
    assert up.returncode == 0, out.read_text()[-3000:]
