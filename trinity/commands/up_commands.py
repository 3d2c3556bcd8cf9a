"""``trinity up``, ``trinity down``, ``trinity status``."""

from __future__ import annotations

import datetime
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "specs" / "examples"

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Folder for databases, logs and secrets (default: state_dir of the config, else .trinity).",
        envvar="TRINITY_STATE_DIR",
        show_default=False,
    ),
]


def _settings(flags: dict[str, Any] | None = None) -> Any:
    """The settings with these flags on top; a broken configuration is one error line."""
    from trinity.core.config import load_settings
    from trinity.core.settings import ConfigError

    try:
        return load_settings(flags=flags)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _state_dir(given: Path | None) -> Path:
    """The flag (or ``TRINITY_STATE_DIR``), else the configured ``state_dir``."""
    # Given, the configuration is not needed: `down` works even beside a broken file.
    if given is not None:
        return given.resolve()
    return Path(_settings().state_dir).resolve()


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
    """Start the Prefect server, the Trinity API and a worker; deploy the examples; keep them running."""
    from trinity.stack import AlreadyRunningError, StackConfig, StackError, bring_up, read_status

    settings = _settings(
        {
            "state_dir": str(state_dir) if state_dir is not None else None,
            "prefect.database_url": database_url,
            "database.url": trinity_database_url,
            "prefect.work_pool": pool,
        }
    )
    config = StackConfig(
        state_dir=Path(settings.state_dir).resolve(),
        host=host,
        prefect_port=prefect_port,
        api_port=api_port,
        prefect_database_url=settings.prefect.database_url or None,
        trinity_database_url=settings.database.url or None,
        pool=settings.prefect.work_pool,
        worker_processes=worker_processes,
        examples=examples if examples is not None else [EXAMPLES_DIR],
        demo_workflow=demo_workflow,
        demo_params=demo_param if demo_param is not None else [f"day={datetime.date.today().isoformat()}"],
        demo=not no_demo,
    )
    stopping = {"flag": False}

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    def say(line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        for part in line.splitlines() or [""]:
            typer.echo(f"{stamp}  {part}" if part else "")
        sys.stdout.flush()

    try:
        bring_up(config, say=say, stop_requested=lambda: stopping["flag"])
    except AlreadyRunningError as exc:
        # Running it again is not an error: show what runs, as `trinity status` would.
        data = read_status(config.state_dir)
        if data is not None:
            _echo_status(data)
        typer.echo(f"trinity is already up for {config.state_dir} (pid {exc.pid}); `trinity down` stops it")
    except StackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def down(state_dir: StateDir = None) -> None:
    """Stop a running `trinity up` and every process it started."""
    from trinity.stack import StackError, bring_down

    folder = _state_dir(state_dir)
    try:
        stopped = bring_down(folder)
    except StackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if not stopped:
        typer.echo(f"nothing is running for {folder}")
    for what in stopped:
        typer.echo(f"stopped {what}")


def status(state_dir: StateDir = None) -> None:
    """Show what `trinity up` runs: each child, its pid, health and restarts. Exit 1 when down."""
    from trinity.stack import read_status

    folder = _state_dir(state_dir)
    data = read_status(folder)
    if data is None:
        typer.echo(f"trinity is not running (state folder {folder})")
        raise typer.Exit(1)
    _echo_status(data)


def _echo_status(data: dict[str, object]) -> None:
    typer.echo(f"trinity up: pid {data.get('supervisor_pid')}, ready: {bool(data.get('ready'))}")
    for key in ("prefect_ui", "api_docs"):
        if key in data:
            typer.echo(f"  {key.replace('_', ' '):12} {data[key]}")
    children = data.get("children")
    for child in children if isinstance(children, list) else []:
        state = "healthy" if child.get("healthy") else ("running" if child.get("alive") else "down")
        typer.echo(
            f"  {child['name']:16} pid {child.get('pid')!s:>7}  {state:8} restarts {child.get('restarts')}"
        )


def register(app: typer.Typer) -> None:
    """Add ``up``, ``down`` and ``status`` to the CLI."""
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
