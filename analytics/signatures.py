"""Error signatures: an error message with its variable parts replaced by placeholders.

``"ValueError: column 'amount' missing in /data/2025-01-03/b_4411.csv (row 1832)"`` becomes
``"ValueError: column <str> missing in <path> (row <n>)"``, so failures of the same cause group
together however their ids, hosts, paths and numbers differ. Host names are masked when they end
in a common domain suffix (``db-7.prod.example.com``) or carry a port (``worker-3:8080``,
``localhost:5432``): a bare dotted word is as likely a module or a file name.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import numpy.typing as npt
import pandas as pd

NO_MESSAGE = "<no error message>"
MAX_SIGNATURE_LENGTH = 240
# Last labels that make a dotted name a host rather than a module path or a file name.
_HOST_SUFFIXES = (
    "com", "net", "org", "io", "dev", "app", "cloud", "internal", "local", "localdomain", "lan",
    "corp", "svc", "cluster", "example", "test", "invalid", "co", "ai",
)  # fmt: skip

# Order matters: whole tokens (uuids, timestamps, urls) go before their parts (numbers, paths).
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"), "<ts>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.I), "<url>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (
        re.compile(
            r"\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:" + "|".join(_HOST_SUFFIXES) + r")(?::\d+)?\b",
            re.I,
        ),
        "<host>",
    ),
    (
        re.compile(r"\b(?:localhost|[a-z][a-z0-9]*(?:-[a-z0-9]+)+)(?::\d{2,5})\b|\blocalhost\b", re.I),
        "<host>",
    ),
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`"), "<str>"),
    (re.compile(r"(?:\b[A-Za-z]:)?(?:[\\/][\w.<>~-]+){2,}[\\/]?"), "<path>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    # Numbered names (node17, p22, worker12): the number goes, the name stays.
    (re.compile(r"(?<=[A-Za-z])\d+\b"), "<n>"),
    (re.compile(r"(?<![A-Za-z<\d])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"), "<n>"),
)
_SPACES = re.compile(r"\s+")


def _headline(message: str) -> str:
    """The line that names the error: the last line of a traceback, else the first line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


@functools.lru_cache(maxsize=65536)
def error_signature(message: str | None) -> str:
    """Normalise one error message into its signature (cached: failure groups and families both
    normalise the window's messages)."""
    if message is None or not str(message).strip():
        return NO_MESSAGE
    text = _headline(str(message))
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    text = _SPACES.sub(" ", text).strip()
    return text[:MAX_SIGNATURE_LENGTH]


def signatures(messages: pd.Series) -> npt.NDArray[np.object_]:
    """Signatures for a column of messages, normalising each distinct message once."""
    codes, uniques = pd.factorize(messages, use_na_sentinel=True)
    table = np.array([error_signature(m) for m in uniques] + [NO_MESSAGE], dtype=object)
    return table[np.where(codes < 0, len(uniques), codes)]
