"""``trinity worker``: run a Trinity worker against the Prefect API.

The worker polls a work pool and runs the claimed flow runs in a few long-lived executor
processes (see :mod:`flows.worker`). Start several, on as many hosts as needed: they share the
pool through Prefect, and each flow run is claimed by exactly one of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Annotated

import typer


def delivery_status_dir() -> Path:
    """Where this host's executors keep their delivery counts (``trinity status`` reads them)."""
    from trinity.settings import ConfigError, load_settings

    try:
        state_dir = load_settings().state_dir
    except ConfigError:
        state_dir = ""
    return Path(state_dir or ".trinity").resolve() / "delivery"


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
    grace_seconds: Annotated[
        float | None,
        typer.Option(
            "--grace-seconds",
            help="On SIGTERM or Ctrl-C, seconds the runs in progress get to finish (default 30).",
        ),
    ] = None,
) -> None:
    """Run flow runs from a work pool in long-lived executor processes, until stopped.

    SIGTERM or Ctrl-C stops it gracefully: no new runs are claimed, the runs in progress get
    ``--grace-seconds`` to finish, runs claimed but not started go back to the pool. A second
    signal stops it at once.
    """
    from flows.worker.heartbeat import heartbeat_seconds
    from flows.worker.worker import WorkerOptions

    try:
        options = WorkerOptions.from_env(
            processes=processes,
            concurrency=concurrency,
            poll_seconds=poll_seconds,
            shutdown_grace_seconds=grace_seconds,
        )
        heartbeat_seconds()
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if name is not None and ("/" in name or "%" in name):
        typer.echo("error: --name cannot contain '/' or '%'", err=True)
        raise typer.Exit(1)
    from trinity.prefect_target import resolve_prefect_api_url, using_prefect_api
    from trinity.settings import ConfigError

    try:
        api_url = resolve_prefect_api_url()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
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
    from flows.worker.delivery import STATUS_DIR_VARIABLE

    os.environ.setdefault(STATUS_DIR_VARIABLE, str(delivery_status_dir()))
    from prefect.settings import PREFECT_CLIENT_RETRY_EXTRA_CODES, temporary_settings

    from flows.worker.tuning import RETRY_EXTRA_CODES

    retry_codes = {*PREFECT_CLIENT_RETRY_EXTRA_CODES.value(), *RETRY_EXTRA_CODES}
    try:
        # Executors inherit these settings through their environment.
        with (
            using_prefect_api(api_url),
            temporary_settings(updates={PREFECT_CLIENT_RETRY_EXTRA_CODES: retry_codes}),
        ):
            asyncio.run(_serve(pool=pool, name=name, options=options))
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        typer.echo(f"error: worker stopped: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None


async def _serve(*, pool: str, name: str | None, options: object) -> None:
    from flows.worker.worker import TrinityWorker, WorkerOptions

    assert isinstance(options, WorkerOptions)
    worker = TrinityWorker(work_pool_name=pool, name=name, options=options)
    task = asyncio.current_task()
    assert task is not None
    stopping: list[asyncio.Future[None]] = []

    def on_signal() -> None:
        # SIGTERM (from `trinity up`, systemd, Kubernetes) or Ctrl-C: stop gracefully; a second
        # signal stops at once.
        if stopping or not worker.is_setup:
            task.cancel()
            return
        graceful = asyncio.ensure_future(worker.stop_gracefully())
        graceful.add_done_callback(lambda _: task.cancel())
        stopping.append(graceful)

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    try:
        await worker.start(printer=lambda message: typer.echo(message, err=True))
    except asyncio.CancelledError:
        typer.echo(f"Worker {worker.name!r} stopped.", err=True)
