"""The FastAPI application: ``create_app(settings)``.

On start it migrates the database (Alembic), seeds the bootstrap admin key when configured, and
opens the database pool and the Prefect client; on stop it closes them. The OpenAPI document is
at ``/api/v1/openapi.json`` and the interactive docs at ``/api/v1/docs`` (from ``/`` and ``/docs``
too), with every file they need served by the API itself (see :mod:`api.docs`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import ConfigDict
from pydantic.json_schema import models_json_schema

from api.db import Database, create_engine, migrate
from api.deps import AppState
from api.docs import install_docs
from api.errors import install_exception_handlers
from api.graphql.router import graphql_router
from api.middleware import BodySizeLimitMiddleware
from api.models.workflow import WorkflowUpdate
from api.prefect import PrefectGateway
from api.ratelimit import RateLimiter, build_rate_limiter
from api.request_metrics import RequestMetricsMiddleware, metrics_router
from api.routes import api_router, events
from api.services.keys import ensure_bootstrap_key
from api.services.runs import purge_idempotency_keys
from specs import models as documents
from trinity.core.config import load_settings
from trinity.core.settings import Settings, parse_rate_limit

logger = logging.getLogger("trinity.api")

API_PREFIX = "/api/v1"
OPENAPI_URL = f"{API_PREFIX}/openapi.json"
DOCS_URL = f"{API_PREFIX}/docs"
PURGE_INTERVAL_SECONDS = 3600
DESCRIPTION = """Trinity's REST contract: specifications, workflows, runs and analytics.

Authenticate with `X-API-Key: <key>`, or exchange the key at `POST /api/v1/auth/token`
(client credentials) for a bearer token. Errors always answer
`{"error": {"code", "message", "details": [{"loc", "msg"}]}}`.
"""


class SpecificationDocument(documents.Specification):
    model_config = ConfigDict(title="SpecificationDocument")


class WorkflowDocument(documents.Workflow):
    model_config = ConfigDict(title="WorkflowDocument")


def _version() -> str:
    try:
        return metadata.version("trinity")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    # Document bodies are read raw (JSON or YAML); publish their schemas for the request bodies.
    _, extra = models_json_schema(
        [
            (SpecificationDocument, "validation"),
            (WorkflowDocument, "validation"),
            (WorkflowUpdate, "validation"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in extra.get("$defs", {}).items():
        if name in components and components[name] != definition:
            raise RuntimeError(f"OpenAPI component name clash: {name}")
        components[name] = definition
    app.openapi_schema = schema
    return schema


def _jwt_secret(settings: Settings) -> str:
    if settings.security.jwt_secret:
        return settings.security.jwt_secret
    logger.warning("dev mode: no JWT secret configured; using a random one (tokens end with this process)")
    return secrets.token_urlsafe(48)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    url = settings.database_url
    await anyio.to_thread.run_sync(migrate, url)
    database = Database(
        create_engine(
            url,
            pool_size=settings.database.pool_size,
            max_overflow=settings.database.max_overflow,
            pool_timeout=settings.database.pool_timeout,
            connect_timeout=settings.database.connect_timeout,
        )
    )
    if settings.security.bootstrap_api_key:
        async with database.session() as session:
            await ensure_bootstrap_key(session=session, key=settings.security.bootstrap_api_key)
    prefect = PrefectGateway(
        api_url=settings.prefect.api_url,
        ui_url=settings.prefect.ui_url,
        definition_key=settings.security.definition_key,
    )
    await prefect.start()
    security = settings.security
    limiter = _limiter(settings, security.rate_limit, "trinity:rl:")
    auth_failures = _limiter(settings, security.auth_failure_rate_limit, "trinity:authfail:")
    token_requests = _limiter(settings, security.token_rate_limit, "trinity:token:")
    app.state.trinity = AppState(
        settings=settings,
        db=database,
        prefect=prefect,
        jwt_secret=app.state.jwt_secret,
        rate_limiter=limiter,
        auth_failures=auth_failures,
        token_requests=token_requests,
    )
    purger = asyncio.create_task(_purge_expired_keys(database, settings.server.idempotency_ttl_seconds))
    try:
        yield
    finally:
        purger.cancel()
        for each in (limiter, auth_failures, token_requests):
            if each is not None:
                await each.close()
        await prefect.close()
        await database.dispose()


def _limiter(settings: Settings, rate: str | None, prefix: str) -> RateLimiter | None:
    """A limiter for a configured rate (None: unlimited), shared through Redis when configured."""
    parsed = parse_rate_limit(rate) if rate else None
    return build_rate_limiter(
        rate=parsed, redis_url=settings.redis.url, redis_db=settings.redis.db, prefix=prefix
    )


async def _purge_expired_keys(database: Database, ttl_seconds: int) -> None:
    """Purge expired Idempotency-Keys at start and then periodically (each API process does it;
    a key deleted twice is no harm)."""
    while True:
        try:
            async with database.session() as session:
                purged = await purge_idempotency_keys(session=session, ttl_seconds=ttl_seconds)
            if purged:
                logger.info("Purged %d Idempotency-Key(s) older than %ds", purged, ttl_seconds)
        except Exception as exc:  # the database may be away: the next round tries again
            logger.warning("Could not purge expired Idempotency-Keys (%s); trying again later", exc)
        await asyncio.sleep(min(ttl_seconds, PURGE_INTERVAL_SECONDS))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; raises ``ConfigError`` when there is no JWT secret outside dev mode."""
    settings = settings or load_settings()
    settings.require_jwt_secret()
    app = FastAPI(
        title="Trinity",
        version=_version(),
        description=DESCRIPTION,
        openapi_url=OPENAPI_URL,
        docs_url=None,  # served from this installation by api.docs, not from a CDN
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.jwt_secret = _jwt_secret(settings)
    install_exception_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.server.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware)
    app.include_router(metrics_router(require_auth=settings.metrics.require_auth))
    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(events.router, prefix=API_PREFIX)
    app.include_router(graphql_router(dev_mode=settings.security.dev_mode), prefix=API_PREFIX)
    install_docs(app, docs_url=DOCS_URL, openapi_url=OPENAPI_URL)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
