"""Masking secrets in text that leaves a process: state messages, errors, log lines.

:func:`redact` masks

* the password of credentials in URLs, inside any text: ``postgresql://app:s3cret@db/x`` becomes
  ``postgresql://app:***@db/x`` (a user without password, ``https://token@host``, is masked whole,
  as tokens are passed that way);
* the values of query parameters whose name says they are a secret (``?token=...``,
  ``&api_key=...``, ``password``, ``secret``, ``signature`` ...);
* every given secret value wherever it appears, also inside a larger string.

The masked form is :data:`MASK`. Secrets shorter than :data:`MIN_SECRET_CHARS` are not searched
for, since masking every ``1`` or ``a`` of a message would hide it without protecting anything.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
MIN_SECRET_CHARS = 4

# scheme://user:password@  or  scheme://token@  (stops at the first '@' of the authority)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s/?#@'\"<>]+)@")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:[\w.-]*?(?:pass(?:word|wd)?|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|signature|sig|auth|credential)[\w.-]*)=)(?P<value>[^&#\s'\"<>]+)",
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


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in URLs (and ``secrets``) in each record's message."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        return True
