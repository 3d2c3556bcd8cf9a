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
    ssl_certfile: Annotated[
        Path | None,
        typer.Option("--ssl-certfile", help="Serve HTTPS with this certificate (PEM; server.ssl_certfile)."),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None,
        typer.Option("--ssl-keyfile", help="The certificate's private key (PEM; server.ssl_keyfile)."),
    ] = None,
) -> None:
    """Serve the /api/v1 REST API (migrates the database first); HTTPS, TLS 1.3 at least, with a
    certificate."""
    from trinity.commands import api_impl  # imports the API, SQLAlchemy, uvicorn: see trinity.cli

    api_impl.serve(
        host=host, port=port, config=config, dev=dev, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile
    )


def register(app: typer.Typer) -> None:
    """Add ``trinity api`` to the CLI."""
    app.command("api")(api)
