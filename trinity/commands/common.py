"""What every command shares: the one way a command fails."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(*lines: str) -> NoReturn:
    """Print each line on stderr and exit with status 1 (no traceback)."""
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(1)
