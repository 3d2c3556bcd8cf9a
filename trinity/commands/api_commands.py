"""``trinity api``: serve the REST API with uvicorn."""

from __future__ import annotations

import os
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
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from api.app import configure_logging
    from api.db import migrate
    from trinity.core.config import load_settings
    from trinity.core.settings import ConfigError
    from trinity.core.urls import DatabaseURLError

    # Worker processes rebuild the settings from the environment, so pass the choices on that way.
    if config is not None:
        os.environ["TRINITY_CONFIG"] = str(config)
    if dev:
        os.environ["TRINITY_DEV_MODE"] = "true"
    try:
        flags = {"server.host": host, "server.port": port, "security.dev_mode": True if dev else None}
        settings = load_settings(config, flags=flags)
        settings.require_jwt_secret()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        migrate(settings.database_url)  # fail here with one line rather than in every worker
    except DatabaseURLError as exc:
        typer.echo(f"error: database.url: {exc}", err=True)
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        first_line = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        typer.echo(f"error: cannot prepare the database: {first_line}", err=True)
        raise typer.Exit(1) from None
    configure_logging(settings.logging)
    uvicorn.run(
        "api.main:app_from_environment",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=settings.server.workers,
        log_config=None,
        proxy_headers=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``trinity api`` to the CLI."""
    app.command("api")(api)
