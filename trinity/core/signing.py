"""Signatures of stored workflow definitions: what Trinity wrote is what a worker runs.

A definition lives in Prefect (a block document), and anyone who can write to Prefect's API can
rewrite it. So Trinity signs what it stores with an HMAC-SHA256 under the definition key
(``security.definition_key``, environment ``TRINITY_DEFINITION_KEY``), and whatever runs a stored
definition checks the signature first. The signed bytes are the canonical JSON (sorted keys, no
spaces) of the workflow's name, version, workflow document and specification document, so a
definition cannot be swapped for another signed one under a different name or version either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

DEFINITION_KEY_SETTING = "security.definition_key"
DEFINITION_KEY_ENV = "TRINITY_DEFINITION_KEY"
MISSING_KEY_MESSAGE = (
    f"no definition key: set {DEFINITION_KEY_SETTING} in trinity.config.yml (or {DEFINITION_KEY_ENV}), "
    "the same on the API and every worker; `trinity up` generates one"
)


class DefinitionRefusedError(Exception):
    """A stored definition is not run (or not stored); the message says why, in one line."""


class DefinitionKeyMissingError(DefinitionRefusedError):
    """No definition key is configured, so definitions can be neither signed nor checked."""

    def __init__(self) -> None:
        super().__init__(MISSING_KEY_MESSAGE)


class DefinitionChangedError(DefinitionRefusedError):
    """A stored definition's signature does not match its content."""


def require_key(key: str | None) -> str:
    """``key``, or :class:`DefinitionKeyMissingError` when it is unset or blank."""
    if key is None or not key.strip():
        raise DefinitionKeyMissingError()
    return key


def canonical_definition(
    *, name: str, version: str, workflow: dict[str, Any], specification: dict[str, Any]
) -> bytes:
    """The exact bytes a definition's signature covers."""
    payload = {"name": name, "version": version, "workflow": workflow, "specification": specification}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_definition(
    key: str, *, name: str, version: str, workflow: dict[str, Any], specification: dict[str, Any]
) -> str:
    """The signature (hex HMAC-SHA256 under ``key``) of one definition."""
    message = canonical_definition(name=name, version=version, workflow=workflow, specification=specification)
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def check_definition(
    key: str,
    signature: str,
    *,
    label: str,
    name: str,
    version: str,
    workflow: dict[str, Any],
    specification: dict[str, Any],
) -> None:
    """Raise :class:`DefinitionChangedError` unless ``signature`` is this definition's under ``key``.

    ``label`` names the stored definition in the message.
    """
    expected = sign_definition(
        key, name=name, version=version, workflow=workflow, specification=specification
    )
    if not signature or not hmac.compare_digest(expected, signature):
        why = "it carries no signature" if not signature else "its signature does not match"
        raise DefinitionChangedError(
            f"definition {label} (workflow {name} {version}) was changed outside Trinity ({why}); "
            "not running it: deploy the workflow again from Trinity"
        )
