"""What can be judged wrong in an expression before it runs: dunder reads, changes to values, and
sizes that constant parts already show to be over the limits (``range(10**9)``, ``'a' * 10**9``)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError

from specs.sandbox import bounded_range, check_binop

# Methods that change a list, dict or set in place.
MUTATING_METHODS = frozenset(
    {"append", "extend", "insert", "pop", "popitem", "remove", "clear", "update", "setdefault", "sort"}
    | {"reverse", "add", "discard", "difference_update", "intersection_update"}
)
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}


class _UnknownError(Exception):
    """The value depends on the context (or cannot be computed safely here)."""


def _static(node: nodes.Node) -> Any:
    """The value of a constant part of an expression, computed within the sandbox's bounds.

    Raises :class:`SecurityError` when computing it would break a bound, :class:`_UnknownError` when it
    depends on the context.
    """
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_static(item) for item in node.items]
        return items if isinstance(node, nodes.List) else tuple(items)
    if isinstance(node, nodes.Neg | nodes.Pos):
        value = _static(node.node)
        if not isinstance(value, int | float):
            raise _UnknownError
        return -value if isinstance(node, nodes.Neg) else value
    if isinstance(node, nodes.BinExpr) and node.operator in _OPERATORS:
        left, right = _static(node.left), _static(node.right)
        check_binop(node.operator, left, right)
        try:
            return _OPERATORS[node.operator](left, right)
        except (TypeError, ValueError, ArithmeticError):
            raise _UnknownError from None
    if _is_range_call(node):
        assert isinstance(node, nodes.Call)
        args = [_static(arg) for arg in node.args]
        if (
            not all(isinstance(arg, int) and not isinstance(arg, bool) for arg in args)
            or not 1 <= len(args) <= 3
        ):
            raise _UnknownError
        return bounded_range(*args)
    raise _UnknownError


def _is_range_call(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "range"
        and not node.kwargs
        and node.dyn_args is None
        and node.dyn_kwargs is None
    )


def _size_problem(node: nodes.Node) -> str | None:
    try:
        _static(node)
    except SecurityError as exc:
        return str(exc)
    except _UnknownError:
        return None
    return None


def _dunder(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr if node.attr.startswith("__") else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        key = node.arg.value
        return key if isinstance(key, str) and key.startswith("__") else None
    return None


def _node_problems(node: nodes.Node) -> Iterator[str]:
    name = _dunder(node)
    if name is not None:
        yield f"'{name}' is not allowed: expressions cannot read dunder attributes"
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) and node.node.name == "dict":
        yield f"dict.{node.attr} is not available: dict(...) builds a mapping and has no attributes"
    if (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Getattr)
        and node.node.attr in MUTATING_METHODS
    ):
        yield (
            f"'.{node.node.attr}()' would change a value; expressions cannot change lists or "
            "mappings (build a new one instead: a + b, dict(a, key=value))"
        )
    if isinstance(node, nodes.BinExpr) or _is_range_call(node):
        problem = _size_problem(node)
        if problem is not None:
            yield problem


def static_problems(tree: nodes.Expr) -> list[str]:
    """Problems of an expression that show without running it (dunders, mutation, sizes)."""
    found: list[str] = []
    for node in (tree, *tree.find_all(nodes.Node)):
        found.extend(_node_problems(node))
    return list(dict.fromkeys(found))
