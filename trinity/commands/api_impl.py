"""What ``trinity api`` does (its options are in :mod:`trinity.commands.api_commands`)."""

from __future__ import annotations

import os
from pathlib import Path

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from api.db import migrate
from api.logs import configure_logging
from trinity.commands.common import fail
from trinity.core.config import load_settings
from trinity.core.settings import ConfigError
from trinity.core.urls import DatabaseURLError


def serve(*, host: str | None, port: int | None, config: Path | None, dev: bool) -> None:
    """Migrate the database, then serve the API with uvicorn until stopped."""
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
        fail(f"error: {exc}")
    try:
        migrate(settings.database_url)  # fail here with one line rather than in every worker
    except DatabaseURLError as exc:
        fail(f"error: database.url: {exc}")
    except SQLAlchemyError as exc:
        first_line = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        fail(f"error: cannot prepare the database: {first_line}")
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
