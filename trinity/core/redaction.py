"""Masking secrets in text that leaves a process: state messages, errors, log lines.

:func:`redact` masks

* the password of credentials in URLs, inside any text: ``postgresql://app:s3cret@db/x`` becomes
  ``postgresql://app:***@db/x`` (a user without password, ``https://token@host``, is masked whole,
  as tokens are passed that way);
* the values of query parameters whose name says they are a secret (``?token=...``,
  ``&api_key=...``, ``password``, ``secret``, ``signature`` ...);
* every given secret value wherever it appears, also inside a larger string.

Secret values a process holds right now (the secret parameters and ``${{ secrets.NAME }}`` values
of the runs in progress) are kept in one process-wide registry (:func:`hold_secrets`,
:func:`release_secrets`); :func:`redact_held` masks them all, and :func:`install_log_redaction`
makes every log line of Prefect's run loggers and of Trinity pass through it -- message and
traceback -- before any handler (Prefect's API, the console, the sinks) sees it.

The masked form is :data:`MASK`. Secrets shorter than :data:`MIN_SECRET_CHARS` are not searched
for, since masking every ``1`` or ``a`` of a message would hide it without protecting anything.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

MASK = "***"
MIN_SECRET_CHARS = 4

# scheme://user:password@  or  scheme://token@  (stops at the first '@' of the authority)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s/?#@'\"<>]+)@")
# A query key is secret when one of its words (split at '_', '-', '.') says so: ``token``,
# ``access_token``, ``X-Amz-Signature``; not ``design``, ``author`` or ``bypass``.
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:[\w.-]*[_.-])?(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey"
    r"|access[_-]?key|private[_-]?key|signature|sig|auth|credentials?)(?:[_.-][\w.-]*)?=)"
    r"(?P<value>[^&#\s'\"<>]+)",
    re.IGNORECASE,
)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match.group("userinfo").partition(":")
    masked = f"{user}:{MASK}" if colon else MASK
    return f"{match.group('scheme')}{masked}@"


def redact_urls(text: str) -> str:
    """``text`` with credentials in URLs (userinfo, secret query values) masked."""
    if "://" not in text and "=" not in text:
        return text
    text = _URL_CREDENTIALS.sub(_mask_userinfo, text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group('key')}{MASK}", text)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with credentials in URLs and every one of ``secrets`` masked (longest first)."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return redact_urls(text)


def shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text`` (an ellipsis marks a cut)."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


_held: Counter[str] = Counter()
_held_lock = threading.Lock()


def _encodings(text: str) -> list[str]:
    # Errors quote values with repr(), JSON escapes them, URLs percent-encode them.
    forms = [text, repr(text)[1:-1], json.dumps(text)[1:-1], quote(text, safe="")]
    return list(dict.fromkeys(forms))


def secret_texts(value: Any) -> list[str]:
    """The strings a secret value can appear as in text: itself (and its escaped and URL-encoded
    forms), or those of each string inside it."""
    if isinstance(value, str):
        return _encodings(value)
    if isinstance(value, dict):
        return [text for item in value.values() for text in secret_texts(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in secret_texts(item)]
    if value is None or isinstance(value, bool):
        return []
    return _encodings(str(value))


def hold_secrets(values: Iterable[str]) -> None:
    """Mask ``values`` everywhere in this process until they are released (counted per value)."""
    with _held_lock:
        _held.update(value for value in values if len(value) >= MIN_SECRET_CHARS)


def release_secrets(values: Iterable[str]) -> None:
    """Undo one :func:`hold_secrets` of ``values``."""
    with _held_lock:
        _held.subtract(value for value in values if len(value) >= MIN_SECRET_CHARS)
        for value in [value for value, count in _held.items() if count <= 0]:
            del _held[value]


def held_secrets() -> list[str]:
    """The secret values held right now."""
    with _held_lock:
        return list(_held)


def redact_held(text: str) -> str:
    """``text`` with credentials in URLs and every held secret masked."""
    return redact(text, held_secrets())


def redact_value(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` (JSON-like) with every string in it redacted (held secrets included)."""
    known = [*secrets, *held_secrets()]
    if isinstance(value, str):
        return redact(value, known)
    if isinstance(value, dict):
        return {key: redact_value(item, known) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item, known) for item in value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in URLs, ``secrets`` and the held secrets in each
    record's message and traceback."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [*self.secrets, *held_secrets()]
        try:
            message = record.getMessage()
        except Exception:
            # A call whose arguments do not fit its format: the handler reports it ("Logging
            # error") as logging always has; a filter that raised would fail the caller instead.
            return True
        masked = redact(message, secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text: the traceback is formatted (and masked) once, here.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        return True


# Loggers whose records are made there (filters on a logger apply to its own records only).
REDACTED_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.workers", "trinity")
_log_filter = RedactingFilter()


def install_log_redaction() -> None:
    """Redact the records of :data:`REDACTED_LOGGERS`, and every record reaching the handlers of
    the root and ``prefect`` loggers (idempotent; call again after handlers were configured)."""
    loggers = [logging.getLogger(name) for name in REDACTED_LOGGERS]
    handlers = [*logging.getLogger().handlers, *logging.getLogger("prefect").handlers]
    for target in [*loggers, *handlers]:
        if _log_filter not in target.filters:
            target.addFilter(_log_filter)
