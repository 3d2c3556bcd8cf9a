"""GraphiQL is served in development mode only."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.support import make_settings, running_api_server


def _graphiql_status(folder: Path, *, dev_mode: bool) -> tuple[int, str]:
    settings = make_settings(f"sqlite:///{folder / 'trinity.db'}", state_dir=folder)
    settings.security.dev_mode = dev_mode
    with running_api_server(settings) as server:
        response = httpx.get(f"{server.api}/graphql", headers={"Accept": "text/html"}, timeout=30)
    return response.status_code, response.text


def test_graphiql_only_in_development_mode(tmp_path: Path) -> None:
    status, page = _graphiql_status(tmp_path / "dev", dev_mode=True)
    assert status == 200
    assert "graphiql" in page.lower()
    status, _ = _graphiql_status(tmp_path / "prod", dev_mode=False)
    assert 400 <= status < 500
