"""What every action sees: its context, resource accounting, and the errors it raises.

An action is any object with ``name: str``, ``inputs`` (a pydantic model of its ``with``) and
``run(inputs, context)``; ``run`` may be a coroutine function (awaited on the flow's event loop, so
a task timeout cancels it) or a plain function (run in a worker thread of the run's own pool).

Resource accounting is cheap and says what it measures:

* ``cpu_seconds`` -- CPU time of the thread that ran the blocking work (``time.thread_time``), or
  the user + system time of a child process and its waited-for children (``os.wait4`` rusage).
  Work done on the event loop between awaits is not attributed, because other tasks of the same
  run share that thread; such actions leave it ``None`` unless they know better (``sleep``: 0).
* ``peak_memory_bytes`` -- a child process's own peak RSS for ``shell``; for in-process actions the
  executing process's peak RSS (high-water mark) when the task finished: an upper bound, since the
  process hosts the whole run. ``tracemalloc`` would be exact but slows every allocation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread
from pydantic import BaseModel

T = TypeVar("T")


class ActionError(Exception):
    """An action failed in a way its user should read (no traceback needed)."""


class ActionInputError(ActionError):
    """The rendered ``with`` does not fit the action's inputs; retrying cannot help."""


class ActionTimeoutError(ActionError, TimeoutError):
    """An action's own time limit ran out (Prefect records the task as TimedOut)."""


@dataclass
class Usage:
    """Resources one task attempt used (``None`` when not measured)."""

    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None

    def add_cpu(self, seconds: float) -> None:
        self.cpu_seconds = (self.cpu_seconds or 0.0) + max(seconds, 0.0)

    def add_memory_peak(self, peak_bytes: int) -> None:
        self.peak_memory_bytes = max(self.peak_memory_bytes or 0, peak_bytes)


@dataclass
class ActionContext:
    """Where an action runs: the task, the run, its parameters, a logger and the usage record."""

    task_id: str
    label: str
    workflow: str
    params: Mapping[str, Any]
    run: Mapping[str, Any]
    item: Any
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    thread_limiter: anyio.CapacityLimiter
    usage: Usage = field(default_factory=Usage)

    async def run_in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking code in a worker thread and count that thread's CPU time.

        A task timeout abandons the thread (Python cannot stop a thread); the work finishes or
        fails in the background and its result is dropped.
        """

        def measured() -> T:
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.usage.add_cpu(time.thread_time() - start)

        return await anyio.to_thread.run_sync(measured, limiter=self.thread_limiter, abandon_on_cancel=True)


class Action(Protocol):
    """The shape of an action (built-in or from the ``trinity.actions`` entry-point group)."""

    name: str

    # Read-only here, so an action may narrow it to its own inputs model.
    @property
    def inputs(self) -> type[BaseModel]: ...

    def run(self, inputs: Any, context: ActionContext) -> Any: ...
