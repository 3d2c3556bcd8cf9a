"""Process supervision for ``trinity up``: start children, watch their health, restart the dead.

Each child runs in its own process group with its output in a log file of the state folder, so a
stop reaches every process it started and nothing is left behind. The supervisor keeps a small
status file that ``trinity status`` and ``trinity down`` read.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HealthCheck = Callable[[], bool]
STOP_TIMEOUT_SECONDS = 20.0
MAX_RESTART_DELAY_SECONDS = 30.0


class SupervisorError(Exception):
    """A child could not be started or never became healthy."""


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str, *, timeout: float = 2.0) -> bool:
    """True when ``url`` answers 200."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class ChildSpec:
    """How to run and check one child process."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    health: HealthCheck
    url: str | None = None
    port: int | None = None
    start_timeout: float = 120.0


@dataclass
class Child:
    """A running child and its history."""

    spec: ChildSpec
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_restart_at: float = 0.0
    last_exit: int | None = None
    healthy: bool = False
    events: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Starts children in order, waits for each to be healthy, restarts any that die."""

    def __init__(self, *, state_dir: Path, log_dir: Path) -> None:
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, spec: ChildSpec) -> Child:
        """Start ``spec`` and block until its health check passes."""
        if spec.port is not None and port_in_use("127.0.0.1", spec.port):
            raise SupervisorError(
                f"port {spec.port} is already in use, so {spec.name} cannot start; "
                f"stop what listens there or choose another port"
            )
        child = Child(spec=spec, log_path=self.log_dir / f"{spec.name}.log")
        self.children.append(child)
        self._spawn(child)
        self._wait_healthy(child)
        return child

    def _spawn(self, child: Child) -> None:
        with child.log_path.open("ab") as log:
            log.write(f"\n--- starting {child.spec.name} at {time.ctime()} ---\n".encode())
            log.flush()
            child.process = subprocess.Popen(
                list(child.spec.argv),
                env=child.spec.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        child.started_at = time.monotonic()
        child.healthy = False

    def _wait_healthy(self, child: Child) -> None:
        deadline = time.monotonic() + child.spec.start_timeout
        while time.monotonic() < deadline:
            if not child.alive():
                tail = _tail(child.log_path)
                raise SupervisorError(
                    f"{child.spec.name} exited with code {child.process and child.process.returncode} "
                    f"while starting; last lines of {child.log_path}:\n{tail}"
                )
            if child.spec.health():
                child.healthy = True
                return
            time.sleep(0.3)
        raise SupervisorError(
            f"{child.spec.name} did not become healthy within {child.spec.start_timeout:.0f}s; "
            f"see {child.log_path}"
        )

    def check(self) -> list[str]:
        """One supervision pass: restart dead children (with backoff); return what happened."""
        happened: list[str] = []
        now = time.monotonic()
        for child in self.children:
            if child.alive():
                if not child.healthy and child.spec.health():
                    child.healthy = True
                    happened.append(f"{child.spec.name} is healthy again")
                continue
            if child.next_restart_at == 0.0:
                child.last_exit = child.process.returncode if child.process else None
                delay = min(MAX_RESTART_DELAY_SECONDS, 2.0**child.restarts)
                child.next_restart_at = now + delay
                happened.append(
                    f"{child.spec.name} exited with code {child.last_exit}; restarting in {delay:.0f}s"
                )
            elif now >= child.next_restart_at:
                child.restarts += 1
                child.next_restart_at = 0.0
                self._spawn(child)
                happened.append(f"{child.spec.name} restarted (pid {child.pid}, restart #{child.restarts})")
        for line in happened:
            for child in self.children:
                if line.startswith(child.spec.name):
                    child.events.append(line)
        return happened

    def stop_all(self) -> None:
        """Stop every child, newest first: SIGTERM to its group, SIGKILL after a grace period."""
        for child in reversed(self.children):
            stop_process_group(child.process)

    def status(self) -> dict[str, object]:
        """A JSON-ready picture of the children."""
        return {
            "supervisor_pid": os.getpid(),
            "updated_at": time.time(),
            "children": [
                {
                    "name": c.spec.name,
                    "pid": c.pid,
                    "alive": c.alive(),
                    "healthy": c.healthy,
                    "restarts": c.restarts,
                    "url": c.spec.url,
                    "log": str(c.log_path),
                }
                for c in self.children
            ],
        }

    def write_status(self, path: Path, extra: dict[str, object] | None = None) -> None:
        """Write :meth:`status` (plus ``extra``) atomically to ``path``."""
        data = self.status() | (extra or {})
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)


def stop_process_group(process: subprocess.Popen[bytes] | None) -> None:
    """Stop a child started with ``start_new_session=True`` and everything it started."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    # Grandchildren that outlived their parent are still in the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
