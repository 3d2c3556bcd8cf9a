"""The sandbox that evaluates expressions: Jinja2's ImmutableSandboxedEnvironment, tightened.

On top of Jinja2's sandbox (no private or dunder attributes, no mutation of lists and dicts):

* methods of built-in types are an allowlist (no ``str.format``, padding or ``join`` methods);
* filters are an allowlist; ``join`` and ``replace`` refuse results over :data:`MAX_RESULT_CHARS`;
* ``range`` holds at most :data:`MAX_RANGE` items, ``*`` repeats at most :data:`MAX_SEQUENCE`,
  ``**`` stays under :data:`MAX_POWER_BITS`, ``%`` formatting under :data:`MAX_FORMAT_WIDTH`;
* ``a.b`` on a mapping reads the key ``b`` first, so ``output.items`` is data, not a method.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_RANGE = 10_000
MAX_SEQUENCE = 100_000  # items or characters one repetition may produce
MAX_RESULT_CHARS = 1_000_000  # characters of any string an expression builds or returns
MAX_POWER_BITS = 4_096
MAX_FORMAT_WIDTH = 10_000
MAX_JSON_INDENT = 8

_SAFE_METHODS: dict[type, frozenset[str]] = {
    str: frozenset(
        [
            "lower",
            "upper",
            "strip",
            "lstrip",
            "rstrip",
            "startswith",
            "endswith",
            "split",
            "rsplit",
            "splitlines",
            "title",
            "capitalize",
            "casefold",
            "swapcase",
            "count",
            "find",
            "rfind",
            "index",
            "rindex",
            "isdigit",
            "isalpha",
            "isalnum",
            "isnumeric",
            "isspace",
            "islower",
            "isupper",
            "partition",
            "rpartition",
            "removeprefix",
            "removesuffix",
        ]
    ),
    dict: frozenset({"keys", "values", "items", "get"}),
    list: frozenset({"index", "count"}),
    tuple: frozenset({"index", "count"}),
}
_BUILTIN_TYPES = (str, dict, list, tuple, int, float, bool, type(None))
_FORMAT_SPEC = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")

# Filters that cannot be made to allocate without bound are left out (center, indent, wordwrap,
# format, batch, slice, pprint, xmlattr, urlize); random is left out so runs are reproducible.
_ALLOWED_FILTERS = frozenset(
    [
        "abs",
        "attr",
        "capitalize",
        "count",
        "d",
        "default",
        "dictsort",
        "first",
        "float",
        "groupby",
        "int",
        "items",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "map",
        "max",
        "min",
        "reject",
        "rejectattr",
        "replace",
        "reverse",
        "round",
        "select",
        "selectattr",
        "sort",
        "string",
        "sum",
        "title",
        "trim",
        "truncate",
        "unique",
        "upper",
        "urlencode",
        "wordcount",
        "tojson",
        "filesizeformat",
    ]
)


def _refuse(message: str) -> SecurityError:
    return SecurityError(message)


def _bounded_range(*args: int) -> range:
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise _refuse(f"range() of {len(values)} items is over the limit of {MAX_RANGE}")
    return values


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def _check_repeat(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        repeats = (
            isinstance(seq, str | list | tuple) and isinstance(times, int) and not isinstance(times, bool)
        )
        if repeats and len(seq) * max(times, 0) > MAX_SEQUENCE:
            raise _refuse(f"repetition would build {len(seq) * times} items (limit {MAX_SEQUENCE})")


def _check_power(base: Any, exponent: Any) -> None:
    integers = isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0
    if integers and exponent * math.log2(abs(base)) > MAX_POWER_BITS:
        raise _refuse(f"{base} ** {exponent} is too large (limit {MAX_POWER_BITS} bits)")


def _check_percent_format(left: Any) -> None:
    if isinstance(left, str):
        for match in _FORMAT_SPEC.finditer(left):
            for number in match.groups():
                if number == "*" or (number is not None and int(number) > MAX_FORMAT_WIDTH):
                    raise _refuse(f"format width or precision over {MAX_FORMAT_WIDTH}")


def _check_concat(left: Any, right: Any) -> None:
    if _sized(left) + _sized(right) > MAX_RESULT_CHARS:
        raise _refuse(f"result is over {MAX_RESULT_CHARS} characters or items")


def _join_filter(value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    items = list(value)
    if attribute is not None:
        items = [item[attribute] for item in items]
    parts = [str(item) for item in items]
    total = sum(len(part) for part in parts) + len(d) * max(len(parts) - 1, 0)
    if total > MAX_RESULT_CHARS:
        raise _refuse(f"join would build {total} characters (limit {MAX_RESULT_CHARS})")
    return d.join(parts)


def _replace_filter(value: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    hits = text.count(old) if count is None else min(count, text.count(old))
    if len(text) + hits * (len(new) - len(old)) > MAX_RESULT_CHARS:
        raise _refuse(f"replace would build more than {MAX_RESULT_CHARS} characters")
    return text.replace(old, new, -1 if count is None else count)


def _allowed_methods(obj: Any) -> frozenset[str]:
    return next((methods for kind, methods in _SAFE_METHODS.items() if isinstance(obj, kind)), frozenset())


def _tojson_filter(value: Any, indent: int | None = None) -> str:
    if indent is not None and not 0 <= indent <= MAX_JSON_INDENT:
        raise _refuse(f"tojson indent must be 0..{MAX_JSON_INDENT}")
    text = json.dumps(value, indent=indent, sort_keys=True, default=str)
    if len(text) > MAX_RESULT_CHARS:
        raise _refuse(f"tojson would build more than {MAX_RESULT_CHARS} characters")
    return text


def text_of(value: Any) -> str:
    """A value as text inside a string: ``None`` is empty, booleans ``true``/``false``, data JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _quote_filter(value: Any) -> str:
    """POSIX shell quoting (``shlex.quote``): the value is one shell word, whatever it holds."""
    return shlex.quote(text_of(value))


def _fromjson_filter(value: str) -> Any:
    return json.loads(value)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox: bounded operators, an allowlist of methods on built-in types, mapping keys first."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%":
            _check_percent_format(left)
        elif operator == "+":
            _check_concat(left, right)
        return super().call_binop(context, operator, left, right)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Also consulted by filters such as `attr`, so the allowlist holds there too.
        if isinstance(obj, _BUILTIN_TYPES) and attr not in _allowed_methods(obj):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # `output.items` should read the key "items", not the dict method.
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        # Checked before Jinja2's own lookup, which hands out str.format without asking.
        if isinstance(obj, _BUILTIN_TYPES) and attribute not in _allowed_methods(obj):
            if hasattr(obj, attribute):
                return self.unsafe_undefined(obj, attribute)
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[argument]
            except (TypeError, LookupError):
                return self.undefined(obj=obj, name=argument)
        if isinstance(argument, str) and isinstance(obj, _BUILTIN_TYPES):
            return self.getattr(obj, argument)
        return super().getitem(obj, argument)


def _make_environment() -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False)
    env.filters = {name: f for name, f in env.filters.items() if name in _ALLOWED_FILTERS}
    env.filters["join"] = _join_filter
    env.filters["replace"] = _replace_filter
    env.filters["fromjson"] = _fromjson_filter
    env.filters["tojson"] = _tojson_filter
    env.filters["quote"] = _quote_filter
    env.globals = {"range": _bounded_range, "dict": dict}
    return env


ENVIRONMENT = _make_environment()
