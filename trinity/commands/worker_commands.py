"""``trinity worker``: run a Trinity worker against the Prefect API.

The worker polls a work pool and runs the claimed flow runs in a few long-lived executor
processes (see :mod:`flows.worker`). Start several, on as many hosts as needed: they share the
pool through Prefect, and each flow run is claimed by exactly one of them. Each needs only the
Prefect API and Trinity's database, from flags, the environment or its own
``trinity.config.yml``, resolved like every Trinity process resolves its settings.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``trinity worker`` to the CLI."""
    app.command("worker")(worker)


def worker(
    pool: Annotated[
        str | None,
        typer.Option(
            "--pool", help="Work pool to serve, created if missing (default: prefect.work_pool, trinity)."
        ),
    ] = None,
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
    grace_seconds: Annotated[
        float | None,
        typer.Option(
            "--grace-seconds",
            "--shutdown-grace",
            help="On SIGTERM or Ctrl-C, seconds the runs in progress get to finish (default 30).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Configuration file (default: $TRINITY_CONFIG, ./trinity.config.yml)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Trinity's database, where each run's execution log goes (default: $TRINITY_DATABASE_URL, "
            "else database.url of the config, else SQLite in the state folder).",
        ),
    ] = None,
    prefect_api_url: Annotated[
        str | None,
        typer.Option(
            "--prefect-api-url",
            help="Prefect API to serve (default: $PREFECT_API_URL, else prefect.api_url of the config, "
            "else the running `trinity up`).",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve Prometheus metrics (trinity_…) of this worker and its executors on this port.",
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            "--metrics-host", help="Address the metrics port listens on (default: every interface)."
        ),
    ] = "0.0.0.0",
) -> None:
    """Run flow runs from a work pool in long-lived executor processes, until stopped.

    SIGTERM or Ctrl-C stops it gracefully: no new runs are claimed, the runs in progress get
    `--grace-seconds` to finish, runs claimed but not started go back to the pool. A second
    signal stops it at once.
    """
    if metrics_port is not None:
        # Before Prefect (which imports prometheus_client) is imported: the executors and this
        # process then share their figures through files in this folder.
        # (prometheus_client's own variable, read when it is imported.)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="trinity-metrics-")
    try:
        from trinity.commands import worker_impl  # imports Prefect: see trinity.cli
    except ImportError as exc:  # e.g. an unsupported Prefect (flows/worker/prefect_compat.py)
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None

    worker_impl.serve(
        pool=pool,
        name=name,
        processes=processes,
        concurrency=concurrency,
        poll_seconds=poll_seconds,
        grace_seconds=grace_seconds,
        config=config,
        database_url=database_url,
        prefect_api_url=prefect_api_url,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
