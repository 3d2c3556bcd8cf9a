"""``trinity up``: the whole system on one machine, supervised.

Children, started in order and each waited on until healthy:

1. a Prefect server (SQLite in the state folder, or PostgreSQL with ``--database-url``);
2. the Trinity API (``trinity api``);
3. a worker for Trinity's work pool (``trinity worker``).

Then the examples and the analytics flows are deployed, one example runs to completion, and the
supervisor keeps everything alive until Ctrl-C or ``trinity down``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from trinity.stack_config import TRINITY_CLI, StackConfig, child_specs, load_secrets, ready_banner, stack_env
from trinity.stack_setup import StackError, register_in_api, run_step
from trinity.supervisor import StopRequestedError, Supervisor, SupervisorError, port_in_use, reap_orphans

STATUS_FILE = "status.json"
PID_FILE = "up.pid"
# Held (flock) by the one `trinity up` of a state folder for as long as it runs; the kernel drops
# it when that process dies, however it dies.
LOCK_FILE = "up.lock"


class AlreadyRunningError(StackError):
    """A ``trinity up`` already runs for this state folder."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        super().__init__(f"trinity up is already running for {state_dir} (pid {pid or 'unknown'})")
        self.pid = pid
        # Still starting (no status yet): the race of two started at once, lost by this one.
        self.starting = not (state_dir / STATUS_FILE).exists()


class StackLock:
    """The lock that lets one ``trinity up`` run per state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write this process's pid in it; raise :class:`AlreadyRunningError`
        (naming the holder) when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise AlreadyRunningError(self.path.parent, int(holder) if holder.isdigit() else None) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def running_supervisor(state_dir: Path) -> int | None:
    """The pid of a live ``trinity up`` for this state folder, if any."""
    path = state_dir / PID_FILE
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def check_ports(config: StackConfig) -> None:
    """Refuse to start when a port the stack needs is taken, naming the port and its user."""
    for name, port in (("Prefect server", config.prefect_port), ("Trinity API", config.api_port)):
        if port_in_use(config.host, port):
            raise StackError(
                f"port {port} on {config.host} is already in use, so the {name} cannot start; "
                f"stop what listens there or pass --{'prefect' if 'Prefect' in name else 'api'}-port"
            )


def clear_stale_state(state_dir: Path) -> list[str]:
    """Clean up after a ``trinity up`` that was killed without stopping: stop its orphaned
    children and remove its pid and status files. Return what was stopped.

    Only for when :func:`running_supervisor` finds none.
    """
    stopped = reap_orphans(state_dir)
    for name in (PID_FILE, STATUS_FILE):
        with contextlib.suppress(OSError):
            (state_dir / name).unlink()
    return stopped


def bring_up(config: StackConfig, *, say: Callable[[str], None], stop_requested: Callable[[], bool]) -> None:
    """Start the stack, set it up, and supervise it until ``stop_requested()``.

    Raises :class:`AlreadyRunningError` when a ``trinity up`` already runs for the state folder. A stop
    requested while starting or setting up stops everything and returns normally.
    """
    lock = StackLock(config.state_dir)
    lock.acquire()
    try:
        preflight(config, say)
        (config.state_dir / PID_FILE).write_text(str(os.getpid()))
        stack = RunningStack(config, say=say, stop_requested=stop_requested)
        try:
            stack.start_children()
            stack.set_up()
            stack.supervise_until_stopped()
        except StopRequestedError:
            pass
        except SupervisorError as exc:
            raise StackError(str(exc)) from exc
        finally:
            stack.tear_down()
    finally:
        lock.release()


def preflight(config: StackConfig, say: Callable[[str], None]) -> None:
    """Refuse a second ``trinity up`` for the state folder; stop what a killed one left; check ports."""
    other = running_supervisor(config.state_dir)
    if other is not None:
        raise AlreadyRunningError(config.state_dir, other)
    # Before the port check: the orphans of a killed `trinity up` are what would hold the ports.
    for what in clear_stale_state(config.state_dir):
        say(f"stopped {what}, left running by a trinity up that was killed")
    check_ports(config)


class RunningStack:
    """One ``trinity up`` past its pre-flight: its children, its set-up steps and its status file."""

    def __init__(
        self, config: StackConfig, *, say: Callable[[str], None], stop_requested: Callable[[], bool]
    ) -> None:
        self.config = config
        self.say = say
        self.stop_requested = stop_requested
        self.secrets = load_secrets(config.state_dir)
        self.env = stack_env(config, self.secrets)
        self.supervisor = Supervisor(
            state_dir=config.state_dir, log_dir=config.log_dir, stop_requested=stop_requested, report=say
        )
        self.status_path = config.state_dir / STATUS_FILE
        self.setup_log = config.log_dir / "setup.log"
        self.info: dict[str, object] = {
            "prefect_ui": config.prefect_ui_url,
            "prefect_api": config.prefect_api_url,
            "api_docs": f"{config.api_url}/docs",
            "state_dir": str(config.state_dir),
        }

    def supervise(self) -> None:
        """One supervision pass: restart what died, say so, and refresh the status file."""
        for line in self.supervisor.check():
            self.say(line)
        self.supervisor.write_status(self.status_path, self.info)

    def step(self, argv: list[str], timeout: float) -> str:
        """Run one set-up command, supervising the children meanwhile; return its output."""
        return run_step(
            argv,
            self.env,
            self.setup_log,
            timeout=timeout,
            stop_requested=self.stop_requested,
            tick=self.supervise,
        )

    def start_children(self) -> None:
        """Start the Prefect server, the API and the worker, in order, each once the previous is healthy."""
        for spec in child_specs(self.config, self.env):
            self.say(f"starting {spec.name} ...")
            child = self.supervisor.start(spec)
            self.say(f"{spec.name} is up (pid {child.pid}){' at ' + spec.url if spec.url else ''}")
            self.supervisor.write_status(self.status_path, self.info)

    def set_up(self) -> None:
        """Deploy the examples, run and register the demo, run the report once; then say it is ready."""
        demo = self.config.demo and bool(self.config.demo_workflow)
        if self.config.examples:
            self.deploy_examples()
        if demo:
            self.run_demo()
            self.register_demo()
        if self.config.examples:
            self.run_first_report()
        self.info["ready"] = True
        self.supervisor.write_status(self.status_path, self.info)
        workflow_id = str(self.info.get("demo_workflow_id") or "") or None
        self.say(ready_banner(self.config, self.secrets, workflow_id))

    def deploy_examples(self) -> None:
        """``trinity deploy`` the examples (and the analytics flows) on the stack's pool."""
        self.say("deploying the examples and the analytics flows ...")
        examples = [str(path) for path in self.config.examples]
        out = self.step([*TRINITY_CLI, "deploy", *examples, "--pool", self.config.pool], 300)
        for line in out.splitlines():
            if line.strip():
                self.say(f"  {line.strip()}")

    def run_demo(self) -> None:
        """``trinity run`` the demo workflow through the worker; a failure is reported, not fatal."""
        self.say(f"running the example workflow '{self.config.demo_workflow}' through the worker ...")
        params = [arg for p in self.config.demo_params for arg in ("--param", p)]
        try:
            out = self.step([*TRINITY_CLI, "run", str(self.config.demo_workflow), *params], 600)
        except StackError as exc:
            # The stack itself is healthy; a failed demo is reported, not fatal.
            self.info["demo"] = f"failed: {exc}"
            self.say(f"  the demo run failed: {exc} (details in {self.setup_log})")
        else:
            self.info["demo"] = "completed"
            self.say(f"  {out.strip().splitlines()[-1] if out.strip() else 'completed'}")

    def register_demo(self) -> None:
        """Store the demo workflow in the API and activate it, so the REST example works."""
        try:
            workflow_id = register_in_api(
                api_url=self.config.api_url,
                api_key=self.secrets["admin_api_key"],
                examples=self.config.examples,
                workflow_name=str(self.config.demo_workflow),
            )
        except (StackError, httpx.HTTPError) as exc:
            self.say(f"  registering '{self.config.demo_workflow}' in the API failed: {exc}")
        else:
            self.info["demo_workflow_id"] = workflow_id
            self.say(
                f"registered '{self.config.demo_workflow}' in the API as workflow {workflow_id} (active)"
            )

    def run_first_report(self) -> None:
        """Run the performance report once, so its artifact is in the Prefect UI."""
        self.say("running the performance report once, so its artifact is in the Prefect UI ...")
        try:
            out = self.step([sys.executable, "-m", "trinity.first_report"], 600)
        except StackError as exc:
            self.say(f"  the report run failed: {exc} (details in {self.setup_log})")
        else:
            self.say(f"  {out.strip()}")

    def supervise_until_stopped(self) -> None:
        """Keep the children alive until a stop is requested."""
        while not self.stop_requested():
            self.supervise()
            time.sleep(1.0)

    def tear_down(self) -> None:
        """Stop every child and remove the pid and status files."""
        self.say("stopping ...")
        self.supervisor.stop_all()
        for path in (self.config.state_dir / PID_FILE, self.status_path):
            with contextlib.suppress(OSError):
                path.unlink()
        self.say("stopped")


def bring_down(state_dir: Path, *, timeout: float = 60.0) -> list[str]:
    """Stop a running ``trinity up``, or the children a killed one left behind; say what stopped.

    An empty list means nothing ran.
    """
    pid = running_supervisor(state_dir)
    if pid is None:
        return [
            f"{what}, left running by a trinity up that was killed" for what in clear_stale_state(state_dir)
        ]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_supervisor(state_dir) is not None:
        if time.monotonic() >= deadline:
            raise StackError(f"trinity up (pid {pid}) did not stop within {timeout:.0f}s")
        time.sleep(0.3)
    # Normally a no-op; it matters when the supervisor died while stopping.
    return [f"trinity up (pid {pid})", *clear_stale_state(state_dir)]


def read_status(state_dir: Path) -> dict[str, object] | None:
    """The status a running ``trinity up`` last wrote, or None when none runs."""
    pid = running_supervisor(state_dir)
    if pid is None:
        return None
    try:
        data: dict[str, object] = json.loads((state_dir / STATUS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        # Still starting its first child.
        return {"supervisor_pid": pid, "children": []}
    return data
