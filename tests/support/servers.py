"""Real servers for the tests: a Prefect API server and PostgreSQL databases.

Plain functions, used by the fixtures in ``tests/conftest.py`` and by benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg

DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (the tests read what arrived) and replies in one call."""

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        """Send ``body`` with ``status`` and its content type and length."""
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextlib.contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on a free port of 127.0.0.1 answering with ``handler``; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def pg_admin_url() -> str:
    """The maintenance database URL of the test PostgreSQL (``TRINITY_TEST_PG_ADMIN_URL``)."""
    return os.environ.get("TRINITY_TEST_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL)


def postgres_reachable(url: str | None = None) -> bool:
    """True when the test PostgreSQL accepts connections."""
    try:
        with psycopg.connect(url or pg_admin_url(), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def create_database(prefix: str = "trinity_test") -> str:
    """Create a fresh, uniquely named database; return its ``postgresql://`` URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = pg_admin_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    """Drop a database made by :func:`create_database`, closing its connections first."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def asyncpg_url(url: str) -> str:
    """Turn a ``postgresql://`` URL into the async driver form Prefect's server wants."""
    return "postgresql+asyncpg://" + url.split("://", 1)[1]


@dataclass
class PrefectServer:
    """A ``prefect server start`` child process."""

    api_url: str
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def stop(self) -> None:
        """Stop the server and every process it started."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def prefect_server_env(home: Path, *, database_url: str | None = None) -> dict[str, str]:
    """Environment for a Prefect server (and its clients) living in ``home``."""
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    env.pop("PREFECT_API_URL", None)
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = asyncpg_url(database_url)
    else:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    return env


def start_prefect_server(
    home: Path,
    *,
    database_url: str | None = None,
    timeout: float = 90.0,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> PrefectServer:
    """Start ``prefect server start`` on a loopback port (a free one unless given) and wait until
    it is healthy."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = prefect_server_env(home, database_url=database_url) | (extra_env or {})
    log_path = home / "server.log"
    # The child keeps its own copy of the log descriptor; ours is closed at once.
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api_url = f"http://127.0.0.1:{port}/api"
    server = PrefectServer(api_url=api_url, home=home, process=process, log_path=log_path, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited early:\n{log_path.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return server
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"prefect server not healthy after {timeout}s:\n{log_path.read_text()[-4000:]}")


@contextlib.contextmanager
def running_prefect_server(home: Path, *, database_url: str | None = None) -> Iterator[PrefectServer]:
    """Context manager around :func:`start_prefect_server`."""
    server = start_prefect_server(home, database_url=database_url)
    try:
        yield server
    finally:
        server.stop()
