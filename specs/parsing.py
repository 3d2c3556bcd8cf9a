"""Text -> raw documents with the line and column of every key and value, under hard limits.

YAML goes through libyaml's event stream (PyYAML's C parser when present) and is built here without
recursion, so limits are enforced while reading, before anything is expanded:

* text size (:data:`MAX_TEXT_BYTES`), nesting depth (:data:`MAX_DEPTH`),
* alias uses (:data:`MAX_ALIASES`) and nodes after alias expansion (:data:`MAX_NODES`) -- an alias
  bomb is refused while it is read, and recursive aliases are refused outright.

Scalars follow PyYAML's safe loader with two deliberate differences: mapping keys are always the
text written (``on:`` is the key ``"on"``, not ``True``), and dates stay strings. Duplicate keys are
problems. A syntax error ends only the document it is in: reading resumes at the next ``---``.
JSON is parsed by :mod:`json` (exact JSON semantics); the same event pass supplies positions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import yaml

from specs.errors import Problem
from specs.positions import PathParts, Positions, RawDocument
from specs.yaml_events import MAX_ALIASES, MAX_DEPTH, MAX_NODES, Builder, FatalError

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_TEXT_BYTES",
    "PathParts",
    "Positions",
    "RawDocument",
    "iter_strings",
    "read_json",
    "read_text",
    "read_yaml",
]

MAX_TEXT_BYTES = 5 * 1024 * 1024

_BRACKETS = re.compile(r"[\[\]{}]")
_BRACKET_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}
# Far above MAX_DEPTH so brackets inside strings never trip it; the exact limit is applied while reading.
MAX_BRACKET_DEPTH = 1_000
_SEPARATOR = re.compile(r"^---(?:[ \t].*)?$", re.MULTILINE)


def _next_document_line(text: str, error_line: int) -> int | None:
    """0-based index of the first ``---`` line at or after ``error_line`` (never line 0), or None."""
    for match in _SEPARATOR.finditer(text):
        line = text.count("\n", 0, match.start())
        if line >= error_line and line > 0:
            return line
    return None


def _syntax_problem(source: str, exc: yaml.YAMLError, line_offset: int) -> tuple[Problem, int | None]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    if mark is None:
        return Problem(source, None, None, message, "$"), None
    return Problem(source, mark.line + 1 + line_offset, mark.column + 1, message, "$"), mark.line


def _bracket_depth(text: str) -> int:
    """An upper bound of flow nesting (brackets in strings counted too); cheap when there are few."""
    deltas = map(_BRACKET_DELTA.__getitem__, _BRACKETS.findall(text))
    return max(accumulate(deltas, lambda depth, d: max(depth + d, 0)), default=0)


def read_yaml(text: str, *, source: str) -> tuple[list[RawDocument], list[Problem]]:
    """All documents of a YAML text with positions; problems for what could not be read."""
    if _bracket_depth(text) > MAX_BRACKET_DEPTH:
        # libyaml slows down quadratically on very deep flow nesting: refuse before parsing.
        return [], [Problem(source, None, None, f"nested deeper than {MAX_DEPTH} levels; refusing", "$")]
    problems: list[Problem] = []
    documents: list[RawDocument] = []
    counters = {"nodes": 0, "aliases": 0}
    offset = 0
    remaining = text
    while True:
        builder = Builder(source, offset, counters)
        try:
            builder.run(remaining)
            resume = None
        except yaml.YAMLError as exc:
            problem, error_line = _syntax_problem(source, exc, offset)
            problems.append(problem)
            resume = _next_document_line(remaining, error_line) if error_line is not None else None
        except FatalError as fatal:
            line, col = fatal.mark if fatal.mark else (None, None)
            problems.append(Problem(source, line, col, fatal.message, "$"))
            resume = None
        problems.extend(builder.problems)
        for data, positions in builder.documents:
            documents.append(RawDocument(source, len(documents), data, positions))
        if resume is None:
            break
        cut = _line_start(remaining, resume)
        offset += resume
        remaining = remaining[cut:]
    return documents, problems


def _line_start(text: str, line: int) -> int:
    index = 0
    for _ in range(line):
        index = text.index("\n", index) + 1
    return index


def _depth_and_size(value: Any) -> tuple[int, int]:
    deepest, nodes = 0, 0
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        nodes += 1
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            todo.extend((child, depth + 1) for child in children)
    return deepest, nodes


def _json_positions(text: str, source: str) -> tuple[Positions, list[Problem]]:
    try:
        documents, problems = read_yaml(text, source=source)
    except RecursionError:
        return Positions(), []
    duplicates = [p for p in problems if p.message.startswith("duplicate key")]
    return (documents[0].positions if documents else Positions()), duplicates


def _split_positions(positions: Positions, index: int) -> Positions:
    part = Positions()
    for store, target in ((positions.keys, part.keys), (positions.values, part.values)):
        for path, mark in store.items():
            if path and path[0] == index:
                target[path[1:]] = mark
    return part


def read_json(text: str, *, source: str) -> tuple[list[RawDocument], list[Problem]]:
    """A JSON text: one document (an object) or several (an array of objects)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [Problem(source, exc.lineno, exc.colno, f"JSON syntax error: {exc.msg}", "$")]
    except RecursionError:
        return [], [Problem(source, None, None, f"nested deeper than {MAX_DEPTH} levels; refusing", "$")]
    depth, nodes = _depth_and_size(data)
    if depth > MAX_DEPTH + (1 if isinstance(data, list) else 0):
        return [], [Problem(source, None, None, f"nested deeper than {MAX_DEPTH} levels; refusing", "$")]
    if nodes > MAX_NODES:
        return [], [Problem(source, None, None, f"too many values (over {MAX_NODES:,}); refusing", "$")]
    positions, problems = _json_positions(text, source)
    if isinstance(data, list):
        documents = [
            RawDocument(source, i, item, _split_positions(positions, i)) for i, item in enumerate(data)
        ]
        return documents, problems
    return [RawDocument(source, 0, data, positions)], problems


def is_json(source: str, content_type: str | None) -> bool:
    """Whether to read a text as JSON: by content type when given, else by file name."""
    if content_type:
        return "json" in content_type.lower()
    return source.lower().endswith(".json")


def read_text(
    text: str, *, source: str, content_type: str | None = None
) -> tuple[list[RawDocument], list[Problem]]:
    """Read every document of a text (size limit first); never raises for bad input."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_TEXT_BYTES:
        message = f"input is {size:,} bytes, over the limit of {MAX_TEXT_BYTES:,}; refusing"
        return [], [Problem(source, None, None, message, "$")]
    if is_json(source, content_type):
        return read_json(text, source=source)
    return read_yaml(text, source=source)


def iter_strings(value: Any, path: PathParts = ()) -> Iterator[tuple[PathParts, str]]:
    """Every string inside a value, with its path (iterative: depth is bounded by the reader)."""
    todo: list[tuple[PathParts, Any]] = [(path, value)]
    while todo:
        where, item = todo.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            todo.extend(((*where, key), child) for key, child in reversed(list(item.items())))
        elif isinstance(item, list):
            todo.extend(((*where, i), child) for i, child in reversed(list(enumerate(item))))
