"""``trinity api --ssl-certfile/--ssl-keyfile``: HTTPS with TLS 1.3 as the minimum, on a
self-signed certificate made here with openssl (as the README shows)."""

from __future__ import annotations

import shutil
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.support import running_api_command
from tests.api.test_cli import REPO, cli_env
from tests.support.servers import free_port
from tests.support.services import service_missing
from tests.support.shell import run_command


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (the README's command)."""
    if shutil.which("openssl") is None:
        service_missing("openssl is not installed (Debian's openssl)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    result = run_command(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        cwd=folder,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return cert, key


@pytest.fixture
def https_api(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``trinity api`` over HTTPS; yields (base URL, the certificate to trust)."""
    cert, key = make_certificate(tmp_path)
    port = free_port()
    log = tmp_path / "api.log"
    args = ["--dev", "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    base = f"https://127.0.0.1:{port}/api/v1"
    env = cli_env(tmp_path, PYTHONPATH=str(REPO))
    trust = ssl.create_default_context(cafile=cert)
    with running_api_command(args, cwd=tmp_path, env=env, output=log, base=base, verify=trust):
        yield base, cert


def client_context(cert: Path, *, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    if maximum is not None:
        context.maximum_version = maximum
    return context


def test_tls_13_is_served_and_12_refused(https_api: tuple[str, Path]) -> None:
    base, cert = https_api
    with httpx.Client(verify=client_context(cert), timeout=10) as client:
        response = client.get(f"{base}/health")
        assert response.status_code == 200
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("ssl_object").version() == "TLSv1.3"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health", verify=client_context(cert, maximum=ssl.TLSVersion.TLSv1_2), timeout=10)
    with pytest.raises(httpx.HTTPError):
        httpx.get(base.replace("https://", "http://") + "/health", timeout=10)  # no plain HTTP


def test_a_certificate_without_its_key_is_one_line(tmp_path: Path) -> None:
    cert, _key = make_certificate(tmp_path)
    result = run_command(
        [sys.executable, "-m", "trinity.cli", "api", "--dev", "--ssl-certfile", str(cert)],
        cwd=tmp_path,
        env=cli_env(tmp_path, PYTHONPATH=str(REPO)),
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ssl_certfile and ssl_keyfile go together" in lines[0]


def test_an_unreadable_key_is_one_line(tmp_path: Path) -> None:
    cert, _key = make_certificate(tmp_path)
    missing = tmp_path / "missing.pem"
    result = run_command(
        [
            sys.executable, "-m", "trinity.cli", "api", "--dev",
            "--ssl-certfile", str(cert), "--ssl-keyfile", str(missing),
        ],
        cwd=tmp_path,
        env=cli_env(tmp_path, PYTHONPATH=str(REPO)),
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: server.ssl_certfile / server.ssl_keyfile: cannot load")
    assert "Traceback" not in result.stderr
