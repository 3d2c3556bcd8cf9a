"""Pydantic validation errors -> located, readable problems.

Each error's ``loc`` is mapped back to the document's node (so every problem has a line and column),
unknown keys get a close-match suggestion, and the branches of a union collapse into one message.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from specs.errors import Problem
from specs.models import DASK_ADDRESS_PATTERN, NAME_PATTERN, SEMVER_PATTERN, TASK_ID_PATTERN
from specs.positions import PathParts, RawDocument, existing_path

_PATTERN_HINTS = {
    NAME_PATTERN: "invalid name {input!r}: use lower-case letters, digits, '.', '_' and '-', "
    "starting and ending with a letter or digit",
    SEMVER_PATTERN: "invalid semantic version {input!r} (expected MAJOR.MINOR.PATCH, e.g. 1.2.0)",
    TASK_ID_PATTERN: "invalid task id {input!r}: start with a letter or '_', then letters, digits, "
    "'_' or '-' (at most 128)",
    DASK_ADDRESS_PATTERN: "invalid Dask scheduler address {input!r} (expected tcp://host:port, port 1-65535)",
}


def suggest(word: str, candidates: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, Union, list, dict, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, dict, tuple):
        for arg in typing.get_args(annotation):
            found.extend(_models_in(arg))
    return found


def field_names(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts (aliases where set)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: PathParts) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        info = next(
            (f for n, f in current.model_fields.items() if part in (n, f.alias)),
            None,
        )
        if info is None:
            return None
        models = _models_in(info.annotation)
        current = models[0] if models else None
    return current


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain_message(error: Mapping[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.split(", unable to parse")[0]
    message = message[:1].lower() + message[1:]
    value = error.get("input")
    if error["type"] not in ("value_error", "model_type", "dict_type") and isinstance(
        value, str | int | float | bool | type(None)
    ):
        message += f", got {_short(value)}"
    return message


def _message(model: type[BaseModel], error: Mapping[str, Any], loc: PathParts) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = _model_at(model, loc[:-1])
        hint = suggest(key, field_names(parent)) if parent else ""
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return f"missing required key '{loc[-1]}'"
    if kind == "string_pattern_mismatch":
        pattern_hint = _PATTERN_HINTS.get(str(error.get("ctx", {}).get("pattern")))
        if pattern_hint:
            return pattern_hint.format(input=error["input"])
    if kind == "string_type" and loc and loc[-1] == "version" and isinstance(error["input"], int | float):
        return _PATTERN_HINTS[SEMVER_PATTERN].format(input=error["input"])
    if kind == "model_type" or kind == "dict_type":
        return f"expected a mapping, got {type(error['input']).__name__}"
    return _plain_message(error)


def model_problems(doc: RawDocument, model: type[BaseModel], exc: ValidationError) -> list[Problem]:
    """Every error of one model validation as a located :class:`~specs.errors.Problem`."""
    found: dict[tuple[PathParts, str], Problem] = {}
    unions: dict[PathParts, list[str]] = {}
    for error in exc.errors():
        loc: PathParts = tuple(p for p in error["loc"] if isinstance(p, str | int))
        path = existing_path(doc.data, loc)
        kind = error["type"]
        surplus = len(loc) - len(path) - (1 if kind == "missing" else 0)
        if surplus > 0 and kind != "extra_forbidden":
            # Parts of loc beyond the data are union branch tags, e.g. ('float',) or ('list[...]',).
            unions.setdefault(path, []).append(_plain_message(error).split(", got ")[0])
            continue
        where = loc if kind == "missing" else path
        message = _message(model, error, loc)
        found.setdefault((where, message), doc.problem(where, message, key=kind == "extra_forbidden"))
    for path, messages in unions.items():
        value = _value_at(doc.data, path)
        alternatives = "; or ".join(dict.fromkeys(messages))
        message = f"invalid value {_short(value)}: {alternatives}"
        found.setdefault((path, message), doc.problem(path, message))
    return list(found.values())


def _value_at(data: Any, path: PathParts) -> Any:
    value = data
    for part in path:
        value = value[part]
    return value
