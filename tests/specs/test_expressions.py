"""The ${{ }} language: native values, rendering, strict names, the sandbox and its bounds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specs.expressions import (
    ExpressionError,
    analyze,
    bare_expression,
    evaluate,
    evaluate_condition,
    evaluate_items,
    find_expressions,
    has_expression,
    render,
    whole_expression,
)


def context(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "params": {"day": "2024-01-31", "limit": 3, "regions": ["emea", "apac"]},
        "tasks": {"extract": {"output": {"items": [1, 2, 3], "count": 3}}},
        "run": {"id": "r-1", "name": "brave-fox", "scheduled_time": "2024-01-31T02:00:00Z"},
    }
    base.update(extra)
    return base


def test_whole_expression_keeps_native_type() -> None:
    assert render("${{ params.limit }}", context()) == 3
    assert render("  ${{ tasks.extract.output.items }} ", context()) == [1, 2, 3]
    assert render("${{ params.limit > 2 }}", context()) is True


def test_embedded_expressions_render_text() -> None:
    assert render("day=${{ params.day }} n=${{ params.limit }}", context()) == "day=2024-01-31 n=3"
    assert render("${{ tasks.extract.output.items }}!", context()) == "[1, 2, 3]!"
    assert render("${{ none }}-${{ true }}", context()) == "-true"


def test_render_walks_dicts_and_lists() -> None:
    value = {"a": ["${{ params.limit }}", {"b": "x${{ run.id }}"}], "c": 5}
    assert render(value, context()) == {"a": [3, {"b": "xr-1"}], "c": 5}


def test_mapping_keys_beat_methods() -> None:
    assert evaluate("tasks.extract.output.items | length", context()) == 3


def test_filters_and_item() -> None:
    assert evaluate("params.regions | map('upper') | join(',')", context()) == "EMEA,APAC"
    assert evaluate("item * 2", context(item=21)) == 42
    assert evaluate("range(3) | list", context()) == [0, 1, 2]
    assert evaluate("'{\"a\": 1}' | fromjson", context()) == {"a": 1}


def test_undefined_names_and_keys_are_errors() -> None:
    with pytest.raises(ExpressionError, match="no attribute 'nope'"):
        evaluate("params.nope", context())
    with pytest.raises(ExpressionError, match="'secret' is undefined"):
        evaluate("secret", context())
    with pytest.raises(ExpressionError, match="no attribute 'missing'"):
        render("${{ tasks.missing.output }}", context())
    with pytest.raises(ExpressionError, match="no attribute 'nope'"):
        evaluate("[params.nope]", context())


def test_syntax_errors_name_the_expression() -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate("params.day +", context())
    assert caught.value.message.startswith("invalid expression 'params.day +'")


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("params.__class__", "unsafe"),
        ("''.__class__.__mro__", "unsafe"),
        ("'{}'.format(params)", "unsafe"),
        ("params.regions.append(1)", "unsafe"),
        ("'a'.center(10)", "unsafe"),
        ("range(100000)", "over the limit"),
        ("'a' * 1000000", "repetition"),
        ("[1] * 1000000", "repetition"),
        ("2 ** 100000", "too large"),
        ("'%99999999d' % 1", "format width"),
        ("range(10000) | map('string') | join('x' * 100000)", "join would build"),
        ("'a' | attr('center')", "unsafe"),
        ("range(10000) | list | tojson(indent=100000)", "indent"),
        ("lipsum(1000)", "undefined"),
        ("cycler(1)", "undefined"),
    ],
)
def test_sandbox_refuses_unsafe_or_unbounded_work(expression: str, reason: str) -> None:
    with pytest.raises(ExpressionError, match=reason):
        evaluate(expression, context())


def test_unknown_filter_is_a_syntax_problem() -> None:
    assert "unknown filter 'shout'" in analyze("params.day | shout").problems


def test_overlong_expression_is_refused() -> None:
    with pytest.raises(ExpressionError, match="limit 2000"):
        evaluate("1 + " * 600 + "1", context())


def test_analyze_lists_references() -> None:
    refs = analyze("tasks.a.output.x + tasks['b-c'].output | length if params.limit else item.y")
    assert refs.tasks == {"a", "b-c"}
    assert refs.params == {"limit"}
    assert refs.uses_item
    assert refs.problems == ()


def test_analyze_flags_malformed_task_reads() -> None:
    assert analyze("tasks[params.x].output").problems[0].startswith("read tasks by a literal id")
    assert "exposes only" in analyze("tasks.a").problems[0]
    assert "tasks.<id>.output" in analyze("tasks | length").problems[0]
    assert "run has no field 'when'" in analyze("run.when").problems[0]


def test_find_and_whole_expression() -> None:
    assert find_expressions("a ${{ x }} b ${{ y }}") == [" x ", " y "]
    assert whole_expression(" ${{ x }} ") == " x "
    assert whole_expression("${{ x }} ${{ y }}") is None
    with pytest.raises(ExpressionError, match="unclosed"):
        find_expressions("a ${{ x")
    assert has_expression({"a": ["b", "${{ c }}"]})
    assert not has_expression({"a": ["b", 1]})


def test_bare_expression_for_if_and_for_each() -> None:
    assert bare_expression("${{ params.limit }}") == " params.limit "
    assert bare_expression("params.limit > 1") == "params.limit > 1"
    with pytest.raises(ExpressionError, match="single expression"):
        bare_expression("x ${{ params.limit }}")


def test_evaluate_condition_and_items() -> None:
    assert evaluate_condition("${{ params.limit > 2 }}", context()) is True
    assert evaluate_condition("params.limit > 5", context()) is False
    assert evaluate_items("${{ params.regions }}", context()) == ["emea", "apac"]
    assert evaluate_items(["${{ params.day }}", 2], context()) == ["2024-01-31", 2]
    with pytest.raises(ExpressionError, match="must give a list"):
        evaluate_items("params.limit", context())


@given(st.integers(min_value=-(10**6), max_value=10**6), st.integers(min_value=-(10**6), max_value=10**6))
def test_arithmetic_matches_python(a: int, b: int) -> None:
    ctx = context(item={"a": a, "b": b})
    assert evaluate("item.a + item.b * 2 - item.a // 3", ctx) == a + b * 2 - a // 3


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c, max_size=4)))
def test_whole_expression_returns_the_value_unchanged(value: Any) -> None:
    assert render("${{ item }}", context(item=value)) == value


@given(st.text().filter(lambda s: "${{" not in s))
def test_text_without_expressions_is_left_alone(text: str) -> None:
    assert render(text, context()) == text


@pytest.mark.parametrize(
    "expression",
    ["[" * 150 + "]" * 150, "(" * 300 + "1" + ")" * 300, "not " * 400 + "1", "1" + "+1" * 900, "a.b" * 600],
    ids=["lists", "parens", "nots", "sums", "attributes"],
)
def test_deeply_nested_expressions_fail_cleanly(expression: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(expression, context(a={}))


@given(st.text(max_size=200))
def test_any_text_evaluates_or_raises_expression_error(text: str) -> None:
    messages = []
    for attempt in (lambda: evaluate(text, context(item=1)), lambda: analyze(text)):
        try:
            attempt()
        except ExpressionError as exc:
            messages.append(exc.message)
    assert all(messages)
