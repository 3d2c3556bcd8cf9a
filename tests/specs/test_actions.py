"""Action input models, and actions added through the ``trinity.actions`` entry-point group."""

from __future__ import annotations

import pytest

from specs.actions import (
    BUILTIN_ACTIONS,
    HttpInputs,
    WorkflowInputs,
    action_inputs_model,
    action_load_error,
    action_names,
    input_problems,
    refresh_actions,
)
from tests.specs.helpers import only, problems, workflow_text
from tests.support.plugins import plugin

__all__ = ["plugin"]


def test_builtins_are_known() -> None:
    assert set(BUILTIN_ACTIONS) == {"python", "shell", "http", "sql", "workflow", "noop", "sleep"}
    assert action_inputs_model("http") is HttpInputs
    assert action_inputs_model("nope") is None


def test_http_defaults_and_aliases() -> None:
    inputs = HttpInputs.model_validate({"url": "https://x.test/a", "method": "post", "json": {"a": 1}})
    assert (inputs.method, inputs.json_, inputs.expect_status, inputs.timeout_seconds) == (
        "POST",
        {"a": 1},
        None,
        30.0,
    )


def test_http_refuses_json_and_body_together() -> None:
    found = input_problems(HttpInputs, {"url": "http://x.test", "json": {}, "body": "x"})
    assert found == [((), "give either 'json' or 'body', not both")]


def test_union_errors_collapse_into_one() -> None:
    found = input_problems(HttpInputs, {"url": "http://x.test", "expect_status": ["ok"]})
    assert found == [(("expect_status",), "invalid expect_status ['ok']: expected int | list[int] | None")]


def test_expression_values_are_not_type_checked() -> None:
    data = {
        "url": "${{ params.base }}/x",
        "expect_status": "${{ params.code }}",
        "headers": "${{ params.h }}",
    }
    assert input_problems(HttpInputs, data) == []


def test_workflow_inputs_check_the_version_range() -> None:
    found = input_problems(WorkflowInputs, {"name": "child", "version": "^^1"})
    assert found[0][0] == ("version",)


def test_with_must_be_a_mapping() -> None:
    assert input_problems(HttpInputs, ["x"])[0][1] == "'with' must be a mapping, got list"


@pytest.mark.usefixtures("plugin")
def test_entry_point_actions_are_discovered_and_checked() -> None:
    assert "notify" in action_names()
    model = action_inputs_model("notify")
    assert model is not None
    assert model.__name__ == "Inputs"
    text = workflow_text(
        "- {id: a, uses: notify, with: {channel: ops}}\n- {id: b, uses: notify, with: {chanel: x}}"
    )
    found = problems(text)
    assert only(found, "unknown input 'chanel'").json_path == "$.tasks[1].with.chanel"
    assert only(found, "missing required input 'channel'").json_path == "$.tasks[1].with.channel"


@pytest.mark.usefixtures("plugin")
def test_broken_entry_point_is_reported_on_the_task() -> None:
    reason = action_load_error("broken")
    assert reason is not None
    assert "failed to load" in reason
    problem = only(problems(workflow_text("- {id: a, uses: broken}")), "failed to load")
    assert problem.json_path == "$.tasks[0].uses"


def test_without_the_plugin_its_action_is_unknown() -> None:
    refresh_actions()
    assert "notify" not in action_names()
