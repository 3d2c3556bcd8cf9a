"""What ``trinity up``, ``down`` and ``status`` do.

Their options are in :mod:`trinity.commands.up_commands`.
"""

from __future__ import annotations

import datetime
import json
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType

import typer

from flows.monitoring.status import describe as sink_status_lines
from flows.monitoring.status import read_sink_status
from flows.worker.delivery_status import delivery_status_dir, read_delivery_status
from trinity.commands.common import fail
from trinity.core.config import load_settings
from trinity.core.settings import ConfigError, Settings
from trinity.stack import AlreadyRunningError, bring_down, bring_up, read_status
from trinity.stack_config import StackConfig
from trinity.stack_setup import StackError
from trinity.topology import Topology, part_of

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "specs" / "examples"


def up(
    *,
    state_dir: Path | None,
    host: str,
    prefect_port: int,
    api_port: int,
    database_url: str | None,
    trinity_database_url: str | None,
    pool: str | None,
    worker_processes: int,
    examples: list[Path] | None,
    demo_workflow: str,
    demo_params: list[str] | None,
    demo: bool,
) -> None:
    """Bring the stack up and keep it up until Ctrl-C, SIGTERM or ``trinity down``."""
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
        demo_params=demo_params if demo_params is not None else [f"day={datetime.date.today().isoformat()}"],
        demo=demo,
        topology=Topology.from_settings(settings),
    )
    try:
        config.topology.check_installed()
    except StackError as exc:
        fail(f"error: {exc}")
    stopping = {"flag": False}

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        bring_up(config, say=_say, stop_requested=lambda: stopping["flag"])
    except AlreadyRunningError as exc:
        if exc.starting:
            # Two started at once: the other one won the lock and is starting the stack.
            fail(
                f"error: another trinity up (pid {exc.pid or 'unknown'}) is starting the stack for "
                f"{config.state_dir}; this one stops (`trinity status` shows it, `trinity down` stops it)"
            )
        # Running it again is not an error: show what runs, as `trinity status` would.
        data = read_status(config.state_dir)
        if data is not None:
            _echo_status(data)
        typer.echo(f"trinity is already up for {config.state_dir} (pid {exc.pid}); `trinity down` stops it")
    except StackError as exc:
        fail(f"error: {exc}")


def down(state_dir: Path | None) -> None:
    """Stop the ``trinity up`` of the state folder (or what a killed one left running); say what stopped."""
    folder = _state_dir(state_dir)
    try:
        stopped = bring_down(folder)
    except StackError as exc:
        fail(f"error: {exc}")
    if not stopped:
        typer.echo(f"nothing is running for {folder}")
    for what in stopped:
        typer.echo(f"stopped {what}")


def status(state_dir: Path | None, *, as_json: bool = False) -> None:
    """Print what the ``trinity up`` of the state folder runs; exit 1 when none runs."""
    folder = _state_dir(state_dir)
    data = read_status(folder)
    sink_figures = read_sink_status(folder / "sinks")
    sinks = sink_status_lines(sink_figures)
    if data is None:
        if as_json:
            typer.echo(json.dumps({"running": False, "state_dir": str(folder)}))
        else:
            typer.echo(f"trinity is not running (state folder {folder})")
            for line in sinks:
                typer.echo(line)
        raise typer.Exit(1)
    # What the worker's executors hold for Prefect while it is away, and what they lost.
    data["delivery"] = asdict(read_delivery_status(delivery_status_dir(folder)))
    data["sinks"] = sink_figures
    children = data.get("children")
    data["parts"] = (
        [part_of(child) for child in children if isinstance(child, dict)]
        if isinstance(children, list)
        else []
    )
    if as_json:
        typer.echo(json.dumps({"running": True, **data}, indent=2, default=str))
        return
    _echo_status(data)
    for line in sinks:
        typer.echo(line)


def _settings(flags: dict[str, str | None] | None = None) -> Settings:
    """The settings with these flags on top; a broken configuration is one error line."""
    try:
        return load_settings(flags=flags)
    except ConfigError as exc:
        fail(*(f"error: {line}" for line in exc.lines))


def _state_dir(given: Path | None) -> Path:
    """The flag (or ``TRINITY_STATE_DIR``), else the configured ``state_dir``."""
    # Given, the configuration is not needed: `down` works even beside a broken file.
    if given is not None:
        return given.resolve()
    return Path(_settings().state_dir).resolve()


def _say(line: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    for part in line.splitlines() or [""]:
        typer.echo(f"{stamp}  {part}" if part else "")
    sys.stdout.flush()


def _echo_status(data: dict[str, object]) -> None:
    typer.echo(f"trinity up: pid {data.get('supervisor_pid')}, ready: {bool(data.get('ready'))}")
    for key in ("prefect_ui", "api_docs"):
        if key in data:
            typer.echo(f"  {key.replace('_', ' '):12} {data[key]}")
    children = data.get("children")
    for child in children if isinstance(children, list) else []:
        state = "healthy" if child.get("healthy") else ("running" if child.get("alive") else "down")
        line = f"  {child['name']:16} pid {child.get('pid')!s:>7}  {state:8} restarts {child.get('restarts')}"
        if child.get("restart_in") is not None:
            line += f" (next restart in {child['restart_in']}s)"
        typer.echo(line)
    delivery = data.get("delivery")
    if isinstance(delivery, dict):
        typer.echo(
            f"  worker log delivery: {delivery.get('logs_waiting', 0)} line(s) buffered now, "
            f"{delivery.get('logs_delivered_late', 0)} delivered late, "
            f"{delivery.get('logs_dropped', 0)} dropped; events dropped {delivery.get('events_dropped', 0)}"
        )
