"""What ``trinity worker`` does (its options are in :mod:`trinity.commands.worker_commands`)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import sqlalchemy as sa
import typer

from flows.analytics.database import first_line
from flows.worker.worker import TrinityWorker, WorkerOptions
from trinity.commands.common import fail
from trinity.commands.prefect_calls import prefect_api_url as resolved_prefect_api_url
from trinity.core.config import child_environment, load_settings
from trinity.core.settings import ConfigError
from trinity.core.tables import execution_logs
from trinity.core.urls import DatabaseURLError, describe_url, is_sqlite, normalise_url, sqlite_file
from trinity.prefect_target import using_prefect_api


def serve(
    *,
    pool: str | None,
    name: str | None,
    processes: int | None,
    concurrency: int | None,
    poll_seconds: float | None,
    shutdown_grace: float | None,
    config: Path | None,
    database_url: str | None,
    prefect_api_url: str | None,
) -> None:
    """Serve ``pool`` until stopped (Ctrl-C or SIGTERM); a worker that stops on an error exits 1."""
    try:
        options = WorkerOptions.from_env(
            processes=processes,
            concurrency=concurrency,
            poll_seconds=poll_seconds,
            shutdown_grace_seconds=shutdown_grace,
        )
    except ValueError as exc:
        fail(f"error: {exc}")
    if name is not None and ("/" in name or "%" in name):
        fail("error: --name cannot contain '/' or '%'")
    try:
        settings = load_settings(config, flags={"database.url": database_url, "prefect.work_pool": pool})
        normalise_url(settings.database_url)
    except ConfigError as exc:
        fail(f"error: {exc}")
    except DatabaseURLError as exc:
        fail(f"error: database.url: {exc}")
    # Executor processes, and analytics flows run in them, resolve the same settings from their
    # environment, even after a deployment's pull step changed their folder.
    inherited = child_environment(settings)
    os.environ.update(inherited)
    api_url = prefect_api_url or resolved_prefect_api_url()
    if api_url is None:
        fail(
            "error: no Prefect API to serve: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api), "
            "prefect.api_url in trinity.config.yml, or start `trinity up`"
        )
    # Executor processes read the URL from their environment; this process from its settings.
    os.environ["PREFECT_API_URL"] = api_url
    _report_database(inherited["TRINITY_DATABASE_URL"], connect_timeout=settings.database.connect_timeout)
    try:
        with using_prefect_api(api_url):
            asyncio.run(_serve(pool=settings.prefect.work_pool, name=name, options=options))
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        fail(f"error: worker stopped: {type(exc).__name__}: {exc}")


def _report_database(url: str, *, connect_timeout: int) -> None:
    """Say where runs are recorded; warn when that database cannot take them now."""
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


async def _serve(*, pool: str, name: str | None, options: WorkerOptions) -> None:
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
