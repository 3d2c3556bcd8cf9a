"""The processes the soak hurts, and the faults it injects into them (see ``chaos_soak.py``).

A throwaway PostgreSQL cluster holds Prefect's database and Trinity's; a Prefect server, the Trinity
API and two ``trinity worker``s run on it, each in a session of its own so that a fault reaches the
whole process tree, and each can be started again on the same port or under the same name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Workflows are activated, and stored definitions run, only with a definition key: one for this run.
os.environ.setdefault("TRINITY_DEFINITION_KEY", secrets.token_urlsafe(32))

from flows.worker.tuning import server_environment  # noqa: E402
from tests.support.postgres import ThrowawayPostgres  # noqa: E402
from tests.support.servers import PrefectServer, free_port, start_prefect_server  # noqa: E402

TRINITY = str(REPO / ".venv" / "bin" / "trinity")
JWT_SECRET = "soak-secret-" + "0123456789" * 4
ADMIN_KEY = "trn_soak-admin-key-0123456789abcdefghijklmn"
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 20


@dataclass
class Child:
    """A restartable process (and its tree) playing one role."""

    role: str
    start_fn: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    # Exit codes of the exits the supervisor restarted it after (not those a fault caused).
    exits: list[int | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self.process = self.start_fn()

    def tree(self) -> list[psutil.Process]:
        if self.process is None or self.process.poll() is not None:
            return []
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        return []

    def rss(self) -> int:
        total = 0
        for process in self.tree():
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total

    def signal_group(self, signum: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        for process in self.tree():
            with contextlib.suppress(psutil.Error):
                process.kill()
        if self.process is not None:
            self.process.wait(timeout=30)

    def restart(self) -> None:
        self.start()

    def revive_if_exited(self) -> bool:
        """Start the process again if it exited on its own, as ``trinity up`` does; True if so."""
        with self.lock:
            if self.process is None or self.process.poll() is None:
                return False
            self.exits.append(self.process.returncode)
            self.start()
            return True

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=GRACE_SECONDS + 30)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Stack:
    """Everything the soak runs, on this machine."""

    folder: Path
    postgres: ThrowawayPostgres
    prefect: PrefectServer
    api_port: int
    pool: str
    api: Child
    workers: list[Child]
    trinity_database: str

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1"

    def children(self) -> list[Child]:
        return [self.api, *self.workers]

    def prefect_rss(self) -> int:
        total = 0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.prefect.process.pid)
            for process in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += process.memory_info().rss
        return total

    def stop(self) -> None:
        for child in self.children():
            child.stop()
        self.prefect.stop()


def _environment(stack_folder: Path, prefect_api: str, trinity_database: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    env.update(
        PREFECT_API_URL=prefect_api,
        PREFECT_HOME=str(stack_folder / "client-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        TRINITY_DATABASE_URL=trinity_database,
        TRINITY_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
        TRINITY_STATE_DIR=str(stack_folder / "state"),
        TRINITY_CONFIG=str(stack_folder / "trinity.config.yml"),
    )
    return env


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def start_stack(folder: Path, postgres: ThrowawayPostgres, *, pool: str, workers: int = 2) -> Stack:
    """Start Prefect, the API and the workers on ``postgres``; return once the API answers."""
    prefect = start_prefect_server(
        folder / "prefect", database_url=postgres.create_database("prefect"), extra_env=server_environment()
    )
    trinity_database = postgres.create_database("trinity")
    api_port = free_port()
    (folder / "trinity.config.yml").write_text(
        yaml.safe_dump(
            {
                "database": {"url": trinity_database},
                "security": {"jwt_secret": JWT_SECRET, "bootstrap_api_key": ADMIN_KEY, "rate_limit": None},
                "prefect": {"api_url": prefect.api_url, "work_pool": pool},
                "state_dir": str(folder / "state"),
                "logging": {"level": "WARNING"},
            }
        )
    )
    env = _environment(folder, prefect.api_url, trinity_database)
    api = Child("api", lambda: _spawn([TRINITY, "api", "--port", str(api_port)], env, folder / "api.log"))
    worker_children = []
    for index in range(workers):
        name = f"soak-{index}"
        argv = [TRINITY, "worker", "--pool", pool, "--name", name, "--processes", "1", "--concurrency", "8",
                "--grace-seconds", str(GRACE_SECONDS)]  # fmt: skip
        log = folder / f"{name}.log"
        worker_children.append(Child(name, lambda argv=argv, log=log: _spawn(argv, env, log)))
    stack = Stack(folder, postgres, prefect, api_port, pool, api, worker_children, trinity_database)
    for child in stack.children():
        child.start()
    wait_for_api(stack, timeout=120)
    return stack


def supervise(stack: Stack, stop: threading.Event) -> None:
    """Restart the API and workers when they exit on their own (``trinity up``'s supervisor does;
    e.g. an API starting while PostgreSQL is away exits), every second until ``stop``."""
    while not stop.wait(1):
        for child in stack.children():
            child.revive_if_exited()


def wait_for_api(stack: Stack, *, timeout: float) -> float:
    """Seconds until the API answers its health check (raises after ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{stack.api_url}/health", timeout=2).status_code == 200:
                return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"the API did not answer within {timeout:.0f}s")


def restart_prefect(stack: Stack) -> None:
    """SIGKILL the Prefect server's tree and start it again on the same port and database."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(stack.prefect.process.pid, signal.SIGKILL)
    stack.prefect.process.wait(timeout=30)
    time.sleep(2)
    port = int(stack.prefect.api_url.rsplit(":", 1)[1].split("/", 1)[0])
    url = stack.prefect.env["PREFECT_API_DATABASE_CONNECTION_URL"]
    again = start_prefect_server(
        stack.prefect.home,
        database_url="postgresql://" + url.split("://", 1)[1],
        port=port,
        extra_env=server_environment(),
    )
    stack.prefect.process = again.process


# -- faults: each returns a one-line description of what was done ----------------------------


def worker_sigkill(stack: Stack, worker: Child) -> str:
    with worker.lock:
        worker.kill()
        time.sleep(3)
        worker.restart()
    return f"SIGKILL to {worker.role} and its executors; started again 3 s later"


def worker_sigterm(stack: Stack, worker: Child) -> str:
    with worker.lock:
        worker.signal_group(signal.SIGTERM)
        assert worker.process is not None
        worker.process.wait(timeout=GRACE_SECONDS + 60)
        worker.restart()
    return f"SIGTERM to {worker.role}'s process group (grace {GRACE_SECONDS} s); started again"


def worker_sigstop(stack: Stack, worker: Child) -> str:
    frozen = worker.tree()
    for process in frozen:
        with contextlib.suppress(psutil.Error):
            process.suspend()
    seconds = 2.5 * HEARTBEAT_SECONDS
    time.sleep(seconds)
    for process in frozen:
        with contextlib.suppress(psutil.Error):
            process.resume()
    return f"SIGSTOP to {worker.role}'s tree for {seconds:g} s (2.5 heartbeat intervals), then SIGCONT"


def api_sigkill(stack: Stack, worker: Child) -> str:
    with stack.api.lock:
        stack.api.kill()
        stack.api.restart()
    return "SIGKILL to the API; started again at once"


def prefect_restart(stack: Stack, worker: Child) -> str:
    restart_prefect(stack)
    return "SIGKILL to the Prefect server; started again on the same port 2 s later"


def postgres_restart(stack: Stack, worker: Child) -> str:
    stack.postgres.stop()
    time.sleep(2)
    stack.postgres.start()
    return "PostgreSQL (Trinity's and Prefect's databases) stopped, started again 2 s later"


FAULTS: dict[str, Callable[[Stack, Child], str]] = {
    "worker SIGKILL": worker_sigkill,
    "worker SIGTERM": worker_sigterm,
    "worker SIGSTOP": worker_sigstop,
    "API SIGKILL": api_sigkill,
    "Prefect server restart": prefect_restart,
    "PostgreSQL restart": postgres_restart,
}
