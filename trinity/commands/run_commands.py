"""``trinity deploy`` and ``trinity run``: workflows on Prefect from the command line.

``deploy`` validates files and makes one Prefect deployment per workflow. ``run`` runs a workflow
file in this process (against the configured Prefect API) or a deployed workflow by name through
its deployment (a worker picks it up), optionally with a live view of its task states. Problems
are printed one per line and exit with status 1; a run that does not complete exits with 1 too.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar
from uuid import UUID

import typer

T = TypeVar("T")
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
POLL_SECONDS = 0.5
WORKER_HINT_AFTER_SECONDS = 10.0

Params = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="A parameter as KEY=VALUE (VALUE parsed as JSON where it parses)."),
]


def _fail(lines: list[str] | str) -> NoReturn:
    for line in [lines] if isinstance(lines, str) else lines:
        typer.echo(line, err=True)
    raise typer.Exit(1)


def _with_prefect(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine against the Prefect API the CLI resolves; failures become one-line errors."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    from deployments.service import DeploymentError
    from trinity.prefect_target import resolve_prefect_api_url, using_prefect_api
    from trinity.settings import ConfigError

    try:
        url = resolve_prefect_api_url()
    except ConfigError as exc:
        coroutine.close()  # never awaited
        _fail(f"error: {exc}")
    try:
        with using_prefect_api(url):
            return asyncio.run(coroutine)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        _fail(f"error: cannot reach the Prefect API at {url or '(ephemeral)'}: {exc}")
    except PrefectHTTPStatusError as exc:
        _fail(f"error: Prefect refused the request: {exc.response.status_code} {exc.response.text[:300]}")
    except DeploymentError as exc:
        _fail(f"error: {exc}")


def _load(paths: list[Path]) -> list[Any]:
    from specs.loader import check_paths

    result = check_paths(paths)
    if result.problems:
        _fail([problem.format() for problem in result.problems])
    return list(result.documents)


def _parse_params(texts: list[str] | None) -> dict[str, Any]:
    from specs.errors import SpecError
    from specs.parameters import parse_cli_param

    params: dict[str, Any] = {}
    errors: list[str] = []
    for text in texts or []:
        try:
            key, value = parse_cli_param(text)
        except SpecError as exc:
            errors.append(f"--param: {exc.message}")
            continue
        params[key] = value
    if errors:
        _fail(errors)
    return params


def _check_params(schema: dict[str, Any], params: dict[str, Any], source: str) -> None:
    from specs.parameters import validate_parameters

    problems = validate_parameters(schema, params, source=source)
    if problems:
        _fail([problem.format() for problem in problems])


def deploy(
    paths: Annotated[
        list[Path], typer.Argument(help="Workflow files or folders (with their specifications).")
    ],
    pool: Annotated[str, typer.Option("--pool", help="Work pool the deployments run on.")] = "trinity",
    paused: Annotated[bool, typer.Option("--paused", help="Create the deployments paused.")] = False,
    write_prefect_yaml: Annotated[
        Path | None, typer.Option("--write-prefect-yaml", help="Also write an equivalent prefect.yaml here.")
    ] = None,
    analytics: Annotated[
        bool,
        typer.Option(
            "--analytics/--no-analytics",
            help="Also deploy the analytics flows (schedules from trinity.config.yml's `analytics`).",
        ),
    ] = True,
) -> None:
    """Validate workflows and create or update one Prefect deployment per workflow."""
    from deployments.pairing import pair_documents
    from deployments.service import deploy_workflow, deployment_spec

    pairing = pair_documents(_load(paths))
    if pairing.missing:
        _fail([f"error: {line}" for line in pairing.missing])
    if not pairing.pairs:
        _fail("error: no workflow in the given files")

    async def deploy_all() -> list[Any]:
        refs = [
            await deploy_workflow(workflow=workflow, specification=spec, work_pool=pool, paused=paused)
            for workflow, spec in pairing.pairs
        ]
        if analytics:
            refs += await _deploy_analytics(pool)
        return refs

    for ref in _with_prefect(deploy_all()):
        typer.echo(ref.full_name)
    if write_prefect_yaml is not None:
        from deployments.prefect_yaml import write_prefect_yaml as write

        specs = [
            deployment_spec(workflow=w, specification=s, work_pool=pool, paused=paused)
            for w, s in pairing.pairs
        ]
        typer.echo(f"wrote {write(write_prefect_yaml, specs)}")


async def _deploy_analytics(pool: str) -> list[Any]:
    from deployments.analytics import deploy_analytics_flows, schedule_options
    from trinity.settings import ConfigError, load_settings

    try:
        options = schedule_options(load_settings().analytics)
    except ConfigError as exc:
        _fail(f"error: {exc}")
    return await deploy_analytics_flows(work_pool=pool, **options)


def run(
    target: Annotated[str, typer.Argument(help="A workflow file (run here) or a deployed workflow's name.")],
    param: Params = None,
    watch: Annotated[bool, typer.Option("--watch", help="Show the tasks' states live.")] = False,
    spec: Annotated[
        list[Path] | None, typer.Option("--spec", help="More files with the specification (file runs).")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", help="Deployed runs: stop waiting after this many seconds (the run goes on)."
        ),
    ] = None,
) -> None:
    """Run a workflow and wait for it; exit 0 when it completes."""
    params = _parse_params(param)
    path = Path(target)
    if path.is_file() or target.endswith((".yaml", ".yml", ".json")):
        outcome = _run_file(path, list(spec or []), params, watch)
    else:
        outcome = _run_deployed(target, params, watch, timeout)
    state_type, state_name, message, url = outcome
    where = f" ({url})" if url else ""
    if state_type == "COMPLETED":
        typer.echo(f"{state_name}{where}")
        return
    _fail(f"{state_name}: {message or 'the run did not complete'}{where}")


def _run_file(
    path: Path, spec_files: list[Path], params: dict[str, Any], watch: bool
) -> tuple[str, str, str, Any]:
    from deployments.pairing import pair_documents
    from specs.parameters import apply_defaults

    if not path.is_file():
        _fail(f"{path}: error: no such file")
    pairing = pair_documents(_load([path, *spec_files]))
    if pairing.missing:
        _fail([f"{path}: error: {line} (add its file with --spec FILE)" for line in pairing.missing])
    if len(pairing.pairs) != 1:
        names = ", ".join(workflow.name for workflow, _ in pairing.pairs) or "none"
        _fail(f"{path}: error: expected exactly one workflow, found: {names}")
    workflow, specification = pairing.pairs[0]
    _check_params(specification.parameters, params, source="--param")
    params = apply_defaults(specification.parameters, params)
    return _with_prefect(_run_in_process(workflow, specification, params, watch))


async def _run_in_process(
    workflow: Any, specification: Any, params: dict[str, Any], watch: bool
) -> tuple[str, str, str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow_async

    from deployments.runs import flow_run_ui_url
    from flows.compiler import compile_workflow
    from flows.workflow_flow import build_flow

    flow = build_flow(compile_workflow(workflow, specification))
    async with get_client() as client:
        flow_run = await client.create_flow_run(
            flow, parameters=params, tags=["trinity", f"workflow:{workflow.name}"]
        )
    typer.echo(f"running {workflow.name} {workflow.version} here as flow run '{flow_run.name}'", err=True)
    runner = asyncio.ensure_future(
        run_flow_async(flow, flow_run=flow_run, parameters=params, return_type="state")
    )
    if watch:
        await _watch(flow_run.id, [task.id for task in workflow.tasks], done=runner.done)
    state = await runner
    return state.type.value, state.name, state.message or "", flow_run_ui_url(flow_run.id)


def _run_deployed(
    name: str, params: dict[str, Any], watch: bool, timeout: float | None
) -> tuple[str, str, str, Any]:
    return _with_prefect(_run_through_deployment(name, params, watch, timeout))


async def _run_through_deployment(
    name: str, params: dict[str, Any], watch: bool, timeout: float | None
) -> tuple[str, str, str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from deployments.runs import RunError, start_run
    from flows.workflow_flow import FLOW_NAME

    full_name = f"{FLOW_NAME}/{name}"
    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            _fail(f"error: no deployment '{full_name}' (deploy it with `trinity deploy FILE`)")
    _check_params(dict(deployment.parameter_openapi_schema or {}), params, source="--param")
    try:
        ref = await start_run(deployment_id=deployment.id, parameters=params)
    except RunError as exc:
        _fail(f"error: Prefect refused the run: {exc}")
    typer.echo(
        f"started flow run {ref.flow_run_id} of {full_name} on pool '{deployment.work_pool_name}'", err=True
    )
    task_ids = await _deployed_task_ids(deployment.entrypoint)
    deadline = time.monotonic() + timeout if timeout else None

    def finished() -> bool:
        return deadline is not None and time.monotonic() > deadline

    state = await _wait(ref.flow_run_id, task_ids if watch else None, deployment.work_pool_name, finished)
    return (*state, ref.ui_url)


async def _deployed_task_ids(entrypoint: str | None) -> list[str]:
    from blocks.workflow_definition import DefinitionNotFoundError, load_definition
    from flows.entry import block_name_from_entrypoint

    block_name = block_name_from_entrypoint(entrypoint)
    if block_name is None:
        return []
    try:
        definition = await load_definition(block_name)
    except DefinitionNotFoundError:
        return []
    return [task["id"] for task in definition.workflow.get("tasks", [])]


async def _read_state(flow_run_id: UUID) -> tuple[str, str, str]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
    state = flow_run.state
    if state is None:
        return "PENDING", "Pending", ""
    return state.type.value, state.name, state.message or ""


async def _wait(
    flow_run_id: UUID, task_ids: list[str] | None, pool: str | None, give_up: Callable[[], bool]
) -> tuple[str, str, str]:
    """Poll until the run is final (or ``give_up()``), watching its tasks when ``task_ids`` is given."""
    started = time.monotonic()
    hinted = False

    async def is_final() -> bool:
        nonlocal hinted
        state_type, _, _ = await _read_state(flow_run_id)
        if (
            state_type in ("SCHEDULED", "PENDING")
            and not hinted
            and time.monotonic() - started > WORKER_HINT_AFTER_SECONDS
        ):
            hinted = True
            typer.echo(
                f"waiting for a worker on pool '{pool}' "
                f"(start one: prefect worker start --pool {pool} --type process)",
                err=True,
            )
        return state_type in FINAL_STATES or give_up()

    if task_ids is not None:
        final = False

        async def poll() -> bool:
            nonlocal final
            final = await is_final()
            return final

        await _watch(flow_run_id, task_ids, done=lambda: final, before_refresh=poll)
    else:
        while not await is_final():
            await asyncio.sleep(POLL_SECONDS)
    state_type, state_name, message = await _read_state(flow_run_id)
    if state_type not in FINAL_STATES:
        return state_type, state_name, "gave up waiting; the run goes on (see the Prefect UI)"
    return state_type, state_name, message


async def _watch(
    flow_run_id: UUID,
    task_ids: list[str],
    *,
    done: Callable[[], bool],
    before_refresh: Callable[[], Awaitable[bool]] | None = None,
) -> None:
    """A live table of the run's task states until ``done()``; one last refresh after it."""
    from rich.console import Console
    from rich.live import Live

    from deployments.live_watch import LiveChanges
    from deployments.runs import read_run

    console = Console(file=sys.stdout)
    changes = await LiveChanges(flow_run_id, lambda note: typer.echo(note, err=True)).start()
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while True:
            if before_refresh is not None:
                await before_refresh()
            finished = done()
            status = await read_run(flow_run_id=flow_run_id)
            live.update(_progress_table(status, task_ids))
            if finished:
                break
            await changes.wait(POLL_SECONDS)  # the next live event; polls when the stream is down
        # Task-run states reach the server as events, a moment after the flow run ends.
        await asyncio.sleep(POLL_SECONDS * 2)
        live.update(_progress_table(await read_run(flow_run_id=flow_run_id), task_ids))
    await changes.close()
    if not console.is_terminal:
        console.line()  # without a terminal, Live leaves its last frame unterminated


_STYLE = {"COMPLETED": "green", "FAILED": "red", "CRASHED": "red", "RUNNING": "cyan", "CANCELLED": "yellow"}


def _progress_table(status: Any, task_ids: list[str]) -> Any:
    from rich.table import Table

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


def register(app: typer.Typer) -> None:
    """Add ``deploy`` and ``run`` to the CLI."""
    app.command("deploy")(deploy)
    app.command("run")(run)
