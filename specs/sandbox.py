"""The sandbox that evaluates expressions: Jinja2's ImmutableSandboxedEnvironment, tightened.

On top of Jinja2's sandbox (no private or dunder attributes, no mutation of lists and dicts):

* methods of built-in types are an allowlist (no ``str.format``, padding or ``join`` methods), and
  types cannot be called (``dict`` is a plain builder without ``dict.update`` or ``dict.fromkeys``);
* filters are an allowlist, each charged for what it builds (:mod:`specs.sandbox_filters`);
* every value built -- by ``+``, ``*``, ``%``, ``~``, slicing, ``range``, ``dict()``, string
  methods, filters -- is charged to the evaluation's budget *before* it is built
  (:mod:`specs.sizes`: at most :data:`~specs.sizes.MAX_VALUE_SIZE` characters or items each);
* ``range`` holds at most :data:`MAX_RANGE` items, ``*`` repeats at most :data:`MAX_SEQUENCE`,
  ``**`` stays under :data:`MAX_POWER_BITS`, ``%`` formatting under :data:`MAX_FORMAT_WIDTH`;
* ``a.b`` on a mapping reads the key ``b`` first, so ``output.items`` is data, not a method.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from specs.sandbox_filters import bounded_filters, text_of
from specs.sizes import MAX_VALUE_SIZE, charge, text_size

__all__ = ["ENVIRONMENT", "MAX_VALUE_SIZE", "text_of"]

MAX_RANGE = 10_000
MAX_SEQUENCE = 100_000  # items or characters one repetition may produce
MAX_POWER_BITS = 4_096
MAX_FORMAT_WIDTH = 10_000

# str methods that build a new string or list (at most 3x as long: case changes may expand).
_BUILDING_METHODS = frozenset(
    [
        "lower",
        "upper",
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "rsplit",
        "splitlines",
        "title",
        "capitalize",
        "casefold",
        "swapcase",
        "partition",
        "rpartition",
        "removeprefix",
        "removesuffix",
    ]
)

_SAFE_METHODS: dict[type, frozenset[str]] = {
    # Besides the building ones, str methods that only look: they answer a bool, an int or a position.
    str: _BUILDING_METHODS
    | frozenset(
        [
            "startswith",
            "endswith",
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
        ]
    ),
    dict: frozenset({"keys", "values", "items", "get"}),
    list: frozenset({"index", "count"}),
    tuple: frozenset({"index", "count"}),
}

_BUILTIN_TYPES = (str, dict, list, tuple, int, float, bool, type(None))
_FORMAT_SPEC = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def bounded_range(*args: int) -> range:
    """``range`` of at most :data:`MAX_RANGE` items."""
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise SecurityError(f"range() of {len(values):,} items is over the limit of {MAX_RANGE:,}")
    charge(len(values), "range()")
    return values


def build_dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    """``dict(...)`` in expressions: a new mapping, charged for its items (the type is never exposed)."""
    source = args[0] if args else ()
    if isinstance(source, Mapping | list | tuple | str):
        charge(len(source) + len(kwargs), "dict()")
    result = dict(*args, **kwargs)
    charge(len(result), "dict()")
    return result


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def check_repeat(left: Any, right: Any) -> None:
    """``seq * n``: at most :data:`MAX_SEQUENCE` items, charged before it is built."""
    for seq, times in ((left, right), (right, left)):
        repeats = (
            isinstance(seq, str | list | tuple) and isinstance(times, int) and not isinstance(times, bool)
        )
        if repeats:
            size = len(seq) * max(times, 0)
            if size > MAX_SEQUENCE:
                raise SecurityError(f"repetition would build {size:,} items (limit {MAX_SEQUENCE:,})")
            charge(size, "repetition")


def check_power(base: Any, exponent: Any) -> None:
    """``a ** b`` of integers: at most :data:`MAX_POWER_BITS` bits."""
    integers = isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0
    if integers and exponent * math.log2(abs(base)) > MAX_POWER_BITS:
        raise SecurityError(f"{base} ** {exponent} is too large (limit {MAX_POWER_BITS} bits)")


def check_percent_format(left: Any, right: Any) -> None:
    """``'%s' % x``: widths and precisions under :data:`MAX_FORMAT_WIDTH`; the text charged."""
    if not isinstance(left, str):
        return
    size = len(left)
    for match in _FORMAT_SPEC.finditer(left):
        for number in match.groups():
            if number == "*" or (number is not None and int(number) > MAX_FORMAT_WIDTH):
                raise SecurityError(f"format width or precision over {MAX_FORMAT_WIDTH}")
            size += int(number or 0)
    values = right if isinstance(right, tuple) else (right,)
    size += sum(text_size(value) for value in values)
    charge(size, "% formatting")


def check_concat(left: Any, right: Any) -> None:
    """``a + b`` of strings, lists or tuples: charged before it is built."""
    if _sized(left) or _sized(right):
        charge(_sized(left) + _sized(right), "+")


def check_binop(operator: str, left: Any, right: Any) -> None:
    """The bound of one intercepted operator; raises :class:`SecurityError` when it is broken."""
    if operator == "*":
        check_repeat(left, right)
    elif operator == "**":
        check_power(left, right)
    elif operator == "%":
        check_percent_format(left, right)
    elif operator == "+":
        check_concat(left, right)


def _allowed_methods(obj: Any) -> frozenset[str]:
    return next((methods for kind, methods in _SAFE_METHODS.items() if isinstance(obj, kind)), frozenset())


class _Generator(CodeGenerator):
    """Compiles ``a ~ b`` to the sandbox's :meth:`_Sandbox.concat_values`, so it is charged too."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802 (Jinja2's name)
        self.write("environment.concat_values((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox: bounded operators, an allowlist of methods on built-in types, mapping keys first."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _Generator

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def concat_values(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ ...``: the text of each part, joined; charged before it is built."""
        charge(sum(text_size(part) for part in parts), "~")
        return "".join(str(part) for part in parts)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if isinstance(__obj, type):
            raise SecurityError(f"{__obj.__name__}() cannot be called in an expression")
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str) and getattr(__obj, "__name__", "") in _BUILDING_METHODS:
            charge(len(owner) if owner.isascii() else 3 * len(owner), f"str.{__obj.__name__}()")
        return super().call(__context, __obj, *args, **kwargs)

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
        if isinstance(argument, slice) and isinstance(obj, str | list | tuple):
            charge(len(range(*argument.indices(len(obj)))), "slice")
        return super().getitem(obj, argument)


def _make_environment() -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False)
    env.filters = bounded_filters(env.filters)
    env.globals = {"range": bounded_range, "dict": build_dict}
    return env


ENVIRONMENT = _make_environment()
