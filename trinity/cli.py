"""The ``trinity`` command line.

Each command group lives in its own module under :mod:`trinity.commands`, which declares the
commands' options and imports only Typer and the standard library at its top. Each command imports
what does its work when it runs, in one import: measured on the reference machine,
``trinity --help`` takes about 0.3 s, while importing Prefect alone takes about 1.5 s and the
document model (:mod:`specs`) about 0.4 s, so importing them at the top here would make every
``trinity --help`` and ``trinity validate`` pay for Prefect.
"""

from __future__ import annotations

import typer

from trinity.commands import (
    api_commands,
    graphql_commands,
    report_commands,
    run_commands,
    specs_commands,
    up_commands,
    worker_commands,
)

app = typer.Typer(
    name="trinity",
    help="Trinity: spec-driven workflows on Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _commands in (
    specs_commands,
    up_commands,
    run_commands,
    api_commands,
    report_commands,
    worker_commands,
    graphql_commands,
):
    _commands.register(app)

if __name__ == "__main__":
    app()
