"""SSRF through ``http`` tasks, reproduced as found and refused: real HTTP servers on loopback.

The policy is read from a real ``trinity.config.yml`` (``TRINITY_CONFIG``), as a worker reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flows.conftest import anyio_backend, fresh_events_worker
from tests.flows.factories import run_workflow, specification, workflow
from tests.support.servers import QuietHandler, serve_http

__all__ = ["anyio_backend", "fresh_events_worker"]
pytestmark = pytest.mark.anyio

SECRET_URL = "postgresql://app:s3cret-pw@db.internal:5432/orders"
hits: dict[str, int] = {}


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        hits[self.path] = hits.get(self.path, 0) + 1
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("location", "http://" + self.path.removeprefix("/to/"))
            self.send_header("content-length", "0")
            self.end_headers()
        elif self.path == "/broken":
            body = f"connection to {SECRET_URL} failed; " + "x" * 1000
            self.reply(500, "text/plain", body.encode())
        else:
            self.reply(200, "application/json", b'{"ok": true}')


@pytest.fixture
def servers() -> Iterator[tuple[str, str]]:
    hits.clear()
    with serve_http(_Handler) as outer, serve_http(_Handler) as inner:
        yield outer, inner


def configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "trinity.config.yml"
    path.write_text(text)
    monkeypatch.setenv("TRINITY_CONFIG", str(path))
    monkeypatch.delenv("TRINITY_DATABASE_URL", raising=False)


def fetch(url_expression: str = "${{ params.url }}") -> tuple[object, object]:
    wf = workflow([{"id": "fetch", "uses": "http", "with": {"url": url_expression}}])
    spec = specification({"type": "object", "properties": {"url": {"type": "string"}}})
    return wf, spec


async def test_a_redirect_to_a_denied_address_is_not_followed(
    prefect_api: object, servers: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer, inner = servers
    inner_hostport = inner.removeprefix("http://")
    configure(tmp_path, monkeypatch, f"security:\n  http:\n    deny: ['{inner_hostport}']\n")
    wf, spec = fetch()

    state = await run_workflow(wf, spec, url=f"{outer}/to/{inner_hostport}/secret")  # type: ignore[arg-type]

    assert state.is_failed()
    assert f"denied by the security.http rule '{inner_hostport}'" in str(state.message)
    assert hits == {f"/to/{inner_hostport}/secret": 1}  # the inner server was never reached


async def test_a_redirect_to_the_metadata_address_is_refused(
    prefect_api: object, servers: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer, _ = servers
    configure(tmp_path, monkeypatch, "{}\n")
    wf, spec = fetch()

    state = await run_workflow(wf, spec, url=f"{outer}/to/169.254.169.254/latest/meta-data/")  # type: ignore[arg-type]

    assert state.is_failed()
    message = str(state.message)
    assert (
        "169.254.169.254 port 80 is denied by the security.http rule '169.254.0.0/16' (link-local)" in message
    )


async def test_a_parameter_url_at_the_database_port_is_refused(
    prefect_api: object, servers: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(tmp_path, monkeypatch, "database:\n  url: postgresql://postgres@127.0.0.1:5432/trinity\n")
    wf, spec = fetch()

    for target in ("http://127.0.0.1:5432/", "http://localhost:5432/", "http://127.0.0.2:5432/"):
        state = await run_workflow(wf, spec, url=target)  # type: ignore[arg-type]
        assert state.is_failed(), target
        assert "denied by the security.http rule '127.0.0.1:5432' (Trinity's database)" in str(state.message)


async def test_allowed_requests_still_follow_redirects(
    prefect_api: object, servers: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer, inner = servers
    inner_hostport = inner.removeprefix("http://")
    configure(
        tmp_path,
        monkeypatch,
        f"security:\n  http:\n    deny: ['127.0.0.0/8']\n    allow: ['{outer.removeprefix('http://')}', "
        f"'{inner_hostport}']\n",
    )
    wf, spec = fetch()

    state = await run_workflow(wf, spec, url=f"{outer}/to/{inner_hostport}/data")  # type: ignore[arg-type]

    assert state.is_completed(), state.message
    assert (await state.aresult())["fetch"]["json"] == {"ok": True}
    assert hits == {f"/to/{inner_hostport}/data": 1, "/data": 1}


async def test_error_bodies_are_cut_and_masked(
    prefect_api: object, servers: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer, _ = servers
    configure(tmp_path, monkeypatch, "{}\n")
    wf, spec = fetch()

    state = await run_workflow(wf, spec, url=f"https://user:hunter22@example.invalid/{outer}")  # type: ignore[arg-type]
    assert "hunter22" not in str(state.message)
    assert "user:***@example.invalid" in str(state.message)

    state = await run_workflow(wf, spec, url=f"{outer}/broken")  # type: ignore[arg-type]

    message = str(state.message)
    assert state.is_failed()
    assert "s3cret-pw" not in message
    assert "postgresql://app:***@db.internal:5432/orders" in message
    body = message.split("expected 2xx: ", 1)[1]
    assert len(body) <= 200
