"""Process supervision for ``trinity up``: start children, watch their health, restart the dead.

Each child runs in its own process group with its output in a log file of the state folder, so a
stop reaches every process it started and nothing is left behind. The supervisor keeps a small
status file that ``trinity status`` and ``trinity down`` read, and a record of its children's
process groups (``children.json``) so that, should the supervisor itself be killed with SIGKILL,
:func:`reap_orphans` can still find and stop them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# Called with the wall-clock time (``time.time()``) at which the child's current process started,
# so a sign of life is only taken from that process (not from one before a restart).
HealthCheck = Callable[[float], bool]
STOP_TIMEOUT_SECONDS = 20.0
# A child that keeps exiting is restarted after 1 s, 2 s, 4 s ... up to this; one that stayed up
# for STABLE_SECONDS before exiting starts the count again.
MAX_RESTART_DELAY_SECONDS = 30.0
STABLE_SECONDS = 60.0
CHILDREN_FILE = "children.json"
# Every child (and whatever it starts, since environments are inherited) carries this variable with
# the supervisor's token, which tells our processes apart from strangers that reuse their pids.
TOKEN_ENV = "TRINITY_SUPERVISOR_TOKEN"


class SupervisorError(Exception):
    """A child could not be started or never became healthy."""


class StopRequestedError(Exception):
    """A stop was asked for (Ctrl-C, ``trinity down``) while waiting on a child or a step."""


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
    # What part of the stack it is (``prefect-api``, ``worker``, ...: see trinity.topology).
    kind: str = ""


@dataclass
class Child:
    """A running child and its history."""

    spec: ChildSpec
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    started_wall: float = 0.0
    next_restart_at: float = 0.0
    last_exit: int | None = None
    # Exits in a row after less than STABLE_SECONDS up; sets the wait before the next restart.
    crashes: int = 0
    exit_note: str = ""
    healthy: bool = False
    events: list[str] = field(default_factory=list)

    def is_healthy(self) -> bool:
        """The health check, against a sign of life of the current process only."""
        return self.spec.health(self.started_wall)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Starts children in order, waits for each to be healthy, restarts any that die."""

    def __init__(
        self,
        *,
        state_dir: Path,
        log_dir: Path,
        stop_requested: Callable[[], bool] | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.children: list[Child] = []
        self.stop_requested = stop_requested or (lambda: False)
        self.report = report or (lambda line: None)
        self.token = secrets.token_hex(16)
        self.record_path = state_dir / CHILDREN_FILE
        state_dir.mkdir(parents=True, exist_ok=True)
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
                env=child.spec.env | {TOKEN_ENV: self.token},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        child.started_at = time.monotonic()
        child.started_wall = time.time()
        child.healthy = False
        # Written before anything else can go wrong, so even a supervisor killed right now leaves
        # a record that finds this child.
        self._write_record()

    def _write_record(self) -> None:
        record = {
            "supervisor_pid": os.getpid(),
            "token": self.token,
            "children": [
                {"name": c.spec.name, "pid": c.pid, "pgid": c.pid, "argv": list(c.spec.argv)}
                for c in self.children
                if c.pid is not None
            ],
        }
        _write_json(self.record_path, record)

    def _wait_healthy(self, child: Child) -> None:
        deadline = time.monotonic() + child.spec.start_timeout
        while time.monotonic() < deadline:
            if self.stop_requested():
                raise StopRequestedError(f"stop requested while {child.spec.name} was starting")
            # The children started before this one are kept alive meanwhile.
            for line in self.check(skip=child):
                self.report(line)
            if not child.alive():
                tail = _tail(child.log_path)
                raise SupervisorError(
                    f"{child.spec.name} exited with code {child.process and child.process.returncode} "
                    f"while starting; last lines of {child.log_path}:\n{tail}"
                )
            if child.is_healthy():
                child.healthy = True
                return
            time.sleep(0.3)
        raise SupervisorError(
            f"{child.spec.name} did not become healthy within {child.spec.start_timeout:.0f}s; "
            f"see {child.log_path}"
        )

    def check(self, skip: Child | None = None) -> list[str]:
        """One supervision pass: restart dead children (with backoff); return what happened, one
        line per restart.

        ``skip`` is a child still starting, which :meth:`start` watches itself.
        """
        happened: list[str] = []
        now = time.monotonic()
        for child in self.children:
            if child is skip:
                continue
            if child.alive():
                if not child.healthy and child.is_healthy():
                    child.healthy = True
                    happened.append(f"{child.spec.name} is healthy again")
                continue
            if child.next_restart_at == 0.0:
                self._schedule_restart(child, now)
            elif now >= child.next_restart_at:
                waited = restart_delay(child.crashes)
                child.restarts += 1
                child.next_restart_at = 0.0
                self._spawn(child)
                line = (
                    f"{child.spec.name} restarted (pid {child.pid}, restart #{child.restarts}) "
                    f"{waited:g}s after it {child.exit_note}"
                )
                if child.crashes > 1:
                    line += (
                        f"; {child.crashes} quick exits in a row, so the next restart waits "
                        f"{restart_delay(child.crashes + 1):g}s"
                    )
                happened.append(line)
        for line in happened:
            for child in self.children:
                if line.startswith(child.spec.name):
                    child.events.append(line)
        return happened

    def _schedule_restart(self, child: Child, now: float) -> None:
        child.last_exit = child.process.returncode if child.process else None
        up_for = now - child.started_at
        child.crashes = child.crashes + 1 if up_for < STABLE_SECONDS else 1
        child.exit_note = f"exited with code {child.last_exit} after {up_for:.1f}s up"
        child.next_restart_at = now + restart_delay(child.crashes)
        child.healthy = False

    def stop_all(self) -> None:
        """Stop every child, newest first: SIGTERM to its group, SIGKILL after a grace period."""
        for child in reversed(self.children):
            stop_process_group(child.process)
        with contextlib.suppress(OSError):
            self.record_path.unlink()

    def status(self) -> dict[str, object]:
        """A JSON-ready picture of the children."""
        return {
            "supervisor_pid": os.getpid(),
            "updated_at": time.time(),
            "children": [
                {
                    "name": c.spec.name,
                    "kind": c.spec.kind,
                    "pid": c.pid,
                    "pgid": c.pid,
                    "alive": c.alive(),
                    "healthy": c.healthy,
                    "restarts": c.restarts,
                    "restart_in": round(max(0.0, c.next_restart_at - time.monotonic()), 1)
                    if c.next_restart_at
                    else None,
                    "url": c.spec.url,
                    "log": str(c.log_path),
                }
                for c in self.children
            ],
        }

    def write_status(self, path: Path, extra: dict[str, object] | None = None) -> None:
        """Write :meth:`status` (plus ``extra``) atomically to ``path``."""
        _write_json(path, self.status() | (extra or {}))


def restart_delay(crashes: int) -> float:
    """Seconds to wait before restarting a child after ``crashes`` quick exits in a row."""
    return min(MAX_RESTART_DELAY_SECONDS, 2.0 ** max(0, crashes - 1))


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


def reap_orphans(state_dir: Path) -> list[str]:
    """Stop the children a killed supervisor left behind in ``state_dir``; say which.

    Call it only when the supervisor that wrote the record is gone. A recorded process group is
    stopped only when one of its live members still carries the supervisor's token (or, for the
    group leader, the recorded command line), so a pid reused by a stranger is left alone.
    """
    path = state_dir / CHILDREN_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    token = str(record.get("token", ""))
    stopped: list[str] = []
    for entry in record.get("children", []):
        pgid = entry.get("pgid")
        if not isinstance(pgid, int) or pgid <= 1:
            continue
        members = _group_members(pgid)
        argv = [str(arg) for arg in entry.get("argv", [])]
        if any(_is_ours(pid, token, argv if pid == pgid else None) for pid in members):
            _kill_group(pgid)
            stopped.append(f"{entry.get('name')} (process group {pgid})")
    with contextlib.suppress(OSError):
        path.unlink()
    return stopped


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the fields after it do not.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _is_ours(pid: int, token: str, argv: list[str] | None) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if token and f"{TOKEN_ENV}={token}".encode() in environ:
        return True
    return bool(argv) and [part.decode(errors="replace") for part in cmdline if part] == argv


def _kill_group(pgid: int) -> None:
    """SIGTERM a process group that is not our child, then SIGKILL what is left after the grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _write_json(path: Path, data: dict[str, object]) -> None:
    # Readers (`trinity status`, `trinity down`) never see a half-written file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
