"""Which Prefect API the CLI talks to.

Prefect's own default, when ``PREFECT_API_URL`` is unset, is an ephemeral server that lives as long
as the command: a ``trinity deploy`` there deploys into nothing anyone will see. So the CLI looks,
in order, at ``PREFECT_API_URL`` (environment or Prefect profile), ``prefect.api_url`` in
``trinity.config.yml`` (or ``TRINITY_PREFECT_API_URL``), and the stack a running ``trinity up``
serves from the state folder (``TRINITY_STATE_DIR``, else ``state_dir`` of the config, else
``.trinity``). Talking to that stack, the CLI uses its Prefect auth string and definition key
(from its ``secrets.json``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from flows.worker import prefect_compat
from trinity.core.config import load_settings
from trinity.core.signing import DEFINITION_KEY_ENV
from trinity.stack import STATUS_FILE, running_supervisor
from trinity.stack_config import SECRETS_FILE

EVENTS_FLUSH_SECONDS = 15.0


def running_stack_api_url(state_dir: Path) -> str | None:
    """The Prefect API URL of the ``trinity up`` running for ``state_dir``, if one runs."""
    if running_supervisor(state_dir) is None:
        return None
    try:
        status = json.loads((state_dir / STATUS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    url = status.get("prefect_api") if isinstance(status, dict) else None
    return url if isinstance(url, str) and url else None


def resolve_prefect_api_url() -> str | None:
    """The Prefect API URL the CLI should use, or None for Prefect's ephemeral default.

    Raises :class:`trinity.core.settings.ConfigError` when the configuration file is consulted and invalid.
    """
    current = PREFECT_API_URL.value()
    if current:
        return str(current)
    settings = load_settings()
    # settings.state_dir already carries TRINITY_STATE_DIR; empty in a config means the default.
    return settings.prefect.api_url or running_stack_api_url(Path(settings.state_dir or ".trinity"))


def running_stack_secrets(url: str | None) -> dict[str, str]:
    """The secrets of the ``trinity up`` that serves the Prefect API ``url`` from the configured
    state folder (empty when ``url`` is not that stack's)."""
    if url is None:
        return {}
    state_dir = Path(load_settings().state_dir or ".trinity")
    if running_stack_api_url(state_dir) != url:
        return {}
    try:
        data = json.loads((state_dir / SECRETS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


@contextlib.contextmanager
def _environment_variable(name: str, value: str) -> Iterator[None]:
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


@contextlib.contextmanager
def using_prefect_api(url: str | None) -> Iterator[None]:
    """Point this process's Prefect client at ``url`` for the duration (``None``: leave it be).

    When ``url`` is the running ``trinity up``'s, its Prefect auth string and definition key apply
    too, unless configured otherwise. On the way out, the events Prefect still holds are delivered
    (:func:`deliver_pending_events`), while ``url`` is still the API in force.
    """
    with contextlib.ExitStack() as stack:
        updates: dict[Any, Any] = {}
        if url is not None and url != PREFECT_API_URL.value():
            updates[PREFECT_API_URL] = url
        stack_secrets = running_stack_secrets(url)
        if stack_secrets.get("prefect_auth_string") and not PREFECT_API_AUTH_STRING.value():
            updates[PREFECT_API_AUTH_STRING] = stack_secrets["prefect_auth_string"]
        if updates:
            stack.enter_context(temporary_settings(updates=updates))
        if stack_secrets.get("definition_key") and not load_settings().security.definition_key:
            stack.enter_context(_environment_variable(DEFINITION_KEY_ENV, stack_secrets["definition_key"]))
        try:
            yield
        finally:
            deliver_pending_events()


def deliver_pending_events(timeout: float = EVENTS_FLUSH_SECONDS) -> None:
    """Deliver the events Prefect still holds for this process before it exits (at most ``timeout``)."""
    prefect_compat.deliver_pending_events(timeout)
