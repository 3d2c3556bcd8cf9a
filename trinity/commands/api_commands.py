"""``trinity api``: serve the REST API with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def api(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: server.port).")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Configuration file (default: $TRINITY_CONFIG, ./trinity.config.yml)."),
    ] = None,
    dev: Annotated[bool, typer.Option("--dev", help="Dev mode: run without a JWT secret.")] = False,
) -> None:
    """Serve the /api/v1 REST API (migrates the database first)."""
    from trinity.commands import api_impl  # imports the API, SQLAlchemy, uvicorn: see trinity.cli

    api_impl.serve(host=host, port=port, config=config, dev=dev)


def register(app: typer.Typer) -> None:
    """Add ``trinity api`` to the CLI."""
    app.command("api")(api)
