"""Workflow parameters: a JSON Schema (draft 2020-12) in the specification, values at run time.

Schemas may only use local references (``#/...``): nothing is ever fetched over the network.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable

from specs.errors import Problem, SpecError, json_path

PathParts = tuple[str | int, ...]

_EMPTY_REGISTRY: Registry[Any] = Registry()
_META_VALIDATOR = Draft202012Validator(Draft202012Validator.META_SCHEMA, registry=_EMPTY_REGISTRY)
_FORMATS = FormatChecker()
_CLI_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, registry=_EMPTY_REGISTRY, format_checker=_FORMATS)


def _walk_refs(value: Any, path: PathParts) -> Iterator[PathParts]:
    if isinstance(value, Mapping):
        ref = value.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            yield (*path, "$ref")
        for key, item in value.items():
            if isinstance(key, str):
                yield from _walk_refs(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_refs(item, (*path, index))


def schema_problems(schema: Any) -> list[tuple[PathParts, str]]:
    """Everything wrong with a parameters schema, as (path inside the schema, message) pairs."""
    if not isinstance(schema, Mapping):
        return [((), "parameters must be a JSON Schema object (a mapping)")]
    found: list[tuple[PathParts, str]] = []
    for error in _META_VALIDATOR.iter_errors(schema):
        found.append((tuple(error.absolute_path), f"not a valid JSON Schema: {error.message}"))
    for path in _walk_refs(schema, ()):
        found.append((path, "only local references ('#/...') are allowed in a parameters schema"))
    if found:
        return found
    if schema.get("type", "object") != "object":
        found.append((("type",), "parameters must be an object schema (type: object)"))
    properties = schema.get("properties", {})
    for name, prop in properties.items():
        if isinstance(prop, Mapping) and "default" in prop:
            try:
                errors = list(_validator(prop).iter_errors(prop["default"]))
            except Unresolvable:
                continue  # a default behind a reference is checked when the run form is filled in
            if errors:
                found.append(
                    (("properties", name, "default"), f"default of '{name}' is invalid: {errors[0].message}")
                )
    return found


def check_parameters_schema(schema: Any, *, source: str = "<parameters>") -> list[Problem]:
    """Problems with a parameters schema, located by JSON path inside it."""
    return [
        Problem(file=source, line=None, col=None, message=message, json_path=json_path(path))
        for path, message in schema_problems(schema)
    ]


def declared_parameters(schema: Mapping[str, Any]) -> frozenset[str]:
    """The parameter names a schema declares (its top-level ``properties``)."""
    properties = schema.get("properties", {})
    return frozenset(properties) if isinstance(properties, Mapping) else frozenset()


def _located(error: ValidationError, schema: Mapping[str, Any]) -> tuple[PathParts, str]:
    path: PathParts = tuple(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, Mapping):
        for name in error.validator_value:
            if name not in instance and repr(name) in error.message:
                return (*path, name), f"missing required parameter '{name}'"
    if error.validator == "additionalProperties" and isinstance(instance, Mapping) and not path:
        known = sorted(declared_parameters(schema))
        extras = [key for key in instance if key not in known]
        if len(extras) == 1:
            close = difflib.get_close_matches(extras[0], known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            return (extras[0],), f"unknown parameter '{extras[0]}'{hint}"
    return path, error.message


def validate_parameters(
    schema: Mapping[str, Any], params: Mapping[str, Any], *, source: str = "<parameters>"
) -> list[Problem]:
    """Check parameter values against the specification's schema; every problem, JSON-path located."""
    broken = check_parameters_schema(schema, source=source)
    if broken:
        return broken
    problems: list[Problem] = []
    try:
        errors = sorted(_validator(schema).iter_errors(dict(params)), key=lambda e: list(e.absolute_path))
    except Unresolvable as exc:
        return [Problem(source, None, None, f"unresolvable reference in parameters schema: {exc}", "$")]
    for error in errors:
        path, message = _located(error, schema)
        problems.append(Problem(file=source, line=None, col=None, message=message, json_path=json_path(path)))
    return problems


def apply_defaults(schema: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with each missing top-level parameter set to its schema default."""
    result = dict(params)
    properties = schema.get("properties", {})
    if isinstance(properties, Mapping):
        for name, prop in properties.items():
            if name not in result and isinstance(prop, Mapping) and "default" in prop:
                result[name] = copy.deepcopy(prop["default"])
    return result


def optional_parameters(schema: Mapping[str, Any]) -> frozenset[str]:
    """Declared parameters that are neither required nor given a default by the schema."""
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    if not isinstance(properties, Mapping):
        return frozenset()
    required_names = set(required) if isinstance(required, list) else set()
    return frozenset(
        name
        for name, prop in properties.items()
        if name not in required_names and not (isinstance(prop, Mapping) and "default" in prop)
    )


def drop_unset_optionals(schema: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` without the ``None`` values of optional parameters whose schema refuses ``null``.

    Prefect binds a run's parameters to the flow function's signature, where an optional parameter
    needs a default to be left out; that default is ``None``, and this takes it back out, so the
    parameter is absent (as the user meant) instead of an invalid ``null``.
    """
    unset = [name for name in optional_parameters(schema) if name in params and params[name] is None]
    if not unset:  # the usual case: no validator to build on every run
        return dict(params)
    properties = schema["properties"]
    root = _validator(schema)
    refused = {name for name in unset if not root.evolve(schema=properties[name]).is_valid(None)}
    return {name: value for name, value in params.items() if name not in refused}


def parse_cli_param(text: str) -> tuple[str, Any]:
    """Parse ``key=value``; the value is JSON where it parses (``3``, ``true``, ``[1]``), else a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(f"expected KEY=VALUE, got '{text}'")
    if not _CLI_KEY.match(key):
        raise SpecError(f"invalid parameter name '{key}' in '{text}'")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def parse_cli_params(texts: Sequence[str]) -> dict[str, Any]:
    """Parse several ``key=value`` strings into a dict (a later key wins)."""
    return dict(parse_cli_param(text) for text in texts)
