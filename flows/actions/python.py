"""``python``: call ``module:function`` with ``args`` and ``kwargs``; the return value is the output."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from flows.actions.base import ActionContext, ActionError
from specs.actions import PythonInputs


def import_callable(path: str) -> Any:
    """Import ``package.module:attr.attr`` and return the object (ActionError when it is missing)."""
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ActionError(f"cannot import module '{module_name}': {type(exc).__name__}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ActionError(f"module '{module_name}' has no attribute '{attribute}'") from None
    if not callable(target):
        raise ActionError(f"'{path}' is not callable")
    return target


class PythonAction:
    """Coroutine functions are awaited on the event loop; plain functions run in a worker thread."""

    name = "python"
    inputs = PythonInputs

    async def run(self, inputs: PythonInputs, context: ActionContext) -> Any:
        function = import_callable(inputs.callable)
        if inspect.iscoroutinefunction(function):
            return await function(*inputs.args, **inputs.kwargs)
        return await context.run_in_thread(function, *inputs.args, **inputs.kwargs)
