"""The API server's line to Prefect.

One long-lived Prefect client per application (connections are reused across requests), and a
settings scope that points every Prefect call made inside a request -- ours in
:mod:`deployments.runs` and the deployment service's -- at the configured Prefect API, with few
retries and a short timeout so an outage answers 503 quickly instead of hanging a request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from prefect.client.orchestration import get_client
from prefect.context import AsyncClientContext, SettingsContext, get_settings_context
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import (
    PREFECT_API_REQUEST_TIMEOUT,
    PREFECT_API_URL,
    PREFECT_CLIENT_MAX_RETRIES,
    PREFECT_SERVER_ALLOW_EPHEMERAL_MODE,
    PREFECT_UI_URL,
)

from api.errors import PrefectUnavailableError

logger = logging.getLogger("trinity.api")

REQUEST_TIMEOUT_SECONDS = 10.0
HEALTH_TIMEOUT_SECONDS = 2.0


class PrefectGateway:
    """Scopes Prefect calls to the configured API and turns outages into :class:`PrefectUnavailableError`."""

    def __init__(
        self, *, api_url: str | None = None, ui_url: str | None = None, definition_key: str | None = None
    ) -> None:
        self._api_url = api_url
        self._ui_url = ui_url
        # Signs the definitions this server stores in Prefect (trinity/core/signing.py).
        self.definition_key = definition_key
        self._settings: Any = None
        self._profile: Any = None
        self._client: Any = None

    @property
    def api_url(self) -> str | None:
        """The Prefect API URL in use (ours, or Prefect's own configuration)."""
        if self._settings is not None:
            url = self._settings.api.url
            return str(url) if url else None
        return self._api_url

    async def start(self) -> None:
        """Build the settings and the shared client (no network call yet)."""
        context = get_settings_context()
        updates: dict[Any, Any] = {
            PREFECT_CLIENT_MAX_RETRIES: 1,
            PREFECT_API_REQUEST_TIMEOUT: REQUEST_TIMEOUT_SECONDS,
            # An API server must never start a throwaway Prefect server of its own.
            PREFECT_SERVER_ALLOW_EPHEMERAL_MODE: False,
        }
        if self._api_url:
            updates[PREFECT_API_URL] = self._api_url
        if self._ui_url:
            updates[PREFECT_UI_URL] = self._ui_url
        self._settings = context.settings.copy_with_update(updates=updates)
        self._profile = context.profile
        if self.api_url:
            # The client reads timeouts, TLS and auth settings when it is built.
            with SettingsContext.model_construct(profile=self._profile, settings=self._settings):
                client = get_client()
            self._client = await client.__aenter__()

    def flow_run_url(self, flow_run_id: object) -> str | None:
        """A flow run's page in the Prefect UI."""
        base = None
        if self._settings is not None:
            base = self._settings.ui_url
        if not base and self.api_url:
            base = self.api_url.rstrip("/").removesuffix("/api")
        return f"{str(base).rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[None]:
        """Run Prefect calls against our API; transport failures become :class:`PrefectUnavailableError`."""
        if self._settings is None or self._client is None:
            raise PrefectUnavailableError("no Prefect API is configured (prefect.api_url or PREFECT_API_URL)")
        settings_context = SettingsContext.model_construct(profile=self._profile, settings=self._settings)
        client_context = AsyncClientContext.model_construct(client=self._client)
        try:
            with settings_context, client_context:
                yield
        except httpx.TransportError as exc:
            logger.warning("Prefect API unreachable: %s", exc)
            raise PrefectUnavailableError("the Prefect API is unreachable; retry shortly") from exc
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code >= 500 or exc.response.status_code in (408, 429):
                raise PrefectUnavailableError(
                    f"the Prefect API answered {exc.response.status_code}; retry shortly"
                ) from exc
            raise

    async def health(self) -> tuple[bool, str | None]:
        """(up, detail) from Prefect's ``/health`` endpoint."""
        url = self.api_url
        if not url:
            return False, "no Prefect API configured"
        try:
            async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_SECONDS) as client:
                response = await client.get(url.rstrip("/") + "/health")
        except httpx.HTTPError as exc:
            return False, f"unreachable ({type(exc).__name__})"
        if response.status_code != 200:
            return False, f"answered {response.status_code}"
        return True, None
