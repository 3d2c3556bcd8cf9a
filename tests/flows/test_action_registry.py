"""The executor's actions come from the same plugin registry validation uses (specs.actions)."""

from __future__ import annotations

import pytest

from flows.actions import UnknownActionError, resolve_action
from flows.actions.basic import NoopAction
from specs.actions import action_inputs_model, plugin_action
from tests.support.plugins import plugin

__all__ = ["plugin"]


def test_builtins_resolve_without_the_registry() -> None:
    assert isinstance(resolve_action("noop"), NoopAction)


@pytest.mark.usefixtures("plugin")
def test_a_plugin_is_loaded_once_for_validation_and_execution() -> None:
    action = resolve_action("echo")

    assert action is plugin_action("echo")
    assert action.inputs is action_inputs_model("echo")


@pytest.mark.usefixtures("plugin")
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("notify", "action 'notify' has no 'run'"),
        ("broken", "action 'broken' (trinity_test_plugin:missing) failed to load: AttributeError"),
        ("nope", "unknown action 'nope'"),
    ],
)
def test_unusable_plugins_are_named(name: str, message: str) -> None:
    with pytest.raises(UnknownActionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_action(name)
