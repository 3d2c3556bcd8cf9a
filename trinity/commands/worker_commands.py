"""``trinity worker``: run a Trinity worker against the Prefect API.

The worker polls a work pool and runs the claimed flow runs in a few long-lived executor
processes (see :mod:`flows.worker`). Start several, on as many hosts as needed: they share the
pool through Prefect, and each flow run is claimed by exactly one of them. Each needs only the
Prefect API and Trinity's database, from flags, the environment or its own
``trinity.config.yml``, resolved like every Trinity process resolves its settings.
"""

from __future__ import annotations

import asyncio
import os
import signal
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
    shutdown_grace: Annotated[
        float | None,
        typer.Option("--shutdown-grace", help="Seconds runs get to finish on shutdown (default 30)."),
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
) -> None:
    """Run flow runs from a work pool in long-lived executor processes, until stopped (Ctrl-C)."""
    from flows.worker.worker import WorkerOptions

    try:
        options = WorkerOptions.from_env(
            processes=processes,
            concurrency=concurrency,
            poll_seconds=poll_seconds,
            shutdown_grace_seconds=shutdown_grace,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if name is not None and ("/" in name or "%" in name):
        typer.echo("error: --name cannot contain '/' or '%'", err=True)
        raise typer.Exit(1)
    from trinity.core.config import child_environment, load_settings
    from trinity.core.settings import ConfigError
    from trinity.core.urls import DatabaseURLError, normalise_url
    from trinity.prefect_target import resolve_prefect_api_url, using_prefect_api

    try:
        settings = load_settings(config, flags={"database.url": database_url, "prefect.work_pool": pool})
        normalise_url(settings.database_url)
        # Executor processes, and analytics flows run in them, resolve the same settings from
        # their environment, even after a deployment's pull step changed their folder.
        inherited = child_environment(settings)
        os.environ.update(inherited)
        api_url = prefect_api_url or resolve_prefect_api_url()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except DatabaseURLError as exc:
        typer.echo(f"error: database.url: {exc}", err=True)
        raise typer.Exit(1) from None
    if api_url is None:
        typer.echo(
            "error: no Prefect API to serve: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api), "
            "prefect.api_url in trinity.config.yml, or start `trinity up`",
            err=True,
        )
        raise typer.Exit(1)
    # Executor processes read the URL from their environment; this process from its settings.
    os.environ["PREFECT_API_URL"] = api_url
    _report_database(inherited["TRINITY_DATABASE_URL"], connect_timeout=settings.database.connect_timeout)
    try:
        with using_prefect_api(api_url):
            asyncio.run(_serve(pool=settings.prefect.work_pool, name=name, options=options))
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        typer.echo(f"error: worker stopped: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None


def _report_database(url: str, *, connect_timeout: int) -> None:
    """Say where runs are recorded; warn when that database cannot take them now."""
    import sqlalchemy as sa

    from flows.analytics.database import first_line
    from trinity.core.tables import execution_logs
    from trinity.core.urls import describe_url, is_sqlite, normalise_url, sqlite_file

    where = describe_url(url)
    typer.echo(f"Recording execution logs to {where}", err=True)
    target = normalise_url(url)
    not_migrated = "runs are not recorded until `trinity api` or `trinity report` has migrated it"
    path = sqlite_file(target)
    if path is not None and not path.is_file():
        # Connecting would create an empty file.
        typer.echo(f"warning: {path} does not exist: {not_migrated}", err=True)
        return
    connect_args = {} if is_sqlite(target) else {"connect_timeout": connect_timeout}
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            migrated = sa.inspect(connection).has_table(execution_logs.name)
    except sa.exc.SQLAlchemyError as exc:
        typer.echo(
            f"warning: cannot reach {where} ({first_line(exc)}): runs are not recorded while it is down",
            err=True,
        )
        return
    finally:
        engine.dispose()
    if not migrated:
        typer.echo(f"warning: {where} has no {execution_logs.name} table: {not_migrated}", err=True)


async def _serve(*, pool: str, name: str | None, options: object) -> None:
    from flows.worker.worker import TrinityWorker, WorkerOptions

    assert isinstance(options, WorkerOptions)
    worker = TrinityWorker(work_pool_name=pool, name=name, options=options)
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM (from `trinity up`, systemd, Kubernetes) stops the worker like Ctrl-C does:
    # runs in progress get the shutdown grace period.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await worker.start(printer=lambda message: typer.echo(message, err=True))
    except asyncio.CancelledError:
        typer.echo(f"Worker {worker.name!r} stopped.", err=True)
