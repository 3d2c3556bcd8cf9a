"""Effective task settings: what a task's retries, retry delays and timeout come to.

A task's own value wins, else the workflow's ``defaults``, else the built-in default (no retries, no
delay, no timeout). The two delay kinds (``retry_delay_seconds`` and ``retry_backoff``) are one
setting: a task that sets either replaces the workflow default entirely. The compiler turns these
settings into what Prefect runs; the analytics read the same settings to judge a task's history, so
both resolve them here.

Documents the analytics read may be old or partly invalid (history outlives the current document):
:func:`policy_from_mapping` keeps the valid settings of such a document and drops the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from specs.models import RetryBackoff, RetryPolicy

# Prefect refuses more than 50 retry delays per task; it repeats the last delay for later attempts,
# which is exactly where an exponential backoff has usually reached its cap anyway.
MAX_RETRY_DELAYS = 50
POLICY_FIELDS = ("retries", "retry_delay_seconds", "retry_backoff", "timeout_seconds")


@dataclass(frozen=True)
class EffectiveSettings:
    """The settings one task runs with, resolved against the workflow defaults."""

    retries: int
    retry_delay_seconds: float | list[float] | None
    retry_backoff: RetryBackoff | None
    timeout_seconds: float | None

    @property
    def retry_delays(self) -> tuple[float, ...]:
        """Seconds before each retry, as Prefect takes them (backoff expanded, at most 50)."""
        if self.retries == 0:
            return ()
        if self.retry_backoff is not None:
            return backoff_delays(self.retry_backoff, self.retries)
        delay = self.retry_delay_seconds
        if delay is None:
            return ()
        if isinstance(delay, list):
            return tuple(float(d) for d in delay[:MAX_RETRY_DELAYS])
        return (float(delay),)

    @property
    def retry_jitter(self) -> float | None:
        """The backoff's jitter fraction (None without retries, backoff or jitter)."""
        if self.retries == 0 or self.retry_backoff is None:
            return None
        return self.retry_backoff.jitter or None


def backoff_delays(backoff: RetryBackoff, retries: int) -> tuple[float, ...]:
    """Expand ``delay = min(cap, base * factor ** (attempt - 1))`` for each retry."""
    count = min(retries, MAX_RETRY_DELAYS)
    return tuple(
        float(min(backoff.cap_seconds, backoff.base_seconds * backoff.factor**attempt))
        for attempt in range(count)
    )


def effective_settings(task: RetryPolicy, defaults: RetryPolicy) -> EffectiveSettings:
    """Resolve one task's settings against the workflow ``defaults``."""
    sets_delay = task.retry_delay_seconds is not None or task.retry_backoff is not None
    delays = task if sets_delay else defaults
    retries = task.retries if task.retries is not None else defaults.retries
    timeout = task.timeout_seconds if task.timeout_seconds is not None else defaults.timeout_seconds
    return EffectiveSettings(
        retries=retries or 0,
        retry_delay_seconds=delays.retry_delay_seconds,
        retry_backoff=delays.retry_backoff,
        timeout_seconds=timeout,
    )


def policy_from_mapping(data: Any) -> RetryPolicy:
    """The valid settings of a task or ``defaults`` mapping as written; invalid ones are left out.

    Keys that are not settings (``id``, ``uses``, ...) are ignored; anything but a mapping gives an
    empty policy.
    """
    if not isinstance(data, Mapping):
        return RetryPolicy()
    present = {key: data[key] for key in POLICY_FIELDS if data.get(key) is not None}
    try:
        return RetryPolicy.model_validate(present)
    except ValidationError:
        pass
    kept: dict[str, Any] = {}
    for key, value in present.items():
        try:
            RetryPolicy.model_validate({key: value})
        except ValidationError:
            continue
        kept[key] = value
    if "retry_delay_seconds" in kept and "retry_backoff" in kept:
        del kept["retry_backoff"]  # both given is invalid; the plain delays are the older form
    return RetryPolicy.model_validate(kept)
