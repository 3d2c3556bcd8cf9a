"""The action library: built-ins plus actions from the ``trinity.actions`` entry-point group.

A plugin's entry point loads an object with ``name``, ``inputs`` (pydantic model) and
``run(inputs, context)``; see :mod:`flows.actions.base` for the context it receives. Plugins are
found and loaded by the one registry in :mod:`specs.actions`, which validation uses too.
"""

from __future__ import annotations

from flows.actions.base import Action, ActionContext, ActionError, ActionInputError, ActionTimeoutError, Usage
from flows.actions.basic import NoopAction, SleepAction
from flows.actions.http import HttpAction
from flows.actions.python import PythonAction
from flows.actions.shell import ShellAction
from flows.actions.sql import SqlAction
from flows.actions.workflow import WorkflowAction
from specs.actions import UnknownActionError, plugin_action

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
    """The action called ``name``: a built-in, else the plugin of that name (UnknownActionError)."""
    builtins = builtin_actions()
    if name in builtins:
        return builtins[name]
    action = plugin_action(name)
    if not callable(getattr(action, "run", None)):
        raise UnknownActionError(f"action '{name}' has no 'run'")
    return action  # type: ignore[no-any-return]
