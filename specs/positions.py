"""Where things are in a document: line and column of each key and value, by JSON path parts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specs.errors import Problem, json_path

PathParts = tuple[str | int, ...]
Mark = tuple[int, int]


class Positions:
    """Line and column (1-based) of each key and value, by path inside one document."""

    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.keys: dict[PathParts, Mark] = {}
        self.values: dict[PathParts, Mark] = {}

    def locate(self, path: PathParts, *, key: bool = False) -> Mark | None:
        """The position of ``path`` (its key when ``key``), else of its nearest located parent."""
        if key and path in self.keys:
            return self.keys[path]
        probe = tuple(path)
        while True:
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return None
            probe = probe[:-1]


@dataclass
class RawDocument:
    """One document as read: plain data plus positions."""

    source: str
    index: int
    data: Any
    positions: Positions = field(default_factory=Positions)

    def problem(self, path: PathParts, message: str, *, key: bool = False) -> Problem:
        """A problem located at ``path`` inside this document."""
        mark = self.positions.locate(path, key=key)
        line, col = mark if mark else (None, None)
        return Problem(file=self.source, line=line, col=col, message=message, json_path=json_path(path))


def existing_path(data: Any, loc: PathParts) -> PathParts:
    """The longest prefix of ``loc`` that exists in ``data``."""
    value = data
    path: list[str | int] = []
    for part in loc:
        if isinstance(value, Mapping):
            if part not in value:
                break
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            break
        path.append(part)
    return tuple(path)
