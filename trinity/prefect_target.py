"""Which Prefect API the CLI talks to.

Prefect's own default, when ``PREFECT_API_URL`` is unset, is an ephemeral server that lives as long
as the command: a ``trinity deploy`` there deploys into nothing anyone will see. So the CLI looks,
in order, at ``PREFECT_API_URL`` (environment or Prefect profile), ``prefect.api_url`` in
``trinity.config.yml`` (or ``TRINITY_PREFECT_API_URL``), and the stack a running ``trinity up``
serves from the state folder (``TRINITY_STATE_DIR``, else ``state_dir`` of the config, else
``.trinity``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.worker import prefect_compat
from trinity.core.config import load_settings
from trinity.stack import STATUS_FILE, running_supervisor

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


@contextlib.contextmanager
def using_prefect_api(url: str | None) -> Iterator[None]:
    """Point this process's Prefect client at ``url`` for the duration (``None``: leave it be).

    On the way out, the events Prefect still holds are delivered (:func:`deliver_pending_events`),
    while ``url`` is still the API in force.
    """
    with contextlib.ExitStack() as stack:
        if url is not None and url != PREFECT_API_URL.value():
            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: url}))
        try:
            yield
        finally:
            deliver_pending_events()


def deliver_pending_events(timeout: float = EVENTS_FLUSH_SECONDS) -> None:
    """Deliver the events Prefect still holds for this process before it exits (at most ``timeout``)."""
    prefect_compat.deliver_pending_events(timeout)
