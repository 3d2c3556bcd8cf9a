"""``trinity deploy`` and ``trinity run``: workflows on Prefect from the command line.

``deploy`` validates files and makes one Prefect deployment per workflow. ``run`` runs a workflow
file in this process (against the configured Prefect API) or a deployed workflow by name through
its deployment (a worker picks it up), optionally with a live view of its task states. Problems
are printed one per line and exit with status 1; a run that does not complete exits with 1 too.

This module holds the options; what each command does is in its ``*_impl`` module, imported when
the command runs (see :mod:`trinity.cli` for why).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Params = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="A parameter as KEY=VALUE (VALUE parsed as JSON where it parses)."),
]


def deploy(
    paths: Annotated[
        list[Path], typer.Argument(help="Workflow files or folders (with their specifications).")
    ],
    pool: Annotated[str, typer.Option("--pool", help="Work pool the deployments run on.")] = "trinity",
    paused: Annotated[bool, typer.Option("--paused", help="Create the deployments paused.")] = False,
    write_prefect_yaml: Annotated[
        Path | None, typer.Option("--write-prefect-yaml", help="Also write an equivalent prefect.yaml here.")
    ] = None,
    analytics: Annotated[
        bool,
        typer.Option(
            "--analytics/--no-analytics",
            help="Also deploy the analytics flows (schedules from trinity.config.yml's `analytics`).",
        ),
    ] = True,
) -> None:
    """Validate workflows and create or update one Prefect deployment per workflow."""
    from trinity.commands import deploy_impl  # imports Prefect: see trinity.cli

    deploy_impl.deploy(paths, pool=pool, paused=paused, prefect_yaml=write_prefect_yaml, analytics=analytics)


def run(
    target: Annotated[str, typer.Argument(help="A workflow file (run here) or a deployed workflow's name.")],
    param: Params = None,
    watch: Annotated[bool, typer.Option("--watch", help="Show the tasks' states live.")] = False,
    spec: Annotated[
        list[Path] | None, typer.Option("--spec", help="More files with the specification (file runs).")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", help="Deployed runs: stop waiting after this many seconds (the run goes on)."
        ),
    ] = None,
) -> None:
    """Run a workflow and wait for it; exit 0 when it completes."""
    from trinity.commands import run_impl  # imports Prefect: see trinity.cli

    run_impl.run(target, param or [], watch=watch, spec_files=spec or [], timeout=timeout)


def register(app: typer.Typer) -> None:
    """Add ``deploy`` and ``run`` to the CLI."""
    app.command("deploy")(deploy)
    app.command("run")(run)
