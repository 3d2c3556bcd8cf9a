"""The filters expressions may use, each charged for what it builds before it builds it.

Jinja2's own filters are an allowlist; every one that makes a string or a list from its input is
wrapped so that the size of its result is estimated (:mod:`specs.sizes`) and charged first. A few
are replaced outright because their size can only be known by looking at the parts (``join``,
``replace``, ``sum``, ``tojson``), and ``quote`` and ``fromjson`` are ours.
"""

from __future__ import annotations

import functools
import json
import shlex
from collections.abc import Callable, Iterable, Sized
from typing import Any

from jinja2 import pass_environment
from jinja2.environment import Environment
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter

from specs.sizes import charge, current_limit, items_size, text_size

MAX_JSON_INDENT = 8

# Filters that cannot be made to allocate within bounds are left out (center, indent, wordwrap,
# format, batch, slice, pprint, xmlattr, urlize); random is left out so runs are reproducible.
_PLAIN = frozenset(
    [
        "abs",
        "attr",
        "count",
        "d",
        "default",
        "first",
        "float",
        "int",
        "last",
        "length",
        "max",
        "min",
        "round",
        "filesizeformat",
        "map",
        "select",
        "reject",
        "selectattr",
        "rejectattr",
        "items",
    ]
)
# Filters whose result is a text of their input at most this many times as long as the input's text.
_TEXT = {"string": 1, "lower": 3, "upper": 3, "title": 3, "capitalize": 3, "trim": 1, "truncate": 1}
_TEXT |= {"wordcount": 1, "urlencode": 3}
# Filters whose result is a list of (at most) their input's items.
_LISTS = frozenset(["list", "sort", "unique", "reverse", "dictsort", "groupby"])


def text_of(value: Any) -> str:
    """A value as text inside a string: ``None`` is empty, booleans ``true``/``false``, data JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        charge(text_size(value, quoted=True), "text of a value")
        return json.dumps(value, default=str)
    return str(value)


def _value_index(fn: Callable[..., Any]) -> int:
    # A filter marked pass_context/pass_environment/pass_eval_context gets that first.
    return 1 if hasattr(fn, "jinja_pass_arg") else 0


def _charged(name: str, fn: Callable[..., Any], estimate: Callable[[Any], int]) -> Callable[..., Any]:
    at = _value_index(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(args) > at:
            charge(estimate(args[at]), name)
        return fn(*args, **kwargs)

    return wrapper


def _text_estimate(factor: int) -> Callable[[Any], int]:
    def estimate(value: Any) -> int:
        # ASCII text keeps its length through every one of them.
        grows = 1 if isinstance(value, str) and value.isascii() else factor
        return text_size(value, current_limit() // grows) * grows

    return estimate


def _list_estimate(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    return len(value) if isinstance(value, Sized) else 0  # an iterator: its source was charged


def _join_filter(value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    items = list(value)
    charge(len(items), "join")
    if attribute is not None:
        items = [item[attribute] for item in items]
    separators = len(str(d)) * max(len(items) - 1, 0)
    total = separators
    for item in items:
        total += text_size(item, max(current_limit() - total, 0))
        if total > current_limit():
            break
    charge(total, "join")
    return str(d).join(str(item) for item in items)


def _replace_filter(value: Any, old: str, new: str, count: int | None = None) -> str:
    charge(text_size(value), "replace")
    text = str(value)
    old, new = str(old), str(new)
    hits = text.count(old) if count is None else min(max(count, 0), text.count(old))
    if old == "":
        hits = len(text) + 1 if count is None else min(max(count, 0), len(text) + 1)
    charge(len(text) + hits * (len(new) - len(old)), "replace")
    return text.replace(old, new, -1 if count is None else count)


@pass_environment
def _sum_filter(
    environment: Environment, iterable: Iterable[Any], attribute: str | int | None = None, start: Any = 0
) -> Any:
    items = list(iterable)
    charge(len(items), "sum")
    if attribute is not None:
        getter = make_attrgetter(environment, attribute)
        items = [getter(item) for item in items]
    if isinstance(start, list | tuple):
        # Adding lists builds each partial sum: count every one of them.
        size, partial = 0, len(start)
        for item in items:
            partial += len(item) if isinstance(item, Sized) else 1
            size += partial
            if size > current_limit():
                break
        charge(size, "sum")
    return sum(items, start)


def _tojson_filter(value: Any, indent: int | None = None) -> str:
    if indent is not None and not 0 <= indent <= MAX_JSON_INDENT:
        raise SecurityError(f"tojson indent must be 0..{MAX_JSON_INDENT}")
    estimate = text_size(value, quoted=True)
    # Indenting adds a line break and up to (depth * indent) blanks per item; counted as indent + 1.
    charge(estimate if not indent else estimate * (indent + 2), "tojson")
    return json.dumps(value, indent=indent, sort_keys=True, default=str)


def _fromjson_filter(value: str) -> Any:
    result = json.loads(value)
    charge(items_size(result), "fromjson")
    return result


def _quote_filter(value: Any) -> str:
    """POSIX shell quoting (``shlex.quote``): the value is one shell word, whatever it holds."""
    text = text_of(value)
    charge(len(text) + 4 * text.count("'") + 2, "quote")
    return shlex.quote(text)


def bounded_filters(builtin: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """The filter table of the sandbox, from Jinja2's own (``builtin``)."""
    filters: dict[str, Callable[..., Any]] = {name: builtin[name] for name in _PLAIN}
    for name, factor in _TEXT.items():
        filters[name] = _charged(name, builtin[name], _text_estimate(factor))
    for name in _LISTS:
        filters[name] = _charged(name, builtin[name], _list_estimate)
    filters |= {
        "join": _join_filter,
        "replace": _replace_filter,
        "sum": _sum_filter,
        "tojson": _tojson_filter,
        "fromjson": _fromjson_filter,
        "quote": _quote_filter,
    }
    return filters
