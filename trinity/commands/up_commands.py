"""``trinity up``, ``trinity down``, ``trinity status``.

What each command does is in :mod:`trinity.commands.up_impl`, imported when it runs (see
:mod:`trinity.cli` for why).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Folder for databases, logs and secrets (default: state_dir of the config, else .trinity).",
        envvar="TRINITY_STATE_DIR",
        show_default=False,
    ),
]


def up(
    state_dir: StateDir = None,
    host: Annotated[str, typer.Option(help="Address every service listens on.")] = "127.0.0.1",
    prefect_port: Annotated[int, typer.Option(help="Port of the Prefect server and UI.")] = 4200,
    api_port: Annotated[int, typer.Option(help="Port of the Trinity API.")] = 8000,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL URL for Prefect's database (default: prefect.database_url of the config, "
            "else SQLite in the state folder)."
        ),
    ] = None,
    trinity_database_url: Annotated[
        str | None,
        typer.Option(
            help="Database URL for Trinity's tables (default: database.url of the config, "
            "else SQLite in the state folder).",
            envvar="TRINITY_DATABASE_URL",
        ),
    ] = None,
    pool: Annotated[
        str | None, typer.Option(help="Work pool the worker serves (default: prefect.work_pool, trinity).")
    ] = None,
    worker_processes: Annotated[int, typer.Option(help="Executor processes of the worker.")] = 2,
    examples: Annotated[
        list[Path] | None, typer.Option("--examples", help="Workflow files or folders to deploy.")
    ] = None,
    demo_workflow: Annotated[
        str, typer.Option(help="Example workflow run once at start.")
    ] = "regional-report",
    demo_param: Annotated[
        list[str] | None, typer.Option("--demo-param", help="k=v parameter of the demo run (repeatable).")
    ] = None,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Skip the demo run.")] = False,
) -> None:
    """Start the Prefect server, the Trinity API and a worker; deploy the examples; keep them running.

    prefect.api_replicas > 1 in trinity.config.yml: that many Prefect API servers behind HAProxy.
    """
    from trinity.commands import up_impl  # imports the settings model and httpx: see trinity.cli

    up_impl.up(
        state_dir=state_dir,
        host=host,
        prefect_port=prefect_port,
        api_port=api_port,
        database_url=database_url,
        trinity_database_url=trinity_database_url,
        pool=pool,
        worker_processes=worker_processes,
        examples=examples,
        demo_workflow=demo_workflow,
        demo_params=demo_param,
        demo=not no_demo,
    )


def down(state_dir: StateDir = None) -> None:
    """Stop a running `trinity up` and every process it started."""
    from trinity.commands import up_impl  # see trinity.cli

    up_impl.down(state_dir)


def status(
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as one JSON document.")] = False,
) -> None:
    """Show what `trinity up` runs: each child, its pid, health and restarts, and the worker's log
    delivery (buffered now, delivered late, dropped). Exit 1 when down."""
    from trinity.commands import up_impl  # see trinity.cli

    up_impl.status(state_dir, as_json=as_json)


def register(app: typer.Typer) -> None:
    """Add ``up``, ``down`` and ``status`` to the CLI."""
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
