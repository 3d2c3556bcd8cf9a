"""The parameter time limit counts the validating thread's work, not the time it waits for a CPU."""

from __future__ import annotations

import time

import pytest

from specs.schema_limits import ParameterTimeoutError, search, time_limit


def test_time_spent_waiting_does_not_count() -> None:
    # A thread of a busy machine waits for a CPU: wall time passes, the thread does no work.
    with time_limit(0.2):
        time.sleep(0.5)
        assert search("^a+$", "aaa")


def test_work_past_the_limit_stops() -> None:
    with time_limit(0.2), pytest.raises(ParameterTimeoutError, match="took too long"):
        search("^(a|aa)+$", "a" * 40 + "!")
