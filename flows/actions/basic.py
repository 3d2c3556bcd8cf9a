"""``noop`` and ``sleep``: the smallest actions, for wiring, tests and benchmarks."""

from __future__ import annotations

from typing import Any

import anyio

from flows.actions.base import ActionContext
from specs.actions import NoopInputs, SleepInputs


class NoopAction:
    """Do nothing; the output is ``with.output`` (None when absent)."""

    name = "noop"
    inputs = NoopInputs

    async def run(self, inputs: NoopInputs, context: ActionContext) -> Any:
        context.usage.add_cpu(0.0)
        return inputs.output


class SleepAction:
    """Wait ``seconds`` on the event loop (a task timeout interrupts it)."""

    name = "sleep"
    inputs = SleepInputs

    async def run(self, inputs: SleepInputs, context: ActionContext) -> None:
        context.usage.add_cpu(0.0)
        await anyio.sleep(inputs.seconds)
