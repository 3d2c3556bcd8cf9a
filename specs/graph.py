"""Draw a workflow's DAG as Mermaid or Graphviz DOT text.

Fan-out tasks (``for_each``) and conditional tasks (``if``) are marked with their own shape and a
note in the label; edges from a conditional task are dashed (its dependants are skipped with it).
"""

from __future__ import annotations

import json
import re

from specs.models import Task, Workflow

_MERMAID_SAFE = re.compile(r"[^A-Za-z0-9_]")


def _note(task: Task) -> str:
    notes = []
    if task.for_each is not None:
        notes.append("for each")
    if task.if_ is not None:
        notes.append("if")
    return f" [{', '.join(notes)}]" if notes else ""


def _mermaid_id(task_id: str) -> str:
    # Mermaid ids cannot hold '-'; keep them unique by escaping instead of dropping.
    return "t_" + _MERMAID_SAFE.sub(lambda m: f"_{ord(m.group(0)):x}_", task_id)


def _mermaid_label(task: Task) -> str:
    label = f"{task.id}<br/>{task.uses}{_note(task)}"
    return '"' + label.replace('"', "#quot;") + '"'


def to_mermaid(workflow: Workflow) -> str:
    """Mermaid flowchart: ``[[...]]`` for fan-out, ``{{...}}`` for conditional tasks."""
    lines = ["flowchart TD"]
    for task in workflow.tasks:
        node, label = _mermaid_id(task.id), _mermaid_label(task)
        if task.if_ is not None:
            lines.append(f"    {node}{{{{{label}}}}}")
        elif task.for_each is not None:
            lines.append(f"    {node}[[{label}]]")
        else:
            lines.append(f"    {node}[{label}]")
    for dep, task_id, after_condition in _edges(workflow):
        arrow = "-.->" if after_condition else "-->"
        lines.append(f"    {_mermaid_id(dep)} {arrow} {_mermaid_id(task_id)}")
    fan_out = [_mermaid_id(t.id) for t in workflow.tasks if t.for_each is not None]
    if fan_out:
        lines.append("    classDef fanout fill:#e8f0fe,stroke:#3367d6")
        lines.append(f"    class {','.join(fan_out)} fanout")
    if any(task.if_ is not None for task in workflow.tasks):
        lines.append("    classDef conditional fill:#fff4e5,stroke:#e8710a,stroke-dasharray:4 2")
        ids = [_mermaid_id(t.id) for t in workflow.tasks if t.if_ is not None]
        lines.append(f"    class {','.join(ids)} conditional")
    return "\n".join(lines) + "\n"


def _edges(workflow: Workflow) -> list[tuple[str, str, bool]]:
    """Every ``needs`` edge as (upstream, task, whether the upstream is conditional): drawn dashed."""
    conditional = {task.id for task in workflow.tasks if task.if_ is not None}
    return [(dep, task.id, dep in conditional) for task in workflow.tasks for dep in task.needs]


def _dot_quote(text: str) -> str:
    return json.dumps(text)


def to_dot(workflow: Workflow) -> str:
    """Graphviz DOT: fan-out tasks are 3-D boxes, conditional tasks diamonds with dashed edges out."""
    lines = [f"digraph {_dot_quote(workflow.name)} {{", "    rankdir=TB;", "    node [shape=box];"]
    for task in workflow.tasks:
        label = task.id + "\n" + task.uses + _note(task)
        attrs = [f"label={_dot_quote(label)}"]
        if task.if_ is not None:
            attrs.append("shape=diamond")
            attrs.append(f"tooltip={_dot_quote('if: ' + task.if_)}")
        elif task.for_each is not None:
            attrs.append("shape=box3d")
        lines.append(f"    {_dot_quote(task.id)} [{', '.join(attrs)}];")
    for dep, task_id, after_condition in _edges(workflow):
        style = " [style=dashed]" if after_condition else ""
        lines.append(f"    {_dot_quote(dep)} -> {_dot_quote(task_id)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"
