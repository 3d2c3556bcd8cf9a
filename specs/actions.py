"""What each action accepts in ``with``: one pydantic model per action.

Built-in actions are declared here; more come from the entry-point group ``trinity.actions``. Each
entry point loads an object with ``.name: str``, ``.inputs: type[BaseModel]`` and ``.run`` (which
the executor calls). This module is the one registry of those plugins, for validation and for the
executor (``flows.actions``): entry points are loaded only when a workflow uses them, once per
process, and a plugin that fails to load is reported against the task that uses it instead of
breaking validation.

Expression strings (``${{ ... }}``) may stand anywhere in ``with``; those values are type-checked
after rendering, at run time, so validation skips them.
"""

from __future__ import annotations

import difflib
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from specs.models import NAME_PATTERN
from specs.positions import existing_path

ENTRY_POINT_GROUP = "trinity.actions"
CALLABLE_PATTERN = (
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)
PathParts = tuple[str | int, ...]


class ActionInputs(BaseModel):
    """Base of every action's inputs: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PythonInputs(ActionInputs):
    """``python``: call ``module:function`` with ``args`` and ``kwargs``; its return value is the output."""

    callable: Annotated[str, Field(pattern=CALLABLE_PATTERN, description="'package.module:function'.")]
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)


class ShellInputs(ActionInputs):
    """``shell``: run a program (no shell parsing); the output is ``{returncode, stdout, stderr}``."""

    argv: Annotated[list[str], Field(min_length=1)]
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    timeout_seconds: Annotated[float, Field(gt=0)] | None = None


class HttpInputs(ActionInputs):
    """``http``: one HTTP request; the output is ``{status, headers, json, text}``."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: Annotated[str, Field(pattern=r"^https?://\S+$", description="http:// or https:// URL.")]
    headers: dict[str, str] = Field(default_factory=dict)
    json_: Any = Field(default=None, alias="json")
    params: dict[str, Any] = Field(default_factory=dict)
    body: str | None = None
    expect_status: int | list[int] | None = Field(
        default=None, description="Accepted status codes; none given means any 2xx."
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_body(self) -> HttpInputs:
        if self.json_ is not None and self.body is not None:
            raise ValueError("give either 'json' or 'body', not both")
        return self


class SqlInputs(ActionInputs):
    """``sql``: run a statement through a SqlAlchemyConnector block; ``fetch`` picks the output rows."""

    block: Annotated[str, Field(min_length=1, max_length=255, description="Connector block name.")]
    statement: Annotated[str, Field(min_length=1)]
    parameters: dict[str, Any] = Field(default_factory=dict)
    fetch: Literal["all", "one", "none"] = "all"


class WorkflowInputs(ActionInputs):
    """``workflow``: run another workflow as a child run and wait; its result is the output."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    parameters: dict[str, Any] = Field(default_factory=dict)
    version: str | None = Field(default=None, description="Version range of the child workflow.")

    @field_validator("version")
    @classmethod
    def _valid_range(cls, value: str | None) -> str | None:
        if value is not None:
            from specs.versions import VersionError, parse_range

            try:
                parse_range(value)
            except VersionError as exc:
                raise ValueError(exc.message) from None
        return value


class NoopInputs(ActionInputs):
    """``noop``: do nothing; ``output`` (optional) is returned as the task output."""

    output: Any = None


class SleepInputs(ActionInputs):
    """``sleep``: wait ``seconds``."""

    seconds: Annotated[float, Field(ge=0, le=24 * 3600)]


BUILTIN_ACTIONS: dict[str, type[BaseModel]] = {
    "python": PythonInputs,
    "shell": ShellInputs,
    "http": HttpInputs,
    "sql": SqlInputs,
    "workflow": WorkflowInputs,
    "noop": NoopInputs,
    "sleep": SleepInputs,
}


class UnknownActionError(LookupError):
    """No built-in or installed action has this name, or its plugin cannot be loaded."""


@dataclass(frozen=True)
class _Plugins:
    names: tuple[str, ...]
    entry_points: dict[str, importlib.metadata.EntryPoint]


@lru_cache(maxsize=1)
def _plugins() -> _Plugins:
    found = {
        ep.name: ep
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if ep.name not in BUILTIN_ACTIONS  # built-ins are declared here; no import needed
    }
    return _Plugins(names=tuple(sorted(found)), entry_points=found)


@lru_cache(maxsize=256)
def _load_plugin(name: str) -> Any:
    """The object a plugin's entry point loads, or a string saying why it could not be loaded."""
    entry_point = _plugins().entry_points[name]
    try:
        action = entry_point.load()
    except Exception as exc:
        return f"action '{name}' ({entry_point.value}) failed to load: {type(exc).__name__}: {exc}"
    inputs = getattr(action, "inputs", None)
    if not (isinstance(inputs, type) and issubclass(inputs, BaseModel)):
        return f"action '{name}' ({entry_point.value}) has no 'inputs' pydantic model"
    return action


def refresh_actions() -> None:
    """Forget loaded entry points (after installing or removing a plugin)."""
    _plugins.cache_clear()
    _load_plugin.cache_clear()


def action_names() -> list[str]:
    """Every known action name: built-ins first, then plugins."""
    return [*BUILTIN_ACTIONS, *_plugins().names]


def plugin_action(name: str) -> Any:
    """The object the ``trinity.actions`` entry point ``name`` loads (it has an ``inputs`` model).

    Loaded once per process (see :func:`refresh_actions`); raises :class:`UnknownActionError`
    when no plugin has that name or it cannot be loaded.
    """
    if name in BUILTIN_ACTIONS or name not in _plugins().entry_points:
        raise UnknownActionError(f"unknown action '{name}'")
    loaded = _load_plugin(name)
    if isinstance(loaded, str):
        raise UnknownActionError(loaded)
    return loaded


def action_inputs_model(name: str) -> type[BaseModel] | None:
    """The inputs model of an action, or None when no action has that name or it fails to load."""
    if name in BUILTIN_ACTIONS:
        return BUILTIN_ACTIONS[name]
    try:
        inputs: type[BaseModel] = plugin_action(name).inputs
    except UnknownActionError:
        return None
    return inputs


def action_load_error(name: str) -> str | None:
    """Why a plugin action could not be loaded, or None."""
    if name in BUILTIN_ACTIONS or name not in _plugins().entry_points:
        return None
    loaded = _load_plugin(name)
    return loaded if isinstance(loaded, str) else None


def _under_expression(data: Any, path: PathParts) -> bool:
    """Whether the value at ``path`` (an existing path) or one of its parents is an expression string."""
    value = data
    for part in path:
        if isinstance(value, str):
            break
        value = value[part]
    return isinstance(value, str) and "${{" in value


def _describe(model: type[BaseModel], field: str) -> tuple[str, str]:
    info = model.model_fields.get(field)
    if info is None:
        for candidate in model.model_fields.values():
            if candidate.alias == field:
                info = candidate
    if info is None:
        return "", ""
    annotation = str(info.annotation).replace("typing.", "")
    return annotation, (info.description or "").rstrip(".")


def _message(model: type[BaseModel], error: Mapping[str, Any]) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        names = [info.alias or name for name, info in model.model_fields.items()]
        close = difflib.get_close_matches(str(loc[-1]), names, n=1)
        return f"unknown input '{loc[-1]}'" + (f"; did you mean '{close[0]}'?" if close else "")
    if kind == "missing":
        return f"missing required input '{loc[-1]}'"
    if kind == "string_pattern_mismatch" and len(loc) == 1:
        _, description = _describe(model, str(loc[0]))
        if description:
            return f"invalid {loc[0]} {error['input']!r}: expected {description}"
    message = str(error["msg"])
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    message = message.split(", unable to parse")[0]
    value = error.get("input")
    if kind != "value_error" and isinstance(value, str | int | float | bool | type(None)):
        message += f", got {value!r}"
    return message[:1].lower() + message[1:]


def input_problems(model: type[BaseModel], data: Any) -> list[tuple[PathParts, str]]:
    """Problems with one task's ``with`` against an action's model, as (path inside with, message).

    Values that are or hold ``${{ }}`` are skipped: their type is known only after rendering.
    """
    if not isinstance(data, Mapping):
        return [((), f"'with' must be a mapping, got {type(data).__name__}")]
    if not data:
        return list(_empty_input_problems(model))  # most tasks of a wide DAG have no inputs
    return _input_problems(model, data)


@lru_cache(maxsize=256)
def _empty_input_problems(model: type[BaseModel]) -> tuple[tuple[PathParts, str], ...]:
    return tuple(_input_problems(model, {}))


def _input_problems(model: type[BaseModel], data: Mapping[str, Any]) -> list[tuple[PathParts, str]]:
    try:
        model.model_validate(dict(data))
    except ValidationError as exc:
        found: dict[PathParts, str] = {}
        unions: set[str] = set()
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if isinstance(part, str | int))
            path = existing_path(data, loc)
            if error["type"] != "missing" and _under_expression(data, path):
                continue
            # A part of loc that is not in the data is a union member's tag, e.g. 'list[int]'.
            surplus = len(loc) - len(path) - (1 if error["type"] == "missing" else 0)
            if surplus > 0 and path and isinstance(path[0], str) and error["type"] != "extra_forbidden":
                unions.add(path[0])
                continue
            key = loc if error["type"] == "missing" else path
            found.setdefault(key, _message(model, error))
        for field in sorted(unions):
            annotation, _ = _describe(model, field)
            found[(field,)] = f"invalid {field} {data[field]!r}: expected {annotation}"
        return list(found.items())
    return []
