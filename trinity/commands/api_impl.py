"""What ``trinity api`` does (its options are in :mod:`trinity.commands.api_commands`)."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from pathlib import Path

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from api.db import migrate
from api.logs import configure_logging
from trinity.commands.common import fail
from trinity.core.config import load_settings
from trinity.core.settings import ConfigError
from trinity.core.urls import DatabaseURLError

_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def tls_context(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's server context (the certificate and key loaded) with Trinity's oldest TLS version,
    ``server.ssl_min_version`` (1.3 by default). Module-level, so worker processes can import it."""
    context = default()
    context.minimum_version = _TLS_VERSIONS[load_settings().server.ssl_min_version]
    return context


def _check_tls_files(certfile: str, keyfile: str) -> None:
    """One line (exit 1) for a certificate or key that cannot be used, before anything starts."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        fail(f"error: server.ssl_certfile / server.ssl_keyfile: cannot load {certfile} and {keyfile} ({exc})")


def serve(
    *,
    host: str | None,
    port: int | None,
    config: Path | None,
    dev: bool,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    """Migrate the database, then serve the API with uvicorn until stopped."""
    # Worker processes rebuild the settings from the environment, so pass the choices on that way.
    if config is not None:
        os.environ["TRINITY_CONFIG"] = str(config)
    if dev:
        os.environ["TRINITY_DEV_MODE"] = "true"
    try:
        flags = {
            "server.host": host,
            "server.port": port,
            "security.dev_mode": True if dev else None,
            "server.ssl_certfile": str(ssl_certfile) if ssl_certfile else None,
            "server.ssl_keyfile": str(ssl_keyfile) if ssl_keyfile else None,
        }
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
    server = settings.server
    if server.ssl_certfile and server.ssl_keyfile:
        _check_tls_files(server.ssl_certfile, server.ssl_keyfile)
    configure_logging(settings.logging)
    uvicorn.run(
        "api.main:app_from_environment",
        factory=True,
        host=server.host,
        port=server.port,
        workers=server.workers,
        log_config=None,
        proxy_headers=False,
        ssl_certfile=server.ssl_certfile,
        ssl_keyfile=server.ssl_keyfile,
        ssl_context_factory=tls_context if server.ssl_certfile else None,
    )
