"""Secret parameters and secret references: which values are secrets, and how a run refers to them.

A parameter whose schema says ``writeOnly: true`` or ``format: password`` is a secret. Its value is
never shown (:func:`mask_secret_parameters` puts :data:`~trinity.core.redaction.MASK` in its place,
and masks credentials in URLs inside the other values)
and never handed to Prefect in clear: a flow run carries a reference instead
(:func:`secret_reference`, ``trinity-secret:<block name>``), naming a Prefect ``Secret`` block that
the executor reads when the run starts. ``${{ secrets.NAME }}`` (or ``secrets['NAME']``) reads an
existing ``Secret`` block by name; the names are checked here (:func:`secret_name_problem`).

Pure: the blocks themselves are made and read by ``blocks.run_secrets`` and ``flows.run_secrets``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Mapping
from typing import Any

from trinity.core.redaction import MASK, redact_value

SECRETS_ROOT = "secrets"
REFERENCE_PREFIX = "trinity-secret:"
# Prefect's rule for block document names.
BLOCK_NAME = re.compile(r"^[a-z0-9-]{1,255}$")
# What a deployment's run form keeps of a secret parameter's schema (constraints are checked by
# the executor on the resolved value; the form only has to accept a reference).
_FORM_KEYS = ("title", "description", "position")


def is_secret_schema(prop: Any) -> bool:
    """Whether one property's schema declares a secret."""
    return isinstance(prop, Mapping) and (prop.get("writeOnly") is True or prop.get("format") == "password")


def secret_parameters(schema: Mapping[str, Any]) -> frozenset[str]:
    """The names of the secret parameters a parameters schema declares (top level)."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return frozenset()
    return frozenset(name for name, prop in properties.items() if is_secret_schema(prop))


def mask_secret_parameters(schema: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` as it may be shown: each secret parameter's value is the mask, and
    credentials in URLs inside the other values are masked."""
    return _shown(params, secret_parameters(schema))


def secret_reference(block_name: str) -> str:
    """The value a flow run carries for a secret parameter kept in the block ``block_name``."""
    return f"{REFERENCE_PREFIX}{block_name}"


def referenced_block(value: Any) -> str | None:
    """The block a parameter value refers to, or None when it is not a reference."""
    if isinstance(value, str) and value.startswith(REFERENCE_PREFIX):
        name = value.removeprefix(REFERENCE_PREFIX)
        return name if BLOCK_NAME.match(name) else None
    return None


def secret_name_problem(name: str | None) -> str | None:
    """What is wrong with ``secrets.<name>`` in an expression, if anything."""
    if name is None:
        return "read secrets by a literal name: secrets.NAME or secrets['NAME']"
    if not BLOCK_NAME.match(name):
        return (
            f"secrets.{name}: a Secret block name has only lowercase letters, digits and dashes "
            "(write secrets['my-name'] for names with dashes)"
        )
    return None


def secret_form_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with each secret parameter as a masked string field (``format: password``) that
    accepts a reference, for a deployment's run form checked by Prefect's server."""
    result = copy.deepcopy(dict(schema))
    properties = result.get("properties")
    if not isinstance(properties, dict):
        return result
    for name in secret_parameters(schema):
        prop = properties[name]
        form = {key: prop[key] for key in _FORM_KEYS if key in prop}
        properties[name] = {**form, "type": "string", "format": "password", "writeOnly": True}
    return result


def mask_references(params: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``params`` (as a flow run carries them) with each secret reference masked, each
    secret parameter ``schema`` declares too (a value given in clear in Prefect's run form, never
    moved into a block when the run did not start), and credentials in URLs inside the other values."""
    declared = secret_parameters(schema) if schema is not None else frozenset()
    return _shown(params, declared | {name for name, value in params.items() if referenced_block(value)})


def _shown(params: Mapping[str, Any], secrets: Collection[str]) -> dict[str, Any]:
    """``params`` with the values of ``secrets`` masked, and credentials in URLs in the others."""
    return {name: MASK if name in secrets else redact_value(value) for name, value in params.items()}
