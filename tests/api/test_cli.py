"""``trinity api``: refuses to start without a JWT secret; serves with one (or in dev mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port
from tests.support.shell import run_command

REPO = Path(__file__).resolve().parents[2]


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRINITY_", "JWT_SECRET"))}
    env.update(TRINITY_DATABASE_URL=f"sqlite:///{tmp_path / 'trinity.db'}", **extra)
    return env


def _api_command(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``trinity api ARGS`` run to its end in ``tmp_path``."""
    return run_command(
        [sys.executable, "-m", "trinity.cli", "api", *args],
        cwd=tmp_path,
        env=cli_env(tmp_path, PYTHONPATH=str(REPO)),
        timeout=120,
    )


def test_refuses_to_start_without_a_jwt_secret(tmp_path: Path) -> None:
    result = _api_command(tmp_path, "--port", str(free_port()))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: no JWT secret")
    assert "Traceback" not in result.stderr


def test_bad_config_file_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("server:\n  port: [\n")
    result = _api_command(tmp_path, "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: {config}:")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("mode", ["dev", "secret"])
def test_serves_health_and_openapi(tmp_path: Path, mode: str) -> None:
    port = free_port()
    args = ["--dev"] if mode == "dev" else []
    extra = {"TRINITY_JWT_SECRET": "s" * 48} if mode == "secret" else {}
    log = tmp_path / "api.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "trinity.cli", "api", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=tmp_path,
            env=cli_env(tmp_path, PYTHONPATH=str(REPO), **extra),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None, log.read_text()
        assert health.json()["database"]["status"] == "up"
        document = httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=10).json()
        assert document["openapi"].startswith("3.")
        assert (tmp_path / "trinity.db").exists()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
