"""What ``trinity worker`` does (its options are in :mod:`trinity.commands.worker_commands`)."""

from __future__ import annotations

import asyncio
import os
import signal

import typer

from flows.worker.worker import TrinityWorker, WorkerOptions
from trinity.commands.common import fail
from trinity.commands.prefect_calls import prefect_api_url
from trinity.prefect_target import using_prefect_api


def serve(
    *,
    pool: str,
    name: str | None,
    processes: int | None,
    concurrency: int | None,
    poll_seconds: float | None,
    shutdown_grace: float | None,
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
    api_url = prefect_api_url()
    if api_url is None:
        fail(
            "error: no Prefect API to serve: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api), "
            "prefect.api_url in trinity.config.yml, or start `trinity up`"
        )
    # Executor processes read the URL from their environment; this process from its settings.
    os.environ["PREFECT_API_URL"] = api_url
    try:
        with using_prefect_api(api_url):
            asyncio.run(_serve(pool=pool, name=name, options=options))
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        fail(f"error: worker stopped: {type(exc).__name__}: {exc}")


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
