"""What ``trinity worker`` does (its options are in :mod:`trinity.commands.worker_commands`)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import sqlalchemy as sa
import typer
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_CLIENT_RETRY_EXTRA_CODES, temporary_settings

from flows.analytics.database import first_line
from flows.monitoring.hooks import WORKER_NAME_VARIABLE
from flows.monitoring.serving import serve_worker_metrics
from flows.worker.delivery_status import STATUS_DIR_VARIABLE
from flows.worker.heartbeat import heartbeat_seconds
from flows.worker.tuning import RETRY_EXTRA_CODES
from flows.worker.worker import TrinityWorker, WorkerOptions
from trinity.commands.common import fail
from trinity.commands.prefect_calls import prefect_api_url as resolved_prefect_api_url
from trinity.core.config import child_environment, load_settings
from trinity.core.settings import ConfigError
from trinity.core.signing import DEFINITION_KEY_ENV, MISSING_KEY_MESSAGE
from trinity.core.tables import execution_logs
from trinity.core.urls import DatabaseURLError, describe_url, is_sqlite, normalise_url, sqlite_file
from trinity.prefect_target import running_stack_secrets, using_prefect_api


def serve(
    *,
    pool: str | None,
    name: str | None,
    processes: int | None,
    concurrency: int | None,
    poll_seconds: float | None,
    grace_seconds: float | None,
    config: Path | None,
    database_url: str | None,
    prefect_api_url: str | None,
    metrics_port: int | None = None,
    metrics_host: str = "0.0.0.0",
) -> None:
    """Serve ``pool`` until stopped (Ctrl-C or SIGTERM); a worker that stops on an error exits 1."""
    try:
        options = WorkerOptions.from_env(
            processes=processes,
            concurrency=concurrency,
            poll_seconds=poll_seconds,
            shutdown_grace_seconds=grace_seconds,
        )
        heartbeat_seconds()  # a bad TRINITY_HEARTBEAT_SECONDS is named before anything starts
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
    # Serving the running `trinity up`'s Prefect, its secrets apply unless configured otherwise.
    stack_secrets = running_stack_secrets(api_url)
    key = settings.security.definition_key or stack_secrets.get("definition_key")
    if not key:
        # Every stored definition is checked against it; without one, none could run.
        fail(f"error: {MISSING_KEY_MESSAGE}")
    os.environ[DEFINITION_KEY_ENV] = key
    auth_string = PREFECT_API_AUTH_STRING.value() or stack_secrets.get("prefect_auth_string")
    if auth_string:
        os.environ["PREFECT_API_AUTH_STRING"] = auth_string
    # Where this host's executors keep their delivery counts (`trinity status` reads them).
    os.environ.setdefault(STATUS_DIR_VARIABLE, str(Path(settings.state_dir).resolve() / "delivery"))
    _report_database(inherited["TRINITY_DATABASE_URL"], connect_timeout=settings.database.connect_timeout)
    retry_codes = {*PREFECT_CLIENT_RETRY_EXTRA_CODES.value(), *RETRY_EXTRA_CODES}
    try:
        # Executors inherit these settings through their environment.
        with (
            using_prefect_api(api_url),
            temporary_settings(updates={PREFECT_CLIENT_RETRY_EXTRA_CODES: retry_codes}),
        ):
            if metrics_port is not None:
                try:
                    where = serve_worker_metrics(metrics_host, metrics_port)
                except OSError as exc:
                    fail(f"error: --metrics-port {metrics_port}: cannot listen: {exc.strerror or exc}")
                typer.echo(f"Prometheus metrics at {where}", err=True)
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
    # The executors tag what they send to the sinks with this worker's name.
    os.environ[WORKER_NAME_VARIABLE] = worker.name
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
