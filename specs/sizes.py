"""How big the values an expression builds may be, and how that is counted before they are built.

Every value the sandbox builds (a string, a list, a mapping, a range, a formatted or serialised
text) is charged to the evaluation's :class:`Budget` *before* it is built, from an estimate that
walks the inputs and stops as soon as the limit is passed; a value over :data:`MAX_VALUE_SIZE`
characters or items is refused, and so is an evaluation whose values add up to more than
:data:`TOTAL_SIZE_FACTOR` times that (``map`` over 10,000 items may build 10,000 values).

Sharing is what makes the estimate necessary: ``[s] * 10000`` holds one string 10,000 times and
costs almost nothing, but its text (``| string``, ``| tojson``, ``~``, ``%``) would be 10,000
copies. The walks below count what the text would hold, never what the structure occupies.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping, Set
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from jinja2.exceptions import SecurityError

MAX_VALUE_SIZE = 1_000_000
"""Characters (of a string) or items (of a list or mapping) one value may have: the one default."""
TOTAL_SIZE_FACTOR = 10
"""All values one evaluation builds may add up to this many times :data:`MAX_VALUE_SIZE`."""

_OTHER_TEXT = 100  # the text of an object of another type (a date, a generator) is short
_ESCAPED = 6  # a character a repr or JSON escapes (\u00e9, \x00) takes at most this many (BMP)


class SizeLimitError(SecurityError):
    """A value would be over the size limit; nothing of it was built."""


@dataclass
class Budget:
    """What one evaluation may still build."""

    limit: int = MAX_VALUE_SIZE
    spent: int = 0

    def charge(self, size: int, what: str) -> None:
        """Count a value about to be built; raise :class:`SizeLimitError` when it may not be."""
        if size > self.limit:
            raise SizeLimitError(f"{what} would build more than {self.limit:,} characters or items")
        self.spent += size
        total = self.limit * TOTAL_SIZE_FACTOR
        if self.spent > total:
            raise SizeLimitError(
                f"{what}: the expression would build over {total:,} characters or items in all "
                f"(limit {self.limit:,} per value, {TOTAL_SIZE_FACTOR}x that in all)"
            )


_CURRENT: ContextVar[Budget | None] = ContextVar("trinity_expression_budget", default=None)


@contextmanager
def budget(limit: int = MAX_VALUE_SIZE) -> Iterator[Budget]:
    """A budget for one evaluation, in force for the sandbox until the block ends."""
    current = Budget(limit)
    token = _CURRENT.set(current)
    try:
        yield current
    finally:
        _CURRENT.reset(token)


def charge(size: int, what: str) -> None:
    """Charge the evaluation in progress (or, outside one, check the single value)."""
    current = _CURRENT.get()
    (current or Budget()).charge(size, what)


def current_limit() -> int:
    """The per-value limit of the evaluation in progress."""
    current = _CURRENT.get()
    return current.limit if current is not None else MAX_VALUE_SIZE


def _string_text(text: str, *, quoted: bool) -> int:
    if not quoted:
        return len(text)
    plain = text.isascii() and text.isprintable()
    return len(text) * (1 if plain else _ESCAPED) + 2


def _scalar_text(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return int(value.bit_length() * math.log10(2)) + 2
    if isinstance(value, float):
        return 24
    return _OTHER_TEXT


_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))
_DONE = object()


def _parts(value: Any) -> tuple[int, Iterator[Any]] | None:
    """How many parts a container holds and an iterator over them (keys and values); None for a scalar."""
    if isinstance(value, Mapping):
        return 2 * len(value), (part for pair in value.items() for part in pair)
    if isinstance(value, (list, tuple, Set, *_VIEWS)):
        items = cast(Collection[Any], value)
        return len(items), iter(items)
    return None


def _walk(value: Any, cap: int, *, text: bool, quoted: bool) -> int:
    total = 0
    stack: list[Iterator[Any]] = [iter((value,))]
    while stack:
        item = next(stack[-1], _DONE)
        if item is _DONE:
            stack.pop()
            continue
        parts = _parts(item)
        if parts is not None:
            count, iterator = parts
            # Text: brackets and a separator per part; items: one per part.
            total += 2 + 2 * count if text else count
            if total <= cap:
                stack.append(iterator)
        elif isinstance(item, str):
            total += _string_text(item, quoted=quoted or len(stack) > 1) if text else len(item)
        else:
            total += _scalar_text(item) if text else 1
        if total > cap:
            return cap + 1
    return total


def text_size(value: Any, cap: int | None = None, *, quoted: bool = False) -> int:
    """Estimated length of ``str(value)`` / its JSON, counting shared parts each time they appear.

    Strings inside containers are counted as their repr or JSON shows them (quotes, escapes);
    ``quoted`` counts a top-level string that way too. The walk stops once the count passes
    ``cap`` (default: the evaluation's limit) and then returns ``cap + 1``.
    """
    return _walk(value, current_limit() if cap is None else cap, text=True, quoted=quoted)


def items_size(value: Any, cap: int | None = None) -> int:
    """Characters and items in a value, shared parts counted each time; ``cap + 1`` once over ``cap``."""
    return _walk(value, current_limit() if cap is None else cap, text=False, quoted=False)
