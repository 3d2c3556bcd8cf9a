"""Documents shared by the security tests: the workflows the attacks were found with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ATTACK = "x; id > pwned.txt"


def one_task_documents(
    name: str, parameter: str, task: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A specification ``name`` with one required string parameter, and a workflow of one task."""
    spec = {
        "kind": "Specification",
        "name": name,
        "version": "1.0.0",
        "parameters": {
            "type": "object",
            "properties": {parameter: {"type": "string"}},
            "required": [parameter],
        },
    }
    workflow = {
        "kind": "Workflow",
        "name": name,
        "version": "1.0.0",
        "spec": {"name": name, "version": "^1.0.0"},
        "tasks": [task],
    }
    return spec, workflow


def documents(script: str, workdir: Path) -> list[dict[str, Any]]:
    """``greet``: ``sh -c SCRIPT`` in ``workdir``, with the parameter ``name``."""
    task = {"id": "hello", "uses": "shell", "with": {"argv": ["sh", "-c", script], "cwd": str(workdir)}}
    return list(one_task_documents("greet", "name", task))
