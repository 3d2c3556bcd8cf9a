"""Workflow documents for tests that only care about the tasks."""

from __future__ import annotations


def spec_and_workflow(name: str, tasks: str, *, version: str = "1.0.0") -> str:
    """A minimal Specification plus a Workflow named ``name``; ``tasks`` is the ``tasks:`` block's body."""
    return (
        f"kind: Specification\nname: {name}\nversion: 1.0.0\n---\n"
        f"kind: Workflow\nname: {name}\nversion: {version}\nspec: {{name: {name}, version: ^1.0.0}}\n"
        f"tasks:\n{tasks}"
    )
