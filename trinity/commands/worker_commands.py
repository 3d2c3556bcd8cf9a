"""``trinity worker``: run a Trinity worker against the Prefect API.

The worker polls a work pool and runs the claimed flow runs in a few long-lived executor
processes (see :mod:`flows.worker`). Start several, on as many hosts as needed: they share the
pool through Prefect, and each flow run is claimed by exactly one of them.
"""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``trinity worker`` to the CLI."""
    app.command("worker")(worker)


def worker(
    pool: Annotated[str, typer.Option("--pool", help="Work pool to serve (created if missing).")] = "trinity",
    processes: Annotated[
        int | None,
        typer.Option("--processes", help="Executor processes (default 2, or TRINITY_WORKER_PROCESSES)."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            help="Flow runs at once per executor process (default 16, or TRINITY_WORKER_CONCURRENCY).",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Worker name shown in Prefect.")] = None,
    poll_seconds: Annotated[
        float | None,
        typer.Option("--poll-seconds", help="How often an idle worker polls, in seconds (default 1)."),
    ] = None,
    shutdown_grace: Annotated[
        float | None,
        typer.Option("--shutdown-grace", help="Seconds runs get to finish on shutdown (default 30)."),
    ] = None,
) -> None:
    """Run flow runs from a work pool in long-lived executor processes, until stopped (Ctrl-C)."""
    from trinity.commands import worker_impl  # imports Prefect: see trinity.cli

    worker_impl.serve(
        pool=pool,
        name=name,
        processes=processes,
        concurrency=concurrency,
        poll_seconds=poll_seconds,
        shutdown_grace=shutdown_grace,
    )
