"""The ``trinity`` command line.

Each command lives in its own module under :mod:`trinity.commands` and imports what it needs
lazily, so ``trinity validate`` never pays for importing Prefect.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="trinity",
    help="Trinity: spec-driven workflows on Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # One line per command module; each module exposes `register(app)`.
    from trinity.commands import specs_commands

    specs_commands.register(app)
    from trinity.commands import up_commands

    up_commands.register(app)
    from trinity.commands import run_commands

    run_commands.register(app)
    from trinity.commands import api_commands

    api_commands.register(app)
    from trinity.commands import report_commands

    report_commands.register(app)
    from trinity.commands import worker_commands

    worker_commands.register(app)
    from trinity.commands import graphql_commands

    graphql_commands.register(app)


_register()

if __name__ == "__main__":
    app()
