"""Build documents from libyaml parser events, without recursion and under limits.

Limits are counted while reading, before anything is expanded: nesting depth, alias uses, and
values after alias expansion (an alias bomb is refused while it is read; a recursive alias at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from specs.errors import Problem, json_path
from specs.positions import Mark, PathParts, Positions

MAX_DEPTH = 64
MAX_ALIASES = 10_000
MAX_NODES = 1_000_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVERS = yaml.SafeLoader.yaml_implicit_resolvers
_CONSTRUCTOR = SafeConstructor()
_TAG = "tag:yaml.org,2002:"


class FatalError(Exception):
    """Stops reading: the rest of the text (``whole``) or the current document."""

    def __init__(self, message: str, mark: Mark | None, *, whole: bool = False):
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.whole = whole


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    path: PathParts
    anchor: str | None
    nodes_at_start: int
    key: str | None = None
    key_mark: Mark | None = None
    expecting_key: bool = True
    merges: list[tuple[Any, Mark]] = field(default_factory=list)


def _scalar(event: Any, mark: Mark, problems: list[Problem], source: str, path: PathParts) -> Any:
    value: str = event.value
    tag = event.tag
    if tag in (None, "!"):
        if not event.implicit[0]:
            return value
        tag = next((t for t, regexp in _RESOLVERS.get(value[:1], ()) if regexp.match(value)), _TAG + "str")
    if tag in (_TAG + "str", _TAG + "timestamp", _TAG + "value"):
        return value
    if tag in (_TAG + "int", _TAG + "float", _TAG + "bool", _TAG + "null"):
        node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark)
        try:
            return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)
        except (yaml.YAMLError, ValueError):
            problems.append(
                Problem(source, *mark, f"'{value}' is not a valid {tag[len(_TAG) :]}", json_path(path))
            )
            return value
    if tag == _TAG + "merge":
        return value
    problems.append(Problem(source, *mark, f"unsupported tag '{tag}'", json_path(path)))
    return value


class Builder:
    """Builds documents from parser events; one instance per text."""

    def __init__(self, source: str, line_offset: int, counters: dict[str, int]):
        self.source = source
        self.line_offset = line_offset
        self.counters = counters  # shared across resumed passes: the limits are per text
        self.problems: list[Problem] = []
        self.documents: list[tuple[Any, Positions]] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.positions = Positions()
        self.root: Any = None
        self.skipping = False

    def run(self, text: str) -> None:
        """Read every event of ``text``; raises yaml.YAMLError on syntax errors, FatalError on limits."""
        loader = _Loader(text)
        handlers: dict[type, Any] = {
            yaml.ScalarEvent: self._scalar_event,
            yaml.MappingStartEvent: self._start_container,
            yaml.SequenceStartEvent: self._start_container,
            yaml.MappingEndEvent: self._end_container,
            yaml.SequenceEndEvent: self._end_container,
            yaml.AliasEvent: self._alias_event,
        }
        offset = self.line_offset + 1
        try:
            while loader.check_event():
                event = loader.get_event()
                handler = handlers.get(type(event))
                if handler is None:
                    self._stream_event(event)
                elif not self.skipping:
                    start = event.start_mark
                    try:
                        handler(event, (start.line + offset, start.column + 1))
                    except FatalError as fatal:
                        if fatal.whole:
                            raise
                        self._skip_document(fatal)
        finally:
            loader.dispose()

    def _stream_event(self, event: Any) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            self._start_document()
        elif isinstance(event, yaml.DocumentEndEvent) and not self.skipping:
            self.documents.append((self.root, self.positions))

    def _skip_document(self, fatal: FatalError) -> None:
        line, col = fatal.mark if fatal.mark else (None, None)
        self.problems.append(Problem(self.source, line, col, fatal.message, "$"))
        self.skipping = True

    def _start_document(self) -> None:
        self.stack = []
        self.anchors = {}
        self.open_anchors = set()
        self.positions = Positions()
        self.root = None
        self.skipping = False

    def _count(self, nodes: int, mark: Mark) -> None:
        self.counters["nodes"] += nodes
        if self.counters["nodes"] > MAX_NODES:
            raise FatalError(
                f"too many values (over {MAX_NODES:,} after expanding aliases); refusing", mark, whole=True
            )

    def _alias_event(self, event: Any, mark: Mark) -> None:
        self._alias(str(event.anchor), mark)

    def _alias(self, anchor: str, mark: Mark) -> None:
        self.counters["aliases"] += 1
        if self.counters["aliases"] > MAX_ALIASES:
            raise FatalError(f"too many aliases (over {MAX_ALIASES:,}); refusing", mark, whole=True)
        if anchor in self.open_anchors:
            raise FatalError(f"recursive alias '*{anchor}' (an anchor cannot contain itself)", mark)
        if anchor not in self.anchors:
            raise FatalError(f"unknown alias '*{anchor}'", mark)
        value, size = self.anchors[anchor]
        self._count(size, mark)
        if self.stack and self.stack[-1].expecting_key and isinstance(self.stack[-1].container, dict):
            raise FatalError("an alias cannot be a mapping key", mark)
        self._place(value, mark)

    def _scalar_event(self, event: Any, mark: Mark) -> None:
        self._count(1, mark)
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.container, dict) and frame.expecting_key:
            self._key(frame, event, mark)
            return
        path = self._next_path()
        value = _scalar(event, mark, self.problems, self.source, path)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        self._place(value, mark)

    def _key(self, frame: _Frame, event: Any, mark: Mark) -> None:
        key: str = event.value
        if event.tag not in (None, "!", _TAG + "str"):
            raise FatalError(f"mapping keys must be plain text, got tag '{event.tag}'", mark)
        frame.expecting_key = False
        frame.key_mark = mark
        if key == "<<" and event.implicit[0]:
            frame.key = None  # a merge key: its value is merged into this mapping
            return
        path = (*frame.path, key)
        assert isinstance(frame.container, dict)
        if key in frame.container:
            first = self.positions.keys.get(path)
            where = f" (first at line {first[0]})" if first else ""
            self.problems.append(
                Problem(self.source, *mark, f"duplicate key '{key}'{where}", json_path(path))
            )
        frame.key = key

    def _next_path(self) -> PathParts:
        if not self.stack:
            return ()
        frame = self.stack[-1]
        if isinstance(frame.container, list):
            return (*frame.path, len(frame.container))
        return (*frame.path, frame.key) if frame.key is not None else frame.path

    def _place(self, value: Any, mark: Mark) -> None:
        if not self.stack:
            self.root = value
            self.positions.values[()] = mark
            return
        frame = self.stack[-1]
        if isinstance(frame.container, list):
            self.positions.values[(*frame.path, len(frame.container))] = mark
            frame.container.append(value)
            return
        frame.expecting_key = True
        if frame.key is None:
            frame.merges.append((value, mark))
            return
        path = (*frame.path, frame.key)
        if frame.key not in frame.container and frame.key_mark is not None:
            self.positions.keys[path] = frame.key_mark
        self.positions.values[path] = mark
        frame.container[frame.key] = value

    def _start_container(self, event: Any, mark: Mark) -> None:
        self._count(1, mark)
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.container, dict) and frame.expecting_key:
            raise FatalError("mapping keys must be plain text, not a list or a mapping", mark)
        if len(self.stack) >= MAX_DEPTH:
            # Stop the whole text: skipping the rest of a hostile document would still parse it.
            raise FatalError(f"nested deeper than {MAX_DEPTH} levels; refusing", mark, whole=True)
        if event.tag not in (None, "!", _TAG + "seq", _TAG + "map"):
            raise FatalError(f"unsupported tag '{event.tag}'", mark)
        path = self._next_path()
        container: dict[str, Any] | list[Any] = {} if isinstance(event, yaml.MappingStartEvent) else []
        self._place(container, mark)
        if event.anchor is not None:
            self.anchors[event.anchor] = (container, 1)
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame(container, path, event.anchor, self.counters["nodes"]))

    def _end_container(self, event: Any, mark: Mark) -> None:
        frame = self.stack.pop()
        if frame.merges:
            self._merge(frame)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (frame.container, self.counters["nodes"] - frame.nodes_at_start + 1)

    def _merge(self, frame: _Frame) -> None:
        assert isinstance(frame.container, dict)
        merged: dict[str, Any] = {}
        for value, mark in frame.merges:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    raise FatalError("'<<' merges a mapping or a list of mappings", mark)
            for source in reversed(sources):
                merged.update(source)
        own = dict(frame.container)
        frame.container.clear()
        frame.container.update(merged)
        frame.container.update(own)
