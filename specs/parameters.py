"""Workflow parameters: a JSON Schema (draft 2020-12) in the specification, values at run time.

Schemas may only use local references (``#/...``): nothing is ever fetched over the network.

A run may pass only the parameters its specification declares (``properties``), unless the schema
explicitly accepts more (``additionalProperties`` other than ``false``, or ``patternProperties``):
a misspelt name is refused before the run exists. Prefect binds a flow run's parameters by name to
the flow function's signature, which cannot list names nobody knows in advance, so in Prefect the
undeclared parameters of such a run travel as one object under :data:`EXTRA_PARAMETERS`;
:func:`prefect_parameters_schema` and :func:`prefect_parameters` give that form.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from specs.errors import Problem, SpecError, json_path
from specs.schema_limits import PARAMETER_TIME_LIMIT_SECONDS, BoundedValidator, search
from specs.schema_limits import time_limit as schema_time_limit
from specs.secrets import secret_form_schema, secret_parameters
from trinity.core.redaction import redact, secret_texts

PathParts = tuple[str | int, ...]

_EMPTY_REGISTRY: Registry[Any] = Registry()
_META_VALIDATOR = Draft202012Validator(Draft202012Validator.META_SCHEMA, registry=_EMPTY_REGISTRY)
_FORMATS = FormatChecker()
_CLI_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

EXTRA_PARAMETERS = "extra_parameters"
"""The Prefect parameter holding a run's undeclared parameters (only when the spec accepts them)."""
# Marks the EXTRA_PARAMETERS property of a deployment's schema, so a schema read back from Prefect
# is recognised as that form (an annotation keyword: validators and Prefect's UI ignore it).
_EXTRA_MARK = "x-trinity-extra-parameters"


def _validator(schema: Mapping[str, Any]) -> Validator:
    return BoundedValidator(schema, registry=_EMPTY_REGISTRY, format_checker=_FORMATS)


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
    if EXTRA_PARAMETERS in properties and accepts_undeclared_parameters(schema):
        found.append(
            (
                ("properties", EXTRA_PARAMETERS),
                f"'{EXTRA_PARAMETERS}' is reserved in a schema that accepts undeclared parameters "
                "(Prefect receives them under that name)",
            )
        )
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


def accepts_undeclared_parameters(schema: Mapping[str, Any]) -> bool:
    """True when the schema explicitly lets a run pass names beyond its ``properties``.

    That is ``additionalProperties`` present and not ``false``, or ``patternProperties``; a schema
    that says nothing about undeclared names refuses them.
    """
    spec = _spec_form(schema)
    return spec.get("additionalProperties", False) is not False or bool(spec.get("patternProperties"))


def unknown_parameters(
    schema: Mapping[str, Any], params: Mapping[str, Any], *, source: str = "<parameters>"
) -> list[Problem]:
    """One problem per parameter name the schema neither declares nor accepts, with a close match.

    The message is ``unknown parameter 'nams'; did you mean 'names'?`` (without a close match just
    ``unknown parameter 'nams'``), located at the name (``$.nams``). Without ``additionalProperties``
    (or with ``false``), a name must be declared or match one of the ``patternProperties``.
    """
    spec = _spec_form(schema)
    if spec.get("additionalProperties", False) is not False:
        return []  # the schema judges undeclared names by its additionalProperties
    known = sorted(declared_parameters(spec))
    patterns = list(spec.get("patternProperties", {}))
    return [
        Problem(
            file=source,
            line=None,
            col=None,
            message=_unknown_message(name, known),
            json_path=json_path([name]),
        )
        for name in params
        if name not in known and not any(search(pattern, name) for pattern in patterns)
    ]


def _unknown_message(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"unknown parameter '{name}'" + (f"; did you mean '{close[0]}'?" if close else "")


def _located(error: ValidationError) -> tuple[PathParts, str] | None:
    """Where a schema error is and what to say; None for what unknown_parameters reports."""
    path: PathParts = tuple(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, Mapping):
        for name in error.validator_value:
            if name not in instance and repr(name) in error.message:
                return (*path, name), f"missing required parameter '{name}'"
    if error.validator == "additionalProperties" and not path:
        return None
    return path, error.message


def validate_parameters(
    schema: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    source: str = "<parameters>",
    time_limit: float = PARAMETER_TIME_LIMIT_SECONDS,
) -> list[Problem]:
    """Check parameter values against the specification's schema; every problem, JSON-path located.

    Unknown names come first (:func:`unknown_parameters`). ``schema`` may also be a deployment's
    schema as :func:`prefect_parameters_schema` made it; ``params`` are then still the run's
    parameters as a user gives them, undeclared names at the top level.

    Raises :class:`~specs.schema_limits.ParameterTimeoutError` after ``time_limit`` seconds (a
    pattern that backtracks without end cannot hold it longer); patterns are matched with the GIL
    released, so a caller on an event loop can run this in a worker thread.
    """
    with schema_time_limit(time_limit):
        problems = _validate_parameters(schema, params, source)
    return _without_secret_values(problems, schema, params)


def _without_secret_values(
    problems: list[Problem], schema: Mapping[str, Any], params: Mapping[str, Any]
) -> list[Problem]:
    """Problems whose messages quote a secret parameter's value (``'hunter2' is too short``) masked."""
    names = secret_parameters(schema) & set(params)
    texts = [text for name in names for text in secret_texts(params[name])]
    if not texts:
        return problems
    return [dataclasses.replace(problem, message=redact(problem.message, texts)) for problem in problems]


def _validate_parameters(schema: Mapping[str, Any], params: Mapping[str, Any], source: str) -> list[Problem]:
    schema = _spec_form(schema)
    broken = check_parameters_schema(schema, source=source)
    if broken:
        return broken
    problems = unknown_parameters(schema, params, source=source)
    try:
        errors = sorted(_validator(schema).iter_errors(dict(params)), key=lambda e: list(e.absolute_path))
    except Unresolvable as exc:
        return [Problem(source, None, None, f"unresolvable reference in parameters schema: {exc}", "$")]
    for error in errors:
        located = _located(error)
        if located is not None:
            path, message = located
            problems.append(
                Problem(file=source, line=None, col=None, message=message, json_path=json_path(path))
            )
    return problems


def checked_run_parameters(
    schema: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    source: str = "<parameters>",
    time_limit: float = PARAMETER_TIME_LIMIT_SECONDS,
) -> dict[str, Any]:
    """A run's parameters checked, defaults filled in, in the form a flow run carries them.

    The one check every way of starting a run makes before the run exists (the API, ``trinity
    run``). ``schema`` is the specification's, or a deployment's (:func:`prefect_parameters_schema`).
    Raises :class:`SpecError` with every problem (:func:`validate_parameters`), or its
    :class:`~specs.schema_limits.ParameterTimeoutError` after ``time_limit`` seconds.
    """
    spec = _spec_form(schema)
    problems = validate_parameters(spec, params, source=source, time_limit=time_limit)
    if problems:
        raise SpecError(problems)
    return prefect_parameters(spec, apply_defaults(spec, params))


def prefect_parameters_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema a workflow's Prefect deployment carries (its run form, checked by Prefect's server).

    It refuses undeclared names (``additionalProperties: false``). When the specification accepts
    them, they are one object property, :data:`EXTRA_PARAMETERS`, holding what the specification
    said of them (``additionalProperties``, ``patternProperties``), because a flow run can only
    carry them that way (see the module's docstring). Secret parameters are masked form fields
    that accept a reference (:func:`specs.secrets.secret_form_schema`).
    """
    result = secret_form_schema(schema)
    if not accepts_undeclared_parameters(schema):
        result["additionalProperties"] = False
        return result
    extra: dict[str, Any] = {
        "title": "Additional parameters",
        "description": "Parameters the specification does not declare, by name.",
        "type": "object",
        "default": {},
        "additionalProperties": result.pop("additionalProperties", False),
        _EXTRA_MARK: True,
    }
    if "patternProperties" in result:
        extra["patternProperties"] = result.pop("patternProperties")
    result["properties"] = {**result.get("properties", {}), EXTRA_PARAMETERS: extra}
    result["additionalProperties"] = False
    return result


def _spec_form(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The specification's schema back from :func:`prefect_parameters_schema` (others unchanged)."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return schema
    extra = properties.get(EXTRA_PARAMETERS)
    if not (isinstance(extra, Mapping) and extra.get(_EXTRA_MARK) is True):
        return schema
    spec = {key: value for key, value in schema.items() if key != "additionalProperties"}
    spec["properties"] = {name: value for name, value in properties.items() if name != EXTRA_PARAMETERS}
    spec["additionalProperties"] = extra.get("additionalProperties", False)
    if "patternProperties" in extra:
        spec["patternProperties"] = extra["patternProperties"]
    return spec


def prefect_parameters(schema: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as a flow run of the workflow carries them in Prefect.

    Declared names stay at the top level; undeclared ones (accepted by the schema: check first
    with :func:`validate_parameters`) move under :data:`EXTRA_PARAMETERS`.
    """
    spec = _spec_form(schema)
    if not accepts_undeclared_parameters(spec):
        return dict(params)
    declared = declared_parameters(spec)
    result = {name: value for name, value in params.items() if name in declared}
    extra = {name: value for name, value in params.items() if name not in declared}
    if extra:
        result[EXTRA_PARAMETERS] = extra
    return result


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
