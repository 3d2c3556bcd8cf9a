"""The action library: built-ins plus actions from the ``trinity.actions`` entry-point group.

A plugin's entry point loads an object with ``name``, ``inputs`` (pydantic model) and
``run(inputs, context)``; see :mod:`flows.actions.base` for the context it receives.
"""

from __future__ import annotations

import importlib.metadata

from flows.actions.base import Action, ActionContext, ActionError, ActionInputError, ActionTimeoutError, Usage
from flows.actions.basic import NoopAction, SleepAction
from flows.actions.http import HttpAction
from flows.actions.python import PythonAction
from flows.actions.shell import ShellAction
from flows.actions.sql import SqlAction
from flows.actions.workflow import WorkflowAction
from specs.actions import ENTRY_POINT_GROUP

__all__ = [
    "Action",
    "ActionContext",
    "ActionError",
    "ActionInputError",
    "ActionTimeoutError",
    "UnknownActionError",
    "Usage",
    "builtin_actions",
    "resolve_action",
]


class UnknownActionError(LookupError):
    """No built-in or installed action has this name, or the plugin cannot run."""


def builtin_actions() -> dict[str, Action]:
    """Fresh instances of the built-in actions, by name."""
    actions: list[Action] = [
        PythonAction(),
        ShellAction(),
        HttpAction(),
        SqlAction(),
        WorkflowAction(),
        NoopAction(),
        SleepAction(),
    ]
    return {action.name: action for action in actions}


def resolve_action(name: str) -> Action:
    """The action called ``name``: a built-in, else the entry point of that name."""
    builtins = builtin_actions()
    if name in builtins:
        return builtins[name]
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name != name:
            continue
        try:
            action = entry_point.load()
        except Exception as exc:
            raise UnknownActionError(
                f"action '{name}' ({entry_point.value}) failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        if not callable(getattr(action, "run", None)) or not hasattr(action, "inputs"):
            raise UnknownActionError(f"action '{name}' ({entry_point.value}) has no 'run' or 'inputs'")
        return action  # type: ignore[no-any-return]
    raise UnknownActionError(f"unknown action '{name}'")
