"""Proposed document changes as edits, and as unified diffs of the YAML a user can apply.

Both sides of a diff are ``yaml.safe_dump`` of the document (keys in the user's order), so the diff
applies to the canonical YAML of the stored document; :func:`apply_unified_diff` applies it.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml


class _Remove:
    """Marker value: delete the key."""

    def __repr__(self) -> str:
        return "REMOVE"


REMOVE = _Remove()


@dataclass(frozen=True)
class Edit:
    """Set (or with ``REMOVE`` delete) ``path`` inside task ``task_id``, or inside the document root
    when ``task_id`` is None. Missing intermediate mappings are created."""

    task_id: str | None
    path: tuple[str, ...]
    value: Any

    def describe(self) -> str:
        """``tasks.<id>.key`` style location, for evidence and tables."""
        where = ".".join(self.path)
        return where if self.task_id is None else f"tasks.{self.task_id}.{where}"


class DiffError(ValueError):
    """A unified diff does not apply to the given text."""


def apply_edits(document: Mapping[str, Any], edits: Sequence[Edit]) -> dict[str, Any]:
    """A deep copy of ``document`` with the edits applied in order."""
    doc: dict[str, Any] = copy.deepcopy(dict(document))
    for edit in edits:
        target: dict[str, Any] = doc if edit.task_id is None else _task(doc, edit.task_id)
        for key in edit.path[:-1]:
            child = target.get(key)
            if not isinstance(child, dict):
                child = {}
                target[key] = child
            target = child
        if edit.value is REMOVE:
            target.pop(edit.path[-1], None)
        else:
            target[edit.path[-1]] = copy.deepcopy(edit.value)
    return doc


def _task(doc: dict[str, Any], task_id: str) -> dict[str, Any]:
    for task in doc.get("tasks") or []:
        if isinstance(task, dict) and str(task.get("id")) == task_id:
            return task
    raise KeyError(f"no task {task_id!r} in workflow {doc.get('name')!r}")


def dump_yaml(document: Mapping[str, Any]) -> str:
    """The canonical YAML of a document (keys in their order, block style)."""
    return yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False, allow_unicode=True)


def unified_yaml_diff(before: Mapping[str, Any], after: Mapping[str, Any], *, name: str) -> str:
    """Unified diff between the YAML of two documents, with ``a/<name>.yaml`` / ``b/<name>.yaml``."""
    lines = difflib.unified_diff(
        dump_yaml(before).splitlines(keepends=True),
        dump_yaml(after).splitlines(keepends=True),
        fromfile=f"a/{name}.yaml",
        tofile=f"b/{name}.yaml",
    )
    return "".join(lines)


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def apply_unified_diff(text: str, diff: str) -> str:
    """Apply a unified diff (as made by :func:`unified_yaml_diff`) to ``text``.

    Context and removed lines must match exactly; otherwise :class:`DiffError` says which line.
    """
    source = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    lines = diff.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        match = _HUNK.match(lines[i])
        if not match:
            i += 1
            continue
        start = int(match.group(1)) - (0 if match.group(2) == "0" else 1)
        if start < pos:
            raise DiffError(f"hunk at diff line {i + 1} overlaps the previous one")
        out.extend(source[pos:start])
        pos = start
        i += 1
        while i < len(lines) and not lines[i].startswith("@@"):
            line = lines[i]
            tag, body = line[:1], line[1:]
            if tag in (" ", "-"):
                if pos >= len(source) or source[pos] != body:
                    raise DiffError(f"diff line {i + 1} does not match line {pos + 1} of the document")
                if tag == " ":
                    out.append(body)
                pos += 1
            elif tag == "+":
                out.append(body)
            elif not line.startswith("\\"):
                break
            i += 1
    out.extend(source[pos:])
    return "".join(out)
