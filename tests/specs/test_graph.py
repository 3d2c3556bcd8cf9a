"""Mermaid and DOT drawings of a workflow's DAG."""

from __future__ import annotations

from specs.graph import to_dot, to_mermaid
from specs.models import Workflow


def workflow() -> Workflow:
    return Workflow.model_validate(
        {
            "kind": "Workflow",
            "name": "g",
            "version": "1.0.0",
            "spec": {"name": "g", "version": "^1"},
            "tasks": [
                {"id": "start", "uses": "noop"},
                {
                    "id": "fan-out",
                    "uses": "python",
                    "needs": ["start"],
                    "for_each": [1, 2],
                    "with": {"callable": "m:f"},
                },
                {"id": "maybe", "uses": "noop", "needs": ["start"], "if": "params.x"},
                {"id": "end", "uses": "noop", "needs": ["fan-out", "maybe"]},
            ],
        }
    )


def test_mermaid_marks_fan_out_and_conditional_tasks() -> None:
    text = to_mermaid(workflow())
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    t_fan_2d_out[["fan-out<br/>python [for each]"]]' in lines
    assert '    t_maybe{{"maybe<br/>noop [if]"}}' in lines
    assert "    t_start --> t_fan_2d_out" in lines
    assert "    t_maybe -.-> t_end" in lines
    assert "    class t_fan_2d_out fanout" in lines


def test_dot_marks_fan_out_and_conditional_tasks() -> None:
    text = to_dot(workflow())
    assert text.startswith('digraph "g" {')
    assert '"fan-out" [label="fan-out\\npython [for each]", shape=box3d];' in text
    assert "shape=diamond" in text
    assert '"maybe" -> "end" [style=dashed];' in text
    assert '"start" -> "fan-out";' in text
