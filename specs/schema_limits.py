"""Parameter validation within a time limit: patterns that cannot block, a deadline for the rest.

A parameters schema is written by whoever stores a specification, the values by whoever starts a
run, and Python's ``re`` backtracks without bound: ``pattern: '^(a+)+$'`` against ``"a"*27 + "b"``
takes ~10 s and holds the GIL all along, so no thread could answer meanwhile. Here every pattern a
schema applies (``pattern``, ``patternProperties``, and the patterns ``additionalProperties``
consults) is matched by the ``regex`` module, which releases the GIL while it matches and stops at
the deadline; and every keyword checks the deadline before it runs. Over the limit,
:class:`ParameterTimeoutError` says so.

The limit is :data:`PARAMETER_TIME_LIMIT_SECONDS` of the validating thread's CPU time, not of the
wall clock: what it guards against is work (a pattern that backtracks, a huge input), and on a busy
machine a small schema can take over a second of wall time while costing milliseconds (runs failed
"took too long" that way). A caller on an event loop runs the validation in a worker thread (it
releases the GIL while it matches) and may stop waiting after :data:`WAIT_LIMIT_SECONDS`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import regex
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from specs.errors import SpecError

PARAMETER_TIME_LIMIT_SECONDS = 1.0
"""How long checking one run's parameters may take: the one default."""

WAIT_LIMIT_SECONDS = 10 * PARAMETER_TIME_LIMIT_SECONDS
"""How long a caller waits for a validation in another thread: a backstop, the CPU limit acts first."""

TIMEOUT_MESSAGE = "parameter validation took too long"

_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("trinity_parameter_deadline", default=None)


class ParameterTimeoutError(SpecError):
    """Checking the parameters ran over its time limit (a pattern that backtracks, a huge input)."""


def _timeout(limit: float) -> ParameterTimeoutError:
    return ParameterTimeoutError(f"{TIMEOUT_MESSAGE} (limit {limit:g} s)", json_path="$")


@contextmanager
def time_limit(seconds: float = PARAMETER_TIME_LIMIT_SECONDS) -> Iterator[None]:
    """Validation in this block stops with :class:`ParameterTimeoutError` after ``seconds`` of this
    thread's CPU time (a pattern's match stops at the same number of seconds of wall time)."""
    token = _DEADLINE.set((time.thread_time() + seconds, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _remaining() -> float | None:
    deadline = _DEADLINE.get()
    if deadline is None:
        return None
    left = deadline[0] - time.thread_time()
    if left <= 0:
        raise _timeout(deadline[1])
    return left


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    return regex.compile(pattern)


def search(pattern: str, text: str) -> bool:
    """``re.search`` for schema patterns: the GIL released while matching, stopped at the deadline."""
    try:
        compiled = _compiled(pattern)
    except regex.error:
        return False  # the metaschema check reports it; Python's re may accept what regex refuses
    try:
        return compiled.search(text, timeout=_remaining(), concurrent=True) is not None
    except TimeoutError:
        deadline = _DEADLINE.get()
        raise _timeout(deadline[1] if deadline else PARAMETER_TIME_LIMIT_SECONDS) from None


def _pattern(validator: Validator, patrn: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not search(patrn, instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(
    validator: Validator, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Validator, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in properties and not any(search(pattern, key) for pattern in patterns)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        # Worded as jsonschema's own keyword words it.
        ordered = sorted(extras, key=str)
        listed = ", ".join(repr(extra) for extra in ordered)
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            shown = ", ".join(repr(pattern) for pattern in sorted(patterns))
            yield ValidationError(f"{listed} {verb} not match any of the regexes: {shown}")
        else:
            were = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({listed} {were} unexpected)")


def _on_time(keyword: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(keyword)
    def checked(validator: Validator, value: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
        _remaining()
        return keyword(validator, value, instance, schema)

    return checked


_KEYWORDS = {name: _on_time(keyword) for name, keyword in Draft202012Validator.VALIDATORS.items()}
_KEYWORDS |= {
    "pattern": _on_time(_pattern),
    "patternProperties": _on_time(_pattern_properties),
    "additionalProperties": _on_time(_additional_properties),
}
BoundedValidator: type[Validator] = validators.extend(Draft202012Validator, _KEYWORDS)
"""Draft 2020-12 with bounded patterns and a deadline check before every keyword."""
