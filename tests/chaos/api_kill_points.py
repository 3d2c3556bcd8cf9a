"""The Trinity API as a process that SIGKILLs itself at a named step of ``execute`` (test only).

``python -m tests.chaos.api_kill_points --port N`` serves the real application (``trinity api``'s
factory, settings from ``TRINITY_CONFIG``) after wrapping a few functions of the execute path. When
a request carries the Idempotency-Key named by ``TRINITY_TEST_KILL_KEY``, the process sends itself
SIGKILL at the step ``TRINITY_TEST_KILL_AT`` names -- a real, unannounced death between receiving
the request and answering it:

* ``before-key-commit`` -- the key's row is about to be committed;
* ``before-prefect`` -- the key is stored, Prefect not yet called;
* ``after-prefect`` -- Prefect has made the flow run, the API has not recorded it;
* ``before-run-commit`` -- the run's row is about to be committed;
* ``before-key-link`` -- the run is recorded, the key not yet linked to it;
* ``before-answer`` -- everything is committed, the answer not yet sent.

Nothing here is part of Trinity: it lives with the tests and is imported only by this launcher.
"""

from __future__ import annotations

import argparse
import contextvars
import functools
import os
import signal
from typing import Any

STEPS = (
    "before-key-commit",
    "before-prefect",
    "after-prefect",
    "before-run-commit",
    "before-key-link",
    "before-answer",
)

_armed: contextvars.ContextVar[bool] = contextvars.ContextVar("kill_armed", default=False)


def _die_at(step: str) -> None:
    if _armed.get() and os.environ.get("TRINITY_TEST_KILL_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def install() -> None:
    """Wrap the execute path so the process dies at the configured step."""
    from sqlmodel.ext.asyncio.session import AsyncSession

    import deployments.runs
    from api.models.run import IdempotencyKey, Run
    from api.services import runs as service

    original_execute = service.execute_workflow

    @functools.wraps(original_execute)
    async def execute(*args: Any, **kwargs: Any) -> Any:
        token = _armed.set(kwargs.get("idempotency_key") == os.environ.get("TRINITY_TEST_KILL_KEY"))
        try:
            result = await original_execute(*args, **kwargs)
            _die_at("before-answer")
            return result
        finally:
            _armed.reset(token)

    service.execute_workflow = execute  # type: ignore[assignment]

    original_start = deployments.runs.start_run

    @functools.wraps(original_start)
    async def start_run(*args: Any, **kwargs: Any) -> Any:
        _die_at("before-prefect")
        ref = await original_start(*args, **kwargs)
        _die_at("after-prefect")
        return ref

    deployments.runs.start_run = start_run  # type: ignore[assignment]

    original_record = service._record_run

    @functools.wraps(original_record)
    async def record_run(*args: Any, **kwargs: Any) -> Any:
        run = await original_record(*args, **kwargs)
        _die_at("before-key-link")
        return run

    service._record_run = record_run  # type: ignore[attr-defined]

    original_commit = AsyncSession.commit

    async def commit(self: AsyncSession) -> None:
        if any(isinstance(item, IdempotencyKey) for item in self.new):
            _die_at("before-key-commit")
        if any(isinstance(item, Run) for item in self.new):
            _die_at("before-run-commit")
        await original_commit(self)

    AsyncSession.commit = commit  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    install()
    import uvicorn

    uvicorn.run(
        "api.main:app_from_environment", factory=True, host="127.0.0.1", port=args.port, log_config=None
    )


if __name__ == "__main__":
    main()
