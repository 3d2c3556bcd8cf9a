"""Plain helpers for the API tests: settings, a real uvicorn server in a thread, documents."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import sqlalchemy as sa
import uvicorn

from api.app import create_app
from tests.support.processes import running_process
from tests.support.servers import free_port
from trinity.core.settings import Settings
from trinity.core.signing import DEFINITION_KEY_ENV
from trinity.core.urls import normalise_url

JWT_SECRET = "trinity-test-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdef"
ADMIN_KEY = "trn_test-admin-key-0123456789abcdefghijklmnop"
DATA_TABLES = (
    "idempotency_keys",
    "runs",
    "execution_logs",
    "workflows",
    "specifications",
    "analytics_performance",
    "analytics_insights",
    "analytics_failure_families",
    "audit_events",
)


def make_settings(
    database_url: str,
    *,
    state_dir: Path,
    prefect_api_url: str | None = None,
    rate_limit: str | None = "1000000/hour",
    max_body_bytes: int = 1024 * 1024,
    redis_url: str | None = None,
    token_expiry: int = 3600,
    auth_failure_rate_limit: str | None = "1000000/hour",
    token_rate_limit: str | None = "1000000/hour",
    work_pool: str | None = None,
) -> Settings:
    """Settings for a test server: real database, bootstrap admin key, generous rate limits."""
    return Settings.model_validate(
        {
            "server": {"max_body_bytes": max_body_bytes},
            "database": {"url": database_url, "pool_size": 10, "max_overflow": 10, "pool_timeout": 5},
            "redis": {"url": redis_url},
            "security": {
                "jwt_secret": JWT_SECRET,
                "bootstrap_api_key": ADMIN_KEY,
                "rate_limit": rate_limit,
                "token_expiry": token_expiry,
                "auth_failure_rate_limit": auth_failure_rate_limit,
                "token_rate_limit": token_rate_limit,
                # The session's key (tests/conftest.py), so the session's workers run what this signs.
                "definition_key": os.environ.get(DEFINITION_KEY_ENV),
            },
            "prefect": {"api_url": prefect_api_url} | ({"work_pool": work_pool} if work_pool else {}),
            "state_dir": str(state_dir),
        }
    )


@dataclass
class ApiServer:
    """The real application served by uvicorn on a loopback port, in a background thread."""

    settings: Settings
    url: str
    server: uvicorn.Server
    thread: threading.Thread
    clients: list[httpx.Client] = field(default_factory=list)
    _anonymous: httpx.Client | None = None

    @property
    def api(self) -> str:
        return self.url + "/api/v1"

    def client(self, key: str | None = ADMIN_KEY, **kwargs: Any) -> httpx.Client:
        """An HTTP client on /api/v1, authenticated with ``key`` (None: anonymous)."""
        headers = {"X-API-Key": key} if key else {}
        client = httpx.Client(base_url=self.api, headers=headers, timeout=60, **kwargs)
        self.clients.append(client)
        return client

    def anonymous(self) -> httpx.Client:
        """One shared client without credentials (each request sets its own headers)."""
        if self._anonymous is None:
            self._anonymous = self.client(key=None)
        return self._anonymous

    def reset(self) -> None:
        """Empty every data table (keys stay), so each test starts clean."""
        engine = sa.create_engine(normalise_url(self.settings.database_url), poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                for table in DATA_TABLES:
                    conn.execute(sa.text(f"DELETE FROM {table}"))
                conn.execute(sa.text("DELETE FROM api_keys WHERE name != 'bootstrap'"))
        finally:
            engine.dispose()

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_api_server(settings: Settings, *, timeout: float = 60.0) -> ApiServer:
    """Start ``create_app(settings)`` under uvicorn and wait until it serves."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the API server stopped during start-up (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the API server did not start within {timeout}s")
        time.sleep(0.05)
    return ApiServer(settings=settings, url=f"http://127.0.0.1:{port}", server=server, thread=thread)


@contextlib.contextmanager
def running_api_server(settings: Settings) -> Iterator[ApiServer]:
    server = start_api_server(settings)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_api_command(
    args: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    output: Path,
    base: str,
    verify: ssl.SSLContext | bool = True,
) -> Iterator[None]:
    """``trinity api ARGS`` as its own process (stdout and stderr to ``output``), until ``{base}/health``
    answers; stopped afterwards."""
    argv = [sys.executable, "-m", "trinity.cli", "api", *args]
    with running_process(argv, cwd=cwd, env=env, output=output) as process:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, f"trinity api did not start: {output.read_text()}"
            try:
                httpx.get(f"{base}/health", verify=verify, timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield


# --- credentials ----------------------------------------------------------------------------------


def create_key(api: ApiServer, role: str, name: str | None = None) -> tuple[str, str]:
    """A new API key with ``role`` (made by the bootstrap admin); returns (key, key id)."""
    response = api.client().post("/keys", json={"name": name or f"{role}-key", "role": role})
    assert response.status_code == 201, response.text
    body = response.json()
    return str(body["key"]), str(body["id"])


def request_token(api: ApiServer, secret: str | None) -> httpx.Response:
    """``POST /auth/token`` (client credentials) with ``secret`` as the client secret (None: none)."""
    form = {"grant_type": "client_credentials"} | ({"client_secret": secret} if secret is not None else {})
    return httpx.post(f"{api.api}/auth/token", data=form, timeout=30)


def forged(claims: dict[str, object], *, secret: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    """A JWT with ``claims``, signed with ``secret`` (the server's by default)."""
    return jwt.encode(claims, secret, algorithm=algorithm)


def none_token(claims: dict[str, object]) -> str:
    """An unsigned JWT (``alg: none``) with ``claims``."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


# --- documents ------------------------------------------------------------------------------------


def spec_document(
    name: str = "orders",
    version: str = "1.0.0",
    *,
    parameters: dict[str, Any] | None = None,
    description: str = "Nightly order export.",
) -> dict[str, Any]:
    """A valid Specification document."""
    return {
        "kind": "Specification",
        "name": name,
        "version": version,
        "description": description,
        "requirements": [{"id": "R1", "text": "Every order is exported once."}],
        "success_metrics": {"duration_p95_seconds": 60, "success_rate_min": 0.99},
        "parameters": parameters
        if parameters is not None
        else {
            "type": "object",
            "properties": {
                "day": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"},
                "limit": {"type": "integer", "minimum": 1, "default": 10},
            },
            "required": ["day"],
        },
    }


def workflow_document(
    name: str = "orders-export",
    version: str = "1.0.0",
    *,
    spec_name: str = "orders",
    spec_range: str = "^1.0.0",
    schedule: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A valid Workflow document: two no-op tasks, the second after the first."""
    document: dict[str, Any] = {
        "kind": "Workflow",
        "name": name,
        "version": version,
        "spec": {"name": spec_name, "version": spec_range},
        "tasks": [
            {"id": "extract", "uses": "noop", "with": {"output": "${{ params.day }}"}},
            {
                "id": "load",
                "uses": "noop",
                "needs": ["extract"],
                "with": {"output": "${{ tasks.extract.output }}"},
            },
        ],
    }
    if schedule is not None:
        document["schedule"] = schedule
    return document


def store_active_workflow(api: ApiServer, spec: dict[str, Any], workflow: dict[str, Any]) -> dict[str, Any]:
    """Store ``spec`` (once) and ``workflow`` as an active workflow through REST; returns the workflow."""
    client = api.client()
    stored = client.post("/specs", json=spec)
    assert stored.status_code in (201, 409), stored.text
    created = client.post("/workflows", params={"status": "active"}, json=workflow)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body
