"""How workflows are named in Prefect, and the names Trinity keeps for its own flows."""

from __future__ import annotations

import pytest

from specs.naming import (
    RESERVED_FLOW_NAMES,
    deployment_full_name,
    flow_name_for,
    legacy_deployment_full_name,
    run_tags,
    workflow_from_tags,
)
from tests.specs.helpers import SPEC, only, problems


def test_a_workflow_is_its_own_flow_with_one_stable_deployment() -> None:
    assert flow_name_for("sales.daily") == "sales.daily"
    assert deployment_full_name("sales.daily") == "sales.daily/trinity"
    assert legacy_deployment_full_name("sales.daily") == "trinity-workflow/sales.daily"


def test_run_tags_name_the_workflow() -> None:
    tags = run_tags("hello")

    assert tags == ["trinity", "workflow:hello"]
    assert workflow_from_tags(["other", *tags]) == "hello"
    assert workflow_from_tags(["trinity", "workflow:"]) is None
    assert workflow_from_tags(None) is None


@pytest.mark.parametrize("name", sorted(RESERVED_FLOW_NAMES))
def test_trinitys_own_flow_names_are_refused_as_workflow_names(name: str) -> None:
    text = SPEC + f"---\nkind: Workflow\nname: {name}\nversion: 1.0.0\n"
    text += "spec: {name: demo, version: ^1.0.0}\ntasks:\n  - {id: a, uses: noop}\n"

    problem = only(problems(text), "is reserved")

    assert problem.json_path == "$.name"
    assert problem.line == 11  # the name line of the workflow, after the 8-line specification and ---
