"""The access log keeps working for the life of a ``trinity api`` process.

Prefect configures logging when it is imported and again later (Prefect's server app, an
incremental set-up); either used to take uvicorn's loggers over at WARNING, after which no
request, 403s included, was logged. Reproduced on the real process: activate a workflow (it
deploys through a real Prefect server), then make requests and read them in the access log.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.api.support import ADMIN_KEY, JWT_SECRET, running_api_command, spec_document, workflow_document
from tests.support.servers import PrefectServer, free_port
from tests.support.shell import run_command

REPO = Path(__file__).resolve().parents[2]


def _config(folder: Path, log: Path, prefect: PrefectServer, port: int, handler: str) -> Path:
    config = folder / "trinity.config.yml"
    logging = {"level": "INFO", "format": "text", "handlers": [handler]}
    if handler == "file":
        logging["file"] = str(log)
    settings = {
        "server": {"host": "127.0.0.1", "port": port},
        "database": {"url": f"sqlite:///{folder / 'trinity.db'}"},
        "logging": logging,
        "security": {
            "jwt_secret": JWT_SECRET,
            "bootstrap_api_key": ADMIN_KEY,
            # The session's key (tests/conftest.py): the environment is not passed on here.
            "definition_key": os.environ["TRINITY_DEFINITION_KEY"],
        },
        "prefect": {"api_url": prefect.api_url},
        "state_dir": str(folder / "state"),
    }
    config.write_text(yaml.safe_dump(settings))
    return config


@pytest.fixture(params=["file", "console"])
def api_process(
    request: pytest.FixtureRequest, tmp_path: Path, prefect_sqlite_server: PrefectServer
) -> Iterator[tuple[str, Path]]:
    """``trinity api`` logging to a file, or to the console as under ``trinity up``; yields
    (base URL, the file its log lands in)."""
    port = free_port()
    log = tmp_path / ("api.log" if request.param == "file" else "output.txt")
    config = _config(tmp_path, log, prefect_sqlite_server, port, request.param)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRINITY_", "JWT_SECRET", "PREFECT_API"))}
    env["PYTHONPATH"] = str(REPO)
    base = f"http://127.0.0.1:{port}/api/v1"
    args = ["--config", str(config)]
    with running_api_command(args, cwd=tmp_path, env=env, output=tmp_path / "output.txt", base=base):
        yield base, log


def _access_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "uvicorn.access" in line]


def _wait_for(log: Path, needle: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(needle in line for line in _access_lines(log)):
            return True
        time.sleep(0.1)
    return False


def test_requests_are_logged_after_a_workflow_is_activated(api_process: tuple[str, Path]) -> None:
    base, log = api_process
    admin = httpx.Client(base_url=base, headers={"X-API-Key": ADMIN_KEY}, timeout=60)
    with admin:
        assert admin.post("/specs", json=spec_document("logged")).status_code == 201
        document = workflow_document("access-logged", spec_name="logged")
        activated = admin.post("/workflows", params={"status": "active"}, json=document)
        assert activated.status_code == 201, activated.text
        viewer_key = admin.post("/keys", json={"name": "viewer", "role": "viewer"}).json()["key"]
        # After the activation: a read, a 403 and a 401, each with a path of its own.
        assert admin.get("/workflows", params={"name": "after-activation"}).status_code == 200
        viewer = {"X-API-Key": viewer_key}
        forbidden = httpx.get(f"{base}/keys", headers=viewer, params={"n": "x403"}, timeout=30)
        assert forbidden.status_code == 403
        unauthorized = httpx.get(f"{base}/specs", params={"n": "x401"}, timeout=30)
        assert unauthorized.status_code == 401
        assert admin.get("/workflows", params={"name": "last-one"}).status_code == 200

    assert _wait_for(log, "/api/v1/workflows?name=last-one"), log.read_text()[-3000:]
    lines = _access_lines(log)
    assert any('"POST /api/v1/workflows?status=active HTTP/1.1" 201' in line for line in lines)
    assert any('/api/v1/workflows?name=after-activation HTTP/1.1" 200' in line for line in lines)
    assert any('/api/v1/keys?n=x403 HTTP/1.1" 403' in line for line in lines)
    assert any('/api/v1/specs?n=x401 HTTP/1.1" 401' in line for line in lines)


RESETS = """
import logging, sys
from api.logs import configure_logging
from prefect.logging import configuration
from trinity.core.settings import LoggingSettings

configure_logging(LoggingSettings(handlers=["file"], file=sys.argv[1]))
logging.getLogger("uvicorn.access").info("before any reset")
configuration.setup_logging(incremental=False)  # what a fresh dictConfig does to uvicorn's loggers
logging.getLogger("uvicorn.access").info("after a full reset")
configuration.setup_logging()  # an incremental one: Prefect's server app, a remote context
logging.getLogger("uvicorn.access").info("after an incremental one")
configuration.ensure_logging_setup()
logging.getLogger("uvicorn.error").info("errors too")
logging.getLogger("trinity.api").info("and Trinity's own")
"""


def test_prefect_setting_logging_up_again_keeps_the_access_log(tmp_path: Path) -> None:
    """The mechanism: Prefect's ``setup_logging``, however it is called later, resets the
    ``uvicorn`` loggers; the API's logging is applied again after it."""
    log = tmp_path / "api.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRINITY_")}
    env["PYTHONPATH"] = str(REPO)
    result = run_command([sys.executable, "-c", RESETS, str(log)], cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    text = log.read_text()
    for message in ("before any reset", "after a full reset", "after an incremental one"):
        assert f"INFO uvicorn.access: {message}" in text, text
    assert "INFO uvicorn.error: errors too" in text
    assert "INFO trinity.api: and Trinity's own" in text
