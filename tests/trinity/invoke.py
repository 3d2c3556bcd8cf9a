"""Running a ``trinity`` command group in-process, as the CLI tests do."""

from __future__ import annotations

from collections.abc import Callable

import typer
from typer.testing import CliRunner


def invoke(register: Callable[[typer.Typer], None], *args: str) -> tuple[int, str, str]:
    """Run ``args`` against an app holding the commands ``register`` adds: exit code, stdout, stderr.

    Anything raised but the exit the command asks for fails the test.
    """
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr
