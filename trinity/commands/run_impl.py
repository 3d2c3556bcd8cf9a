"""What ``trinity run`` does (its options are in :mod:`trinity.commands.run_commands`).

A workflow file runs in this process, against the configured Prefect API; a deployed workflow's
name starts a run of its deployment, which a worker picks up. Either way the command waits for the
run (optionally showing its tasks' states live) and exits 0 only when it completes.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from deployments.pairing import pair_documents
from deployments.runs import DeploymentNotFoundError, RunError, RunStatus, start_run
from deployments.watch import (
    RunOutcome,
    StatusCallback,
    deployed_task_ids,
    find_workflow_deployment,
    run_here,
    wait_for_run,
)
from flows.worker.heartbeat import heartbeat_seconds
from specs.naming import deployment_full_name
from specs.secrets import secret_parameters
from trinity.commands.common import fail
from trinity.commands.documents import check_params, load_documents, parse_params
from trinity.commands.prefect_calls import call_prefect, prefect_api_url

WORKFLOW_FILE_SUFFIXES = (".yaml", ".yml", ".json")
GAVE_UP = "gave up waiting; the run goes on (see the Prefect UI)"
_STYLE = {"COMPLETED": "green", "FAILED": "red", "CRASHED": "red", "RUNNING": "cyan", "CANCELLED": "yellow"}


def run(
    target: str, param_texts: Sequence[str], *, watch: bool, spec_files: Sequence[Path], timeout: float | None
) -> None:
    """Run ``target`` (a workflow file, or a deployed workflow's name) and wait for it."""
    params = parse_params(param_texts)
    try:
        heartbeat_seconds()  # a bad TRINITY_HEARTBEAT_SECONDS is named before anything is sent
    except ValueError as exc:
        fail(f"error: {exc}")
    path = Path(target)
    if path.is_file() or target.endswith(WORKFLOW_FILE_SUFFIXES):
        outcome = _run_file(path, spec_files, params, watch)
    else:
        outcome = _run_deployed(target, params, watch, timeout)
    where = f" ({outcome.ui_url})" if outcome.ui_url else ""
    if outcome.state_type == "COMPLETED":
        typer.echo(f"{outcome.state_name}{where}")
        return
    message = outcome.message if outcome.final else GAVE_UP
    fail(f"{outcome.state_name}: {message or 'the run did not complete'}{where}")


def _run_file(path: Path, spec_files: Sequence[Path], params: dict[str, Any], watch: bool) -> RunOutcome:
    if not path.is_file():
        fail(f"{path}: error: no such file")
    pairing = pair_documents(load_documents([path, *spec_files]))
    if pairing.missing:
        fail(*(f"{path}: error: {line} (add its file with --spec FILE)" for line in pairing.missing))
    if len(pairing.pairs) != 1:
        names = ", ".join(workflow.name for workflow, _ in pairing.pairs) or "none"
        fail(f"{path}: error: expected exactly one workflow, found: {names}")
    workflow, specification = pairing.pairs[0]
    params = check_params(specification.parameters, params)

    def created(flow_run_name: str) -> None:
        typer.echo(f"running {workflow.name} {workflow.version} here as flow run '{flow_run_name}'", err=True)

    async def run_and_wait() -> RunOutcome:
        with _progress([task.id for task in workflow.tasks], watch) as show:
            return await run_here(
                workflow, specification, params, on_created=created, on_status=show, on_note=_note
            )

    return call_prefect(prefect_api_url(), run_and_wait)


def _run_deployed(name: str, params: dict[str, Any], watch: bool, timeout: float | None) -> RunOutcome:
    return call_prefect(
        prefect_api_url(), functools.partial(_through_deployment, name, params, watch, timeout)
    )


async def _through_deployment(
    name: str, params: dict[str, Any], watch: bool, timeout: float | None
) -> RunOutcome:
    try:
        deployment = await find_workflow_deployment(name)
    except DeploymentNotFoundError:
        fail(f"error: no deployment '{deployment_full_name(name)}' (deploy it with `trinity deploy FILE`)")
    params = check_params(deployment.parameters_schema, params)
    try:
        ref = await start_run(
            deployment_id=deployment.deployment_id,
            parameters=params,
            secrets=secret_parameters(deployment.parameters_schema),
        )
    except RunError as exc:
        fail(f"error: Prefect refused the run: {exc}")
    pool = deployment.work_pool_name
    typer.echo(f"started flow run {ref.flow_run_id} of {deployment.full_name} on pool '{pool}'", err=True)

    def no_worker() -> None:
        typer.echo(
            f"waiting for a worker on pool '{pool}' "
            f"(start one: prefect worker start --pool {pool} --type process)",
            err=True,
        )

    task_ids = await deployed_task_ids(deployment) if watch else []
    with _progress(task_ids, watch) as show:
        return await wait_for_run(
            ref.flow_run_id, timeout=timeout, on_status=show, on_no_worker=no_worker, on_note=_note
        )


def _note(line: str) -> None:
    typer.echo(line, err=True)


@contextlib.contextmanager
def _progress(task_ids: list[str], watch: bool) -> Iterator[StatusCallback | None]:
    """With ``watch``, a callback that shows a run's status as a live table of its tasks' states.

    The table appears at the first status, so lines printed before it stay above it.
    """
    if not watch:
        yield None
        return
    console = Console(file=sys.stdout)
    live: Live | None = None

    def show(status: RunStatus) -> None:
        nonlocal live
        if live is None:
            live = Live(console=console, refresh_per_second=4, transient=False)
            live.start()
        live.update(progress_table(status, task_ids))

    try:
        yield show
    finally:
        if live is not None:
            live.stop()
            if not console.is_terminal:
                console.line()  # without a terminal, Live leaves its last frame unterminated


def progress_table(status: RunStatus, task_ids: list[str]) -> Table:
    """A run's tasks and their states: the spec's tasks when ``task_ids`` is given, else what ran."""
    table = Table(title=f"{status.name}: {status.state_name}", title_justify="left")
    table.add_column("task")
    table.add_column("state")
    table.add_column("seconds", justify="right")
    seen: dict[str, list[Any]] = {}
    for task in status.tasks:
        base = task.name.split("[", 1)[0]
        seen.setdefault(base, []).append(task)
    # Without the definition, show whatever ran; with it, only the spec's tasks (Prefect adds a
    # tracking task run for each child workflow).
    for task_id in task_ids or list(seen):
        runs = sorted(seen.get(task_id, []), key=lambda t: t.name)
        if not runs:
            table.add_row(task_id, "[dim]waiting[/dim]", "")
        for task in runs:
            seconds = (
                f"{(task.end_time - task.start_time).total_seconds():.1f}"
                if task.start_time and task.end_time
                else ""
            )
            style = (
                "yellow"
                if task.state_name in ("Skipped", "NotReady")
                else _STYLE.get(task.state_type, "white")
            )
            table.add_row(task.name, f"[{style}]{task.state_name}[/{style}]", seconds)
    return table
