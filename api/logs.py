"""The API process's logging: Trinity's and uvicorn's loggers, as ``logging`` in the settings says.

Prefect configures logging too (``logging.config.dictConfig`` with its ``logging.yml``): when it is
first imported, and again whenever something calls its ``setup_logging`` (Prefect's server app,
a settings change, a remote context). Its configuration names the ``uvicorn`` logger (level
``PREFECT_SERVER_LOGGING_LEVEL``, WARNING by default, Prefect's console handler), and a
non-incremental ``dictConfig`` resets every child of a named logger -- ``uvicorn.access`` and
``uvicorn.error`` lose their handlers and level and fall back to ``uvicorn``'s WARNING -- so the
access log would go silent for the rest of the process, 403s included. Here Prefect's
configuration runs first, ours after it, and ours is applied again after every later Prefect
set-up.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from typing import Any

from prefect.logging import configuration as prefect_logging

from trinity.core.settings import LoggingSettings

LOGGERS = ("trinity", "uvicorn", "uvicorn.access", "uvicorn.error")

_applied: LoggingSettings | None = None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _handlers(config: LoggingSettings) -> list[logging.Handler]:
    formatter: logging.Formatter = (
        JsonFormatter()
        if config.format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handlers: list[logging.Handler] = []
    if "console" in config.handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
    if "file" in config.handlers:
        handlers.append(logging.FileHandler(config.file or "trinity-api.log"))
    for handler in handlers:
        handler.setFormatter(formatter)
    return handlers


@functools.cache
def _handlers_once(config_json: str) -> list[logging.Handler]:
    # The same handlers for the same settings: applying again must not open the file again.
    return _handlers(LoggingSettings.model_validate_json(config_json))


def _apply(config: LoggingSettings) -> None:
    handlers = _handlers_once(config.model_dump_json())
    for name in LOGGERS:
        target = logging.getLogger(name)
        target.handlers = list(handlers)
        target.setLevel(config.level)
        target.propagate = False
        target.disabled = False


def _reapplied_after(setup: Any) -> Any:
    @functools.wraps(setup)
    def setup_logging(*args: Any, **kwargs: Any) -> Any:
        result = setup(*args, **kwargs)
        if _applied is not None:
            _apply(_applied)
        return result

    setup_logging.__trinity_wrapped__ = True  # type: ignore[attr-defined]
    return setup_logging


def configure_logging(config: LoggingSettings) -> None:
    """Send Trinity's and uvicorn's logs where ``logging`` says, as text or JSON lines, for the
    life of the process (see the module's docstring)."""
    global _applied
    prefect_logging.ensure_logging_setup()
    if not getattr(prefect_logging.setup_logging, "__trinity_wrapped__", False):
        # Every caller looks the function up on the module when it calls it.
        prefect_logging.setup_logging = _reapplied_after(prefect_logging.setup_logging)
    _applied = config
    _apply(config)
