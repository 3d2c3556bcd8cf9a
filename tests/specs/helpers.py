"""Factories for spec tests: small documents as text, and problem lookups."""

from __future__ import annotations

import textwrap

from specs.errors import Problem, SpecError
from specs.loader import load_text

SPEC = """\
kind: Specification
name: demo
version: 1.0.0
parameters:
  type: object
  properties:
    day: {type: string}
    limit: {type: integer, default: 10}
"""


def workflow_text(tasks: str, *, header: str = "", spec_range: str = "^1.0.0") -> str:
    """A Specification plus a Workflow whose ``tasks:`` block is ``tasks`` (dedented).

    Without a header, ``tasks:`` is line 14 and ``tasks[0]`` starts on line 15.
    """
    body = textwrap.dedent(tasks).strip("\n")
    indented = textwrap.indent(body, "  ")
    return (
        SPEC
        + "---\n"
        + "kind: Workflow\n"
        + "name: demo\n"
        + "version: 1.0.0\n"
        + f"spec: {{name: demo, version: '{spec_range}'}}\n"
        + textwrap.dedent(header)
        + "tasks:\n"
        + indented
        + "\n"
    )


def problems(text: str, **kwargs: object) -> list[Problem]:
    """All problems :func:`load_text` reports for ``text`` (empty when it loads)."""
    try:
        load_text(text, **kwargs)  # type: ignore[arg-type]
    except SpecError as exc:
        return exc.problems
    return []


def only(found: list[Problem], fragment: str) -> Problem:
    """The single problem whose message contains ``fragment``."""
    matching = [p for p in found if fragment in p.message]
    assert len(matching) == 1, f"expected one problem with {fragment!r}, got {[p.format() for p in found]}"
    return matching[0]
