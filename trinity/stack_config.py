"""What ``trinity up`` runs: its configuration, secrets, environment and the specs of its children.

Pure descriptions (plus the secrets file, made once): :mod:`trinity.stack` starts and stops them.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from flows.worker.tuning import server_environment
from trinity.banner import command_lines
from trinity.stack_setup import worker_heartbeat
from trinity.supervisor import ChildSpec, http_ok
from trinity.topology import (
    KIND_PREFECT_API,
    KIND_TRINITY_API,
    KIND_WORKER,
    Topology,
    messaging_environment,
    replicated_prefect_specs,
    worker_names,
)

TRINITY_CLI = [sys.executable, "-m", "trinity.cli"]
SECRETS_FILE = "secrets.json"


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
    topology: Topology = field(default_factory=Topology)

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
    """The stack's JWT secret, demo admin key, Prefect API auth string and definition key: made
    once, then reused (so ``up`` is idempotent); one missing from an older file is added."""
    path = state_dir / SECRETS_FILE
    data: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    made = {
        "jwt_secret": ("", 48),
        "admin_api_key": ("trn_", 32),
        # user:password, the form Prefect's documentation gives for it.
        "prefect_auth_string": ("trinity:", 32),
        "definition_key": ("", 48),
    }
    missing = {
        name: prefix + secrets.token_urlsafe(size)
        for name, (prefix, size) in made.items()
        if not data.get(name)
    }
    if not missing:
        return data
    data |= missing
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
        PREFECT_API_AUTH_STRING=stack_secrets["prefect_auth_string"],
        TRINITY_DEFINITION_KEY=stack_secrets["definition_key"],
        TRINITY_STATE_DIR=str(config.state_dir),
        TRINITY_LOGS_DIR=str(config.state_dir / "LOGS"),
        TRINITY_PREFECT_UI_URL=config.prefect_ui_url,
    )
    return env


def child_specs(config: StackConfig, env: dict[str, str]) -> list[ChildSpec]:
    """The children of the stack, in start order: Prefect (:mod:`trinity.topology`), the API, the workers."""
    # Unique to this `trinity up`, so the health check below finds this worker's heartbeat only;
    # the supervisor passes each worker process's start time, so a heartbeat of the process before
    # a restart does not make the new one healthy.
    worker_name = f"trinity-up-{socket.gethostname()}-{os.getpid()}".replace("/", "-").replace("%", "-")
    # The UI asks the browser to call this URL; without it the UI assumes port 4200.
    # Plus the server settings that lower its CPU per run (flows/worker/tuning.py has the trade-offs);
    # whatever the operator set in the environment wins.
    prefect_env = (
        {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        | server_environment(env)
        | {"PREFECT_UI_API_URL": config.prefect_api_url}
        | messaging_environment(config.topology.messaging)
        # Closed: every request but /health needs the auth string, which every child passes.
        | {"PREFECT_SERVER_API_AUTH_STRING": env["PREFECT_API_AUTH_STRING"]}
    )
    prefect = [
        ChildSpec(
            name="prefect-server",
            kind=KIND_PREFECT_API,
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
            health=lambda since: http_ok(f"{config.prefect_api_url}/health"),
            url=config.prefect_ui_url,
            port=config.prefect_port,
        )
    ]
    if config.topology.replicated:
        prefect = replicated_prefect_specs(config, prefect_env)
    return [
        *prefect,
        ChildSpec(
            name="trinity-api",
            kind=KIND_TRINITY_API,
            argv=[*TRINITY_CLI, "api", "--host", config.host, "--port", str(config.api_port)],
            env=env,
            health=lambda since: http_ok(f"{config.api_url}/health"),
            url=f"{config.api_url}/docs",
            port=config.api_port,
        ),
        *(
            worker_spec(config, env, child, name)
            for child, name in worker_names(config.topology, worker_name)
        ),
    ]


def worker_spec(config: StackConfig, env: dict[str, str], child: str, worker_name: str) -> ChildSpec:
    """One ``trinity worker`` of the stack, healthy once Prefect has its heartbeat."""
    return ChildSpec(
        name=child,
        kind=KIND_WORKER,
        argv=[
            *TRINITY_CLI,
            "worker",
            "--pool",
            config.pool,
            "--processes",
            str(config.worker_processes),
            "--name",
            worker_name,
        ],
        env=env,
        health=lambda since: worker_heartbeat(
            config.prefect_api_url,
            config.pool,
            worker_name,
            since,
            auth_string=env["PREFECT_API_AUTH_STRING"],
        ),
        start_timeout=120.0,
    )


def ready_banner(config: StackConfig, stack_secrets: dict[str, str], workflow_id: str | None = None) -> str:
    """What a person needs to use the running stack."""
    key = stack_secrets["admin_api_key"]
    demo = config.demo_workflow or "regional-report"
    return "\n".join(
        [
            "",
            "Trinity is up.",
            f"  Prefect UI    {config.prefect_ui_url}",
            f"  API docs      {config.api_url}/docs",
            f"  Demo API key  {key}   (admin; stored in {config.state_dir / SECRETS_FILE})",
            f"  Prefect login {stack_secrets['prefect_auth_string']}   (the Prefect UI and CLI need it)",
            f"  Logs          {config.log_dir}",
            "",
            f"Run '{demo}' in the Prefect UI: open {config.prefect_ui_url}/deployments, pick it, "
            "'Run' > 'Quick run'. Or, from any shell:",
            *command_lines(config, stack_secrets, workflow_id),
        ]
    )
