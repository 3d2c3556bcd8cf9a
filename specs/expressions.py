"""The ``${{ ... }}`` expression language.

Expressions are Jinja2 expressions evaluated in an :class:`ImmutableSandboxedEnvironment` (never
``eval``): no imports, no dunder or private attributes, no mutation of lists or dicts, undefined names
are errors, and every operation that could blow up in size or time is bounded (``range``, repetition,
powers, string formatting, ``join``, ``replace``). A value that is exactly one expression keeps its
native type; text with embedded expressions renders to a string.

The context holds ``params`` (dict), ``tasks`` (task id -> ``{"output": ...}``), ``item`` (inside
``for_each``), ``run`` (``id``, ``name``, ``scheduled_time``, ``workflow``, ``version``) and
``secrets`` (Prefect ``Secret`` blocks by name, read by the executor when the run starts).
:func:`analyze` extracts what an expression reads, so validation can check references before a run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Undefined, nodes
from jinja2.exceptions import TemplateError
from jinja2.parser import Parser

from specs.errors import SpecError
from specs.expression_checks import static_problems
from specs.sandbox import ENVIRONMENT, text_of
from specs.secrets import SECRETS_ROOT, secret_name_problem
from specs.sizes import budget, current_limit, items_size, text_size

MAX_EXPRESSION_CHARS = 2_000

CONTEXT_NAMES = frozenset({"params", "tasks", "item", "run", SECRETS_ROOT})
RUN_FIELDS = frozenset({"id", "name", "scheduled_time", "workflow", "version"})
GLOBAL_NAMES = frozenset({"range", "dict"})

EXPRESSION_PATTERN = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_OPEN = "${{"


class ExpressionError(SpecError):
    """An expression that does not parse, reads something unknown, or fails when evaluated."""


@dataclass(frozen=True)
class References:
    """What one expression reads, found without evaluating it."""

    tasks: frozenset[str]
    params: frozenset[str]
    run_fields: frozenset[str]
    names: frozenset[str]
    problems: tuple[str, ...]
    secrets: frozenset[str] = frozenset()

    @property
    def uses_item(self) -> bool:
        """Whether the expression reads ``item``."""
        return "item" in self.names


def _check_length(expression: str) -> None:
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"expression is {len(expression)} characters long (limit {MAX_EXPRESSION_CHARS})"
        )


def _short(expression: str) -> str:
    text = " ".join(expression.split())
    return text if len(text) <= 80 else text[:77] + "..."


@lru_cache(maxsize=8192)
def _parse(expression: str) -> nodes.Expr:
    _check_length(expression)
    if not expression.strip():
        raise ExpressionError("empty expression")
    try:
        parser = Parser(ENVIRONMENT, expression, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            raise ExpressionError(
                f"invalid expression '{_short(expression)}': unexpected text after the expression"
            )
    except TemplateError as exc:
        reason = (exc.message or "syntax error").replace("end of template", "end of expression")
        raise ExpressionError(f"invalid expression '{_short(expression)}': {reason}") from None
    except RecursionError:
        raise ExpressionError(f"invalid expression '{_short(expression)}': nested too deeply") from None
    return tree


def parse_expression(expression: str) -> nodes.Expr:
    """The syntax tree of an expression (without ``${{ }}``); raises :class:`ExpressionError`."""
    return _parse(expression.strip())


@lru_cache(maxsize=4096)
def _compile(expression: str) -> Callable[..., Any]:
    analyze(expression)  # syntax, filters and names first, with our messages
    try:
        return ENVIRONMENT.compile_expression(expression, undefined_to_none=False)
    except TemplateError as exc:
        raise ExpressionError(f"invalid expression '{_short(expression)}': {exc.message}") from None
    except (RecursionError, SyntaxError, MemoryError):
        # Python's own compiler refuses very deep nesting.
        raise ExpressionError(f"invalid expression '{_short(expression)}': nested too deeply") from None


def _access_key(node: nodes.Node) -> tuple[str | None, str | None]:
    """For ``name.key`` / ``name['key']`` return (name, key); key None when not a literal."""
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return node.node.name, node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.node, nodes.Name):
        arg = node.arg
        key = arg.value if isinstance(arg, nodes.Const) and isinstance(arg.value, str) else None
        return node.node.name, key
    return None, None


class _Collector:
    """Walks an expression tree, recording references and static problems."""

    def __init__(self) -> None:
        self.tasks: set[str] = set()
        self.params: set[str] = set()
        self.run_fields: set[str] = set()
        self.names: set[str] = set()
        self.secrets: set[str] = set()
        self.problems: list[str] = []

    def visit(self, node: nodes.Node, parent: nodes.Node | None) -> None:
        if isinstance(node, nodes.Filter) and node.name not in ENVIRONMENT.filters:
            self.problems.append(f"unknown filter '{node.name}'")
        if isinstance(node, nodes.Test) and node.name not in ENVIRONMENT.tests:
            self.problems.append(f"unknown test '{node.name}'")
        name, key = _access_key(node)
        if name is not None:
            self._access(name, key, node, parent)
            if isinstance(node, nodes.Getitem):
                self.visit(node.arg, node)
            return
        if isinstance(node, nodes.Name):
            self._bare_name(node.name)
            return
        for child in node.iter_child_nodes():
            self.visit(child, node)

    def _bare_name(self, name: str) -> None:
        self.names.add(name)
        if name == "tasks":
            self.problems.append("read a task's result as tasks.<id>.output")
        elif name not in CONTEXT_NAMES and name not in GLOBAL_NAMES:
            self.problems.append(
                f"unknown name '{name}'; expressions can read params, tasks, item, run and secrets"
            )
        elif name == SECRETS_ROOT:
            self.problems.append("read a secret by its name: secrets.NAME or secrets['NAME']")

    def _access(self, name: str, key: str | None, node: nodes.Node, parent: nodes.Node | None) -> None:
        self.names.add(name)
        if name == "tasks":
            if key is None:
                self.problems.append("read tasks by a literal id: tasks.<id>.output or tasks['<id>'].output")
                return
            self.tasks.add(key)
            outer_key = None
            if isinstance(parent, nodes.Getattr) and parent.node is node:
                outer_key = parent.attr
            elif isinstance(parent, nodes.Getitem) and parent.node is node:
                arg = parent.arg
                outer_key = arg.value if isinstance(arg, nodes.Const) else None
            if outer_key != "output":
                self.problems.append(f"read tasks.{key}.output; a task exposes only its 'output'")
        elif name == "params":
            if key is not None:
                self.params.add(key)
        elif name == SECRETS_ROOT:
            problem = secret_name_problem(key)
            if problem is not None:
                self.problems.append(problem)
            elif key is not None:
                self.secrets.add(key)
        elif name == "run":
            if key is not None:
                self.run_fields.add(key)
                if key not in RUN_FIELDS:
                    fields = ", ".join(sorted(RUN_FIELDS))
                    self.problems.append(f"run has no field '{key}' (fields: {fields})")
        else:
            self._bare_name(name)
            self.names.add(name)


@lru_cache(maxsize=8192)
def analyze(expression: str) -> References:
    """Parse an expression (without ``${{ }}``) and list what it reads.

    Raises :class:`ExpressionError` on syntax errors; unknown names, filters and malformed task
    reads are returned in ``problems`` so a caller can locate each one.
    """
    tree = _parse(expression)
    collector = _Collector()
    try:
        collector.visit(tree, None)
        collector.problems.extend(static_problems(tree))
    except RecursionError:
        raise ExpressionError(f"invalid expression '{_short(expression)}': nested too deeply") from None
    return References(
        tasks=frozenset(collector.tasks),
        params=frozenset(collector.params),
        run_fields=frozenset(collector.run_fields),
        names=frozenset(collector.names),
        problems=tuple(dict.fromkeys(collector.problems)),
        secrets=frozenset(collector.secrets),
    )


def find_expressions(text: str) -> list[str]:
    """The expressions (without ``${{ }}``) embedded in a string; raises on an unclosed ``${{``."""
    if _OPEN not in text:
        return []
    found = [match.group(1) for match in EXPRESSION_PATTERN.finditer(text)]
    if _OPEN in EXPRESSION_PATTERN.sub("", text):
        raise ExpressionError(f"unclosed '${{{{' in '{_short(text)}' (expected '}}}}')")
    return found


def whole_expression(text: str) -> str | None:
    """If the string is exactly one ``${{ ... }}`` (surrounding blanks allowed), return its inside."""
    stripped = text.strip()
    if not stripped.startswith(_OPEN):
        return None
    matches = list(EXPRESSION_PATTERN.finditer(stripped))
    if len(matches) == 1 and matches[0].group(0) == stripped:
        return matches[0].group(1)
    return None


def has_expression(value: Any) -> bool:
    """Whether a value holds ``${{`` anywhere (strings inside dicts and lists included)."""
    if isinstance(value, str):
        return _OPEN in value
    if isinstance(value, Mapping):
        return any(has_expression(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_expression(v) for v in value)
    return False


def bare_expression(text: str) -> str:
    """The expression of an ``if`` or ``for_each`` string: ``${{ x }}`` or plain ``x`` both mean ``x``."""
    inner = whole_expression(text)
    if inner is not None:
        return inner
    if _OPEN in text:
        raise ExpressionError(f"'{_short(text)}' must be a single expression, not text around ${{{{ }}}}")
    return text


def _undefined_message(value: Undefined) -> str:
    return str(value._undefined_message)


def _finish(value: Any, expression: str) -> Any:
    """Turn sandbox results into plain data and refuse undefined or oversized values."""
    size = items_size(value)
    if size > current_limit():
        raise ExpressionError(
            f"expression '{_short(expression)}' returned a value over {current_limit():,} characters or items"
        )
    return _plain(value, expression, 0)


def _plain(value: Any, expression: str, depth: int) -> Any:
    if depth > 64:
        raise ExpressionError(f"expression '{_short(expression)}' returned a value nested too deeply")
    if isinstance(value, Undefined):
        raise ExpressionError(f"expression '{_short(expression)}' failed: {_undefined_message(value)}")
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool | int | float | type(None)):
        return value
    if isinstance(value, Mapping):
        return {k: _plain(v, expression, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | range | Iterator):
        items = []
        for count, item in enumerate(value):
            if count >= current_limit():  # an iterator: its size shows only now
                raise ExpressionError(
                    f"expression '{_short(expression)}' returned over {current_limit():,} items"
                )
            items.append(_plain(item, expression, depth + 1))
        return items
    return value


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate one expression (without ``${{ }}``) against a context; keeps the native type.

    Everything the expression builds is charged to one :func:`specs.sizes.budget`.
    """
    compiled = _compile(expression.strip())
    try:
        with budget():
            return _finish(compiled(dict(context)), expression)
    except ExpressionError:
        raise
    except Exception as exc:
        reason = exc.message if isinstance(exc, TemplateError) and exc.message else str(exc)
        raise ExpressionError(
            f"expression '{_short(expression)}' failed: {reason or type(exc).__name__}"
        ) from None


def _render_string(text: str, context: Mapping[str, Any]) -> Any:
    if _OPEN not in text:
        return text
    inner = whole_expression(text)
    if inner is not None:
        return evaluate(inner, context)
    find_expressions(text)  # refuses an unclosed ${{
    values = [evaluate(match.group(1), context) for match in EXPRESSION_PATTERN.finditer(text)]
    limit = current_limit()
    size = len(text) + sum(text_size(value, limit, quoted=not isinstance(value, str)) for value in values)
    if size > limit:
        raise ExpressionError(f"rendered text '{_short(text)}' would be over {limit:,} characters")
    parts = iter(values)
    return EXPRESSION_PATTERN.sub(lambda _: text_of(next(parts)), text)


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every ``${{ }}`` inside a value (dicts and lists walked; other values unchanged).

    A string that is exactly one expression becomes the expression's native value; a string with
    embedded expressions becomes a string (``None`` renders as empty, dicts and lists as JSON).
    """
    if isinstance(value, str):
        return _render_string(value, context)
    if isinstance(value, Mapping):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, context) for item in value]
    return value


def evaluate_condition(text: str, context: Mapping[str, Any]) -> bool:
    """Evaluate a task's ``if`` (``${{ x }}`` or plain ``x``) to a bool."""
    return bool(evaluate(bare_expression(text), context))


def evaluate_items(value: str | list[Any], context: Mapping[str, Any]) -> list[Any]:
    """Evaluate a task's ``for_each``: a literal list (items rendered) or an expression giving a list."""
    items = render(value, context) if isinstance(value, list) else evaluate(bare_expression(value), context)
    if isinstance(items, Mapping):
        raise ExpressionError("for_each must give a list, got a mapping (use .items() or .keys())")
    if not isinstance(items, list):
        raise ExpressionError(f"for_each must give a list, got {type(items).__name__}")
    return list(items)
