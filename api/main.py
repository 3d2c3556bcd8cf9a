"""Entry point for ASGI servers: ``uvicorn --factory api.main:app_from_environment``."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.logs import configure_logging
from trinity.core.config import load_settings


def app_from_environment() -> FastAPI:
    """Build the app from ``TRINITY_CONFIG`` / ``./trinity.config.yml`` and the environment."""
    settings = load_settings()
    configure_logging(settings.logging)
    return create_app(settings)
