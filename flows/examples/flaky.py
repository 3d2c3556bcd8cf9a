"""Callables of the ``flaky-retry`` example: a task that fails its first attempts on purpose."""

from __future__ import annotations

from pathlib import Path


class TransientError(RuntimeError):
    """Raised on purpose by :func:`succeed_after`."""


def succeed_after(*, counter_path: str, failures: int) -> dict[str, int]:
    """Fail the first ``failures`` calls, then succeed; attempts are counted in ``counter_path``.

    The count lives in a file so it survives retries in new processes, which makes the outcome
    deterministic: attempt ``failures + 1`` is the first to succeed.
    """
    path = Path(counter_path)
    attempt = int(path.read_text() or "0") + 1 if path.exists() else 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(attempt))
    if attempt <= failures:
        raise TransientError(f"attempt {attempt} of {failures + 1} fails on purpose")
    return {"attempts": attempt}
