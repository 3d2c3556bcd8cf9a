"""Effective task settings: task, else workflow defaults, else built-in defaults (pure)."""

from __future__ import annotations

from specs.models import RetryBackoff, RetryPolicy
from specs.task_settings import MAX_RETRY_DELAYS, backoff_delays, effective_settings, policy_from_mapping


def test_task_values_win_then_defaults_then_builtins() -> None:
    defaults = RetryPolicy(retries=3, retry_delay_seconds=[1, 10], timeout_seconds=60)

    inherited = effective_settings(RetryPolicy(), defaults)
    own = effective_settings(RetryPolicy(retries=0, timeout_seconds=5), defaults)
    bare = effective_settings(RetryPolicy(), RetryPolicy())

    assert (inherited.retries, inherited.retry_delays, inherited.timeout_seconds) == (3, (1.0, 10.0), 60)
    assert (own.retries, own.retry_delays, own.timeout_seconds) == (0, (), 5)
    assert own.retry_delay_seconds == [1.0, 10.0]  # as written; no retries means no delays run
    assert (bare.retries, bare.retry_delays, bare.retry_jitter, bare.timeout_seconds) == (0, (), None, None)


def test_either_delay_kind_on_the_task_replaces_the_default_delays() -> None:
    defaults = RetryPolicy(retries=2, retry_backoff=RetryBackoff(base_seconds=4, jitter=0.3))

    plain = effective_settings(RetryPolicy(retry_delay_seconds=7), defaults)
    inherited = effective_settings(RetryPolicy(), defaults)

    assert (plain.retry_backoff, plain.retry_delays, plain.retry_jitter) == (None, (7.0,), None)
    assert (inherited.retry_delays, inherited.retry_jitter) == ((4.0, 8.0), 0.3)


def test_backoff_grows_by_factor_up_to_the_cap() -> None:
    backoff = RetryBackoff(base_seconds=0.5, factor=2, cap_seconds=3, jitter=0.2)

    assert backoff_delays(backoff, 5) == (0.5, 1.0, 2.0, 3.0, 3.0)
    assert len(backoff_delays(backoff, 100)) == MAX_RETRY_DELAYS  # Prefect's limit; it repeats the last


def test_delay_lists_are_cut_to_prefects_limit() -> None:
    settings = effective_settings(RetryPolicy(retries=100, retry_delay_seconds=[1.0] * 100), RetryPolicy())

    assert len(settings.retry_delays) == MAX_RETRY_DELAYS


def test_policy_from_mapping_keeps_the_valid_settings_only() -> None:
    policy = policy_from_mapping(
        {"id": "a", "uses": "noop", "retries": "many", "timeout_seconds": 30, "retry_delay_seconds": [1, 2]}
    )

    assert (policy.retries, policy.timeout_seconds, policy.retry_delay_seconds) == (None, 30.0, [1.0, 2.0])
    assert policy_from_mapping(["not", "a", "mapping"]) == RetryPolicy()
    both = policy_from_mapping({"retry_delay_seconds": 3, "retry_backoff": {"base_seconds": 1}})
    assert (both.retry_delay_seconds, both.retry_backoff) == (3.0, None)
