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
import json
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from flows.worker.tuning import server_environment
from trinity.stack_setup import RUN_REPORT_SCRIPT, StackError, register_in_api, run_step, worker_heartbeat
from trinity.supervisor import (
    ChildSpec,
    StopRequestedError,
    Supervisor,
    SupervisorError,
    http_ok,
    port_in_use,
    reap_orphans,
)

STATUS_FILE = "status.json"
PID_FILE = "up.pid"
SECRETS_FILE = "secrets.json"


class AlreadyRunningError(StackError):
    """A ``trinity up`` already runs for this state folder."""

    def __init__(self, state_dir: Path, pid: int) -> None:
        super().__init__(f"trinity up is already running for {state_dir} (pid {pid})")
        self.pid = pid


@dataclass
class StackConfig:
    """What ``trinity up`` starts and where."""

    state_dir: Path
    host: str = "127.0.0.1"
    prefect_port: int = 4200
    api_port: int = 8000
    prefect_database_url: str | None = None
    trinity_database_url: str | None = None
    pool: str = "trinity"
    worker_processes: int = 2
    examples: list[Path] = field(default_factory=list)
    demo_workflow: str | None = "regional-report"
    demo_params: list[str] = field(default_factory=list)
    demo: bool = True

    @property
    def prefect_api_url(self) -> str:
        return f"http://{self.host}:{self.prefect_port}/api"

    @property
    def prefect_ui_url(self) -> str:
        return f"http://{self.host}:{self.prefect_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}/api/v1"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"


def load_secrets(state_dir: Path) -> dict[str, str]:
    """The stack's JWT secret and demo admin key: made once, then reused (so ``up`` is idempotent)."""
    path = state_dir / SECRETS_FILE
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    data = {"jwt_secret": secrets.token_urlsafe(48), "admin_api_key": "trn_" + secrets.token_urlsafe(32)}
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return data


def stack_env(config: StackConfig, stack_secrets: dict[str, str]) -> dict[str, str]:
    """Environment shared by every child and by the deploy/demo steps."""
    env = dict(os.environ)
    prefect_db = config.prefect_database_url or (
        f"sqlite+aiosqlite:///{config.state_dir / 'prefect' / 'prefect.db'}"
    )
    if prefect_db.startswith(("postgresql://", "postgres://")):
        prefect_db = "postgresql+asyncpg://" + prefect_db.split("://", 1)[1]
    env.update(
        PREFECT_HOME=str(config.state_dir / "prefect"),
        PREFECT_API_URL=config.prefect_api_url,
        PREFECT_UI_URL=config.prefect_ui_url,
        PREFECT_API_DATABASE_CONNECTION_URL=prefect_db,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        TRINITY_DATABASE_URL=config.trinity_database_url or f"sqlite:///{config.state_dir / 'trinity.db'}",
        TRINITY_JWT_SECRET=stack_secrets["jwt_secret"],
        TRINITY_BOOTSTRAP_API_KEY=stack_secrets["admin_api_key"],
        TRINITY_STATE_DIR=str(config.state_dir),
        TRINITY_LOGS_DIR=str(config.state_dir / "LOGS"),
        TRINITY_PREFECT_UI_URL=config.prefect_ui_url,
    )
    return env


def child_specs(config: StackConfig, env: dict[str, str]) -> list[ChildSpec]:
    """The three children of the stack, in start order."""
    trinity = [sys.executable, "-m", "trinity.cli"]
    # Unique to this `trinity up`, so the health check below finds this worker's heartbeat only.
    worker_name = f"trinity-up-{socket.gethostname()}-{os.getpid()}".replace("/", "-").replace("%", "-")
    since = time.time()
    # The UI asks the browser to call this URL; without it the UI assumes port 4200.
    # Plus the server settings that lower its CPU per run (flows/worker/tuning.py has the trade-offs);
    # whatever the operator set in the environment wins.
    prefect_env = (
        {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        | server_environment(env)
        | {"PREFECT_UI_API_URL": config.prefect_api_url}
    )
    return [
        ChildSpec(
            name="prefect-server",
            argv=[
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                config.host,
                "--port",
                str(config.prefect_port),
            ],
            env=prefect_env,
            health=lambda: http_ok(f"{config.prefect_api_url}/health"),
            url=config.prefect_ui_url,
            port=config.prefect_port,
        ),
        ChildSpec(
            name="trinity-api",
            argv=[*trinity, "api", "--host", config.host, "--port", str(config.api_port)],
            env=env,
            health=lambda: http_ok(f"{config.api_url}/health"),
            url=f"{config.api_url}/docs",
            port=config.api_port,
        ),
        ChildSpec(
            name="trinity-worker",
            argv=[
                *trinity,
                "worker",
                "--pool",
                config.pool,
                "--processes",
                str(config.worker_processes),
                "--name",
                worker_name,
            ],
            env=env,
            health=lambda: worker_heartbeat(config.prefect_api_url, config.pool, worker_name, since),
            start_timeout=120.0,
        ),
    ]


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
    other = running_supervisor(config.state_dir)
    if other is not None:
        raise AlreadyRunningError(config.state_dir, other)
    # Before the port check: the orphans of a killed `trinity up` are what would hold the ports.
    for what in clear_stale_state(config.state_dir):
        say(f"stopped {what}, left running by a trinity up that was killed")
    check_ports(config)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    (config.state_dir / PID_FILE).write_text(str(os.getpid()))
    stack_secrets = load_secrets(config.state_dir)
    env = stack_env(config, stack_secrets)
    supervisor = Supervisor(
        state_dir=config.state_dir, log_dir=config.log_dir, stop_requested=stop_requested, report=say
    )
    status_path = config.state_dir / STATUS_FILE
    info: dict[str, object] = {
        "prefect_ui": config.prefect_ui_url,
        "prefect_api": config.prefect_api_url,
        "api_docs": f"{config.api_url}/docs",
        "state_dir": str(config.state_dir),
    }
    setup_log = config.log_dir / "setup.log"

    def supervise() -> None:
        for line in supervisor.check():
            say(line)
        supervisor.write_status(status_path, info)

    def step(argv: list[str], timeout: float) -> str:
        return run_step(argv, env, setup_log, timeout=timeout, stop_requested=stop_requested, tick=supervise)

    try:
        for spec in child_specs(config, env):
            say(f"starting {spec.name} ...")
            child = supervisor.start(spec)
            say(f"{spec.name} is up (pid {child.pid}){' at ' + spec.url if spec.url else ''}")
            supervisor.write_status(status_path, info)
        trinity = [sys.executable, "-m", "trinity.cli"]
        if config.examples:
            say("deploying the examples and the analytics flows ...")
            out = step([*trinity, "deploy", *map(str, config.examples), "--pool", config.pool], 300)
            for line in out.splitlines():
                if line.strip():
                    say(f"  {line.strip()}")
        if config.demo and config.demo_workflow:
            say(f"running the example workflow '{config.demo_workflow}' through the worker ...")
            params = [arg for p in config.demo_params for arg in ("--param", p)]
            try:
                out = step([*trinity, "run", config.demo_workflow, *params], 600)
            except StackError as exc:
                # The stack itself is healthy; a failed demo is reported, not fatal.
                info["demo"] = f"failed: {exc}"
                say(f"  the demo run failed: {exc} (details in {setup_log})")
            else:
                info["demo"] = "completed"
                say(f"  {out.strip().splitlines()[-1] if out.strip() else 'completed'}")
        if config.demo and config.demo_workflow:
            try:
                workflow_id = register_in_api(config, stack_secrets["admin_api_key"])
            except (StackError, httpx.HTTPError) as exc:
                say(f"  registering '{config.demo_workflow}' in the API failed: {exc}")
            else:
                info["demo_workflow_id"] = workflow_id
                say(f"registered '{config.demo_workflow}' in the API as workflow {workflow_id} (active)")
        if config.examples:
            say("running the performance report once, so its artifact is in the Prefect UI ...")
            try:
                out = step([sys.executable, "-c", RUN_REPORT_SCRIPT], 600)
            except StackError as exc:
                say(f"  the report run failed: {exc} (details in {setup_log})")
            else:
                say(f"  {out.strip()}")
        info["ready"] = True
        supervisor.write_status(status_path, info)
        say(ready_banner(config, stack_secrets, str(info.get("demo_workflow_id") or "") or None))
        while not stop_requested():
            supervise()
            time.sleep(1.0)
    except StopRequestedError:
        pass
    except SupervisorError as exc:
        raise StackError(str(exc)) from exc
    finally:
        say("stopping ...")
        supervisor.stop_all()
        with contextlib.suppress(OSError):
            (config.state_dir / PID_FILE).unlink()
        with contextlib.suppress(OSError):
            status_path.unlink()
        say("stopped")


def ready_banner(config: StackConfig, stack_secrets: dict[str, str], workflow_id: str | None = None) -> str:
    """What a person needs to use the running stack."""
    key = stack_secrets["admin_api_key"]
    return "\n".join(
        [
            "",
            "Trinity is up.",
            f"  Prefect UI    {config.prefect_ui_url}",
            f"  API docs      {config.api_url}/docs",
            f"  Demo API key  {key}   (admin; stored in {config.state_dir / SECRETS_FILE})",
            f"  Logs          {config.log_dir}",
            "",
            "Run a workflow three ways:",
            f"  1. UI:     open {config.prefect_ui_url}/deployments, pick one, 'Run' > 'Quick run'",
            f"  2. CLI:    PREFECT_API_URL={config.prefect_api_url} "
            "prefect deployment run 'regional-report/trinity' --param day=2026-11-21",
            f"  3. REST:   curl -X POST -H 'X-API-Key: {key}' -H 'Content-Type: application/json' \\",
            f'               -d \'{{"parameters": {{"day": "2026-11-21"}}}}\' '
            f"{config.api_url}/workflows/{workflow_id or '<id>'}/execute",
            "",
            "Ctrl-C or `trinity down` stops everything.",
        ]
    )


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
