"""Whatever the input, loading ends in documents or a SpecError: never another exception."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specs.errors import SpecError
from specs.loader import load_text

KEYS = [
    "kind",
    "name",
    "version",
    "spec",
    "tasks",
    "id",
    "uses",
    "with",
    "needs",
    "if",
    "for_each",
    "schedule",
    "cron",
    "parameters",
    "retries",
    "url",
    "seconds",
    "output",
    "callable",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=5),
    st.sampled_from(
        [
            "Workflow",
            "Specification",
            "noop",
            "http",
            "a",
            "b",
            "1.0.0",
            "^1.0.0",
            "demo",
            "${{ tasks.a.output }}",
            "${{ params.x",
            "${{ item }}",
            "* * * * *",
            "${{ 1 +",
        ]
    ),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS), children, max_size=5)
    ),
    max_leaves=30,
)


def outcome(text: str, **kwargs: Any) -> str:
    problems = []
    try:
        load_text(text, **kwargs)
    except SpecError as exc:
        problems = exc.problems
        failed = True
    else:
        failed = False
    assert not failed or problems
    assert all(p.message for p in problems)
    return "problems" if failed else "ok"


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    outcome(text, source="fuzz.yaml")
    outcome(text, source="fuzz.json", content_type="application/json")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(VALUES, min_size=1, max_size=3))
def test_any_structure(documents: list[Any]) -> None:
    outcome(yaml.safe_dump_all(documents), source="fuzz.yaml")
    outcome(json.dumps(documents), source="fuzz.json")


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "id": st.sampled_from(["a", "b", "c", "d"]),
                "uses": st.sampled_from(["noop", "sleep", "http", "x"]),
            },
            optional={
                "needs": st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=3),
                "with": st.dictionaries(st.sampled_from(KEYS), SCALARS, max_size=3),
                "if": SCALARS,
                "for_each": VALUES,
            },
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_workflow(tasks: list[dict[str, Any]]) -> None:
    document = {
        "kind": "Workflow",
        "name": "fuzz",
        "version": "1.0.0",
        "spec": {"name": "fuzz", "version": "^1"},
        "tasks": tasks,
    }
    outcome(yaml.safe_dump(document), source="fuzz.yaml")
