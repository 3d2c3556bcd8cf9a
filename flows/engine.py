"""The generic executor: runs a compiled workflow's DAG as Prefect task runs.

Each spec task becomes one Prefect task run named after its id (``id[0]``, ``id[1]``, ... for
``for_each`` items) whose ``wait_for`` holds the states of the task runs it needs, so Prefect
records the spec's edges as ``task_inputs`` and its UI draws the spec's graph.

Scheduling is event driven on the flow's event loop: a task starts when everything it needs has
finished, at most ``concurrency.max_parallel_tasks`` task runs at a time. ``if`` and ``for_each`` are
evaluated then, against the upstream outputs. What happens downstream of a task:

* completed -- dependants run;
* skipped (``if`` false, or an upstream skipped) -- the task run finishes Completed, named
  "Skipped", and its dependants are skipped the same way;
* failed -- dependants are handed the failed states and Prefect parks them in Pending "NotReady";
  independent branches carry on, and the run ends Failed with ``task '<id>' failed: <error>``.

A run's secrets (secret parameters, ``${{ secrets.NAME }}``) are resolved when it starts and held
for redaction until its final-state hook (:mod:`flows.run_secrets`): the parameters recorded in
``execution_logs`` show them as ``***``, and every state message, error and log line is masked.

All state is per run (a :class:`_Run`); one engine serves any number of concurrent runs. The
Prefect task side (the task function and its settings) is in :mod:`flows.task_run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import anyio
from prefect import Task, get_run_logger
from prefect.client.schemas.objects import FlowRun, State
from prefect.context import FlowRunContext
from prefect.exceptions import MissingContextError
from prefect.states import Failed

from flows import dask_runner
from flows import task_run as calls
from flows.actions import Action, resolve_action
from flows.compiler import CompiledWorkflow, TaskPlan
from flows.monitoring import hooks as monitoring
from flows.recording import RunRecord, write_execution_log
from flows.run_secrets import RunSecrets, SecretNotFoundError, open_run_secrets
from flows.task_run import RunScope, TaskCall, build_task
from specs.errors import SpecError
from specs.expressions import ExpressionError, evaluate_condition, evaluate_items
from specs.parameters import apply_defaults, drop_unset_optionals, validate_parameters
from specs.secrets import SECRETS_ROOT, mask_references, mask_secret_parameters, secret_parameters
from trinity.core.redaction import install_log_redaction, redact_held, redact_value
from trinity.core.types import utcnow

COMPLETED, SKIPPED, FAILED, BLOCKED = "completed", "skipped", "failed", "blocked"


@dataclass
class Outcome:
    """How a spec task ended, for its dependants."""

    kind: str
    states: list[State] = field(default_factory=list)
    output: Any = None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (task run name, error)


@dataclass
class _Run:
    """The mutable state of one flow run."""

    scope: RunScope
    record: RunRecord
    slots: anyio.Semaphore
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    done: dict[str, anyio.Event] = field(default_factory=dict)

    def expression_context(self, plan: TaskPlan) -> dict[str, Any]:
        tasks = {task_id: {"output": self.outcomes[task_id].output} for task_id in plan.upstream}
        scope = self.scope
        return {"params": scope.params, "tasks": tasks, "run": scope.info, SECRETS_ROOT: scope.secrets}


def run_info(compiled: CompiledWorkflow, flow_run: FlowRun | None) -> dict[str, Any]:
    """The ``run`` expression context."""
    scheduled = flow_run.expected_start_time if flow_run else None
    return {
        "id": str(flow_run.id) if flow_run else None,
        "name": flow_run.name if flow_run else None,
        "scheduled_time": scheduled.isoformat() if scheduled else None,
        "workflow": compiled.name,
        "version": compiled.version,
    }


async def error_text(state: State) -> str:
    """The error behind a failed task state, as one line."""
    if state.name == "TimedOut":
        return state.message or "timed out"
    try:
        exception = await state.aresult(raise_on_failure=False)
    except Exception:
        exception = None
    if isinstance(exception, BaseException):
        return redact_held(f"{type(exception).__name__}: {exception}".strip().splitlines()[0])
    return redact_held(state.message or state.name or "failed")


class WorkflowEngine:
    """Runs one compiled workflow; shared by all its runs (per-run state lives in :class:`_Run`)."""

    def __init__(self, compiled: CompiledWorkflow) -> None:
        self.compiled = compiled
        self.actions: dict[str, Action] = {
            plan.id: resolve_action(plan.task.uses) for plan in compiled.plans.values()
        }
        self.tasks: dict[str, Task[Any, Any]] = {
            plan.id: build_task(plan) for plan in compiled.plans.values()
        }
        # Records and secrets of runs in progress, handed from the flow body to the final-state hook.
        self._records: dict[UUID, RunRecord] = {}
        self._secrets: dict[UUID, RunSecrets] = {}
        self.on_dask = compiled.workflow.task_runner is not None

    def __getstate__(self) -> dict[str, Any]:
        # The flow (and so this engine) travels with every task run sent to Dask; the records and
        # secrets of the runs in progress stay here, where the final-state hook reads them.
        return {**self.__dict__, "_records": {}, "_secrets": {}}

    async def run(self, params: Mapping[str, Any]) -> Any:
        """The flow body: resolve secrets, validate parameters, run the DAG, return outputs or a
        Failed state (its message redacted)."""
        run_context = FlowRunContext.get()
        flow_run = run_context.flow_run if run_context else None
        install_log_redaction()
        secrets = RunSecrets(params=drop_unset_optionals(self.compiled.parameters_schema, params))
        if flow_run is not None:
            self._secrets[flow_run.id] = secrets
        try:
            result = await self._run(secrets, flow_run)
        finally:
            if flow_run is None:
                await secrets.close()
        return Failed(message=redact_held(result.message or "")) if isinstance(result, State) else result

    async def _run(self, secrets: RunSecrets, flow_run: FlowRun | None) -> Any:
        schema = self.compiled.parameters_schema
        record = RunRecord(
            workflow_name=self.compiled.name,
            workflow_version=self.compiled.version,
            flow_run_id=flow_run.id if flow_run else None,
            parameters=mask_secret_parameters(schema, secrets.params),
            expected_start_time=flow_run.expected_start_time if flow_run else None,
        )
        if flow_run is not None:
            self._records[flow_run.id] = record
        monitoring.run_started(self.compiled.name, self.compiled.version, flow_run)
        try:
            await open_run_secrets(secrets, self.compiled, flow_run)
        except SecretNotFoundError as exc:
            return Failed(message=f"secrets: {exc}")
        params = secrets.params
        try:
            problems = validate_parameters(schema, params)
        except SpecError as exc:  # over the time limit
            return Failed(message=f"invalid parameters: {exc.message}")
        if problems:
            details = "; ".join(f"{problem.json_path}: {problem.message}" for problem in problems)
            return Failed(message=f"invalid parameters: {details}")
        if self.on_dask:
            problem = await dask_runner.connect()
            if problem is not None:
                return Failed(message=problem)
        limit = self.compiled.workflow.concurrency.max_parallel_tasks
        full = apply_defaults(schema, params)
        for name in sorted(secret_parameters(schema) & (set(full) - set(params))):
            secrets.hold(full[name])  # a secret's default is as secret as a given value
        scope = RunScope(
            workflow=self.compiled.name,
            params=full,
            info=run_info(self.compiled, flow_run),
            thread_limiter=anyio.CapacityLimiter(limit),
            secrets=secrets.named,
            held=tuple(secrets.held),
        )
        run = _Run(scope=scope, record=record, slots=anyio.Semaphore(limit))
        record.parameters = mask_secret_parameters(schema, scope.params)
        run.done = {task_id: anyio.Event() for task_id in self.compiled.order}
        async with anyio.create_task_group() as group:
            for task_id in self.compiled.order:
                group.start_soon(self._node, run, task_id)
        errors = [error for task_id in self.compiled.order for error in run.outcomes[task_id].errors]
        if errors:
            return Failed(message="; ".join(f"task '{label}' failed: {error}" for label, error in errors))
        # The run's result leaves this process (a parent workflow, `trinity run`): secrets masked,
        # while its own tasks passed each other the values themselves.
        return redact_value({task_id: run.outcomes[task_id].output for task_id in self.compiled.order})

    async def _node(self, run: _Run, task_id: str) -> None:
        plan = self.compiled.plans[task_id]
        for need in plan.task.needs:
            await run.done[need].wait()
        try:
            run.outcomes[task_id] = await self._decide(run, plan)
        finally:
            run.done[task_id].set()

    async def _decide(self, run: _Run, plan: TaskPlan) -> Outcome:
        needs = plan.task.needs
        wait_for = [state for need in needs for state in run.outcomes[need].states]
        if any(run.outcomes[need].kind in (FAILED, BLOCKED) for need in needs):
            state = await self._submit(run, plan, plan.id, TaskCall(run.scope, plan, calls.BLOCKED), wait_for)
            return Outcome(BLOCKED, [state])
        skipped = [need for need in needs if run.outcomes[need].kind == SKIPPED]
        if skipped:
            return await self._skip(run, plan, wait_for, f"upstream task '{skipped[0]}' was skipped")
        context = run.expression_context(plan)
        try:
            if plan.task.if_ is not None and not evaluate_condition(plan.task.if_, context):
                return await self._skip(run, plan, wait_for, f"condition is false: {plan.task.if_}")
            items = evaluate_items(plan.task.for_each, context) if plan.task.for_each is not None else None
        except ExpressionError as exc:
            call = TaskCall(run.scope, plan, calls.ERROR)
            call.error = exc
            return await self._single(run, plan, call, wait_for)
        if items is None:
            return await self._single(run, plan, self._call(run, plan, context), wait_for)
        if not items:
            return await self._single(run, plan, TaskCall(run.scope, plan, calls.EMPTY), wait_for)
        return await self._fan_out(run, plan, context, items, wait_for)

    async def _single(self, run: _Run, plan: TaskPlan, call: TaskCall, wait_for: list[State]) -> Outcome:
        state = await self._submit(run, plan, plan.id, call, wait_for)
        return await self._outcome([(plan.id, state)])

    def _call(self, run: _Run, plan: TaskPlan, context: dict[str, Any], item: Any = None) -> TaskCall:
        call = TaskCall(run.scope, plan, calls.RUN, item=item)
        call.context = context if plan.task.for_each is None else {**context, "item": item}
        call.action = self.actions[plan.id]
        return call

    async def _fan_out(
        self, run: _Run, plan: TaskPlan, context: dict[str, Any], items: list[Any], wait_for: list[State]
    ) -> Outcome:
        runs: list[tuple[str, State] | None] = [None] * len(items)

        async def one(index: int, item: Any) -> None:
            label = f"{plan.id}[{index}]"
            state = await self._submit(run, plan, label, self._call(run, plan, context, item), wait_for)
            runs[index] = (label, state)

        async with anyio.create_task_group() as group:
            for index, item in enumerate(items):
                group.start_soon(one, index, item)
        return await self._outcome([entry for entry in runs if entry is not None], as_list=True)

    async def _skip(self, run: _Run, plan: TaskPlan, wait_for: list[State], message: str) -> Outcome:
        outcome = await self._single(
            run, plan, TaskCall(run.scope, plan, calls.SKIP, message=message), wait_for
        )
        return (
            Outcome(SKIPPED, outcome.states, None, outcome.errors) if outcome.kind == COMPLETED else outcome
        )

    async def _submit(
        self, run: _Run, plan: TaskPlan, label: str, call: TaskCall, wait_for: list[State]
    ) -> State:
        record = run.record.task(label, plan.id)
        call.record = record
        record.ready_time = record.ready_time or utcnow()
        async with run.slots:
            # Only action runs go to Dask; skips, empty fan-outs and blocked markers stay here.
            if self.on_dask and call.mode == calls.RUN:
                state = await dask_runner.run_on_dask(self.tasks[plan.id], label, call, wait_for)
            else:
                state = await self.tasks[plan.id](
                    label=label, call=call, wait_for=wait_for, return_state=True
                )
        record.state = state.type.value
        record.end_time = utcnow() if state.is_final() else None
        if record.start_time and record.end_time:
            record.duration_seconds = (record.end_time - record.start_time).total_seconds()
        if state.is_failed() or state.is_crashed() or state.is_cancelled():
            record.error = await error_text(state)
        elif state.is_pending():
            record.error = state.message
        record.state_name = state.name
        return state

    async def _outcome(self, runs: list[tuple[str, State]], *, as_list: bool = False) -> Outcome:
        errors: list[tuple[str, str]] = []
        outputs: list[Any] = []
        for label, state in runs:
            if state.is_completed():
                outputs.append(await state.aresult())
            else:
                errors.append((label, await error_text(state)))
        states = [state for _, state in runs]
        if errors:
            return Outcome(FAILED, states, None, errors)
        return Outcome(COMPLETED, states, outputs if as_list else outputs[0])

    async def on_final_state(self, flow: Any, flow_run: FlowRun, state: State) -> None:
        """Flow hook (completion, failure, crash, cancellation): write the execution_logs row and
        hand the run to the metrics and the live sinks."""
        secrets = self._secrets.pop(flow_run.id, None)
        on_crash = self.compiled.workflow.on_crash
        # A crashed run that its workflow reruns: the rerun carries the same references.
        rerun = state.is_crashed() and on_crash is not None and on_crash.rerun > 0
        try:
            await self._write_final(flow_run, state)
        finally:
            if secrets is not None:
                await secrets.close(keep_blocks=rerun)

    async def _write_final(self, flow_run: FlowRun, state: State) -> None:
        record = self._records.pop(flow_run.id, None)
        started_here = record is not None
        if record is None:
            started = flow_run.start_time or state.timestamp
            record = RunRecord(
                workflow_name=self.compiled.name,
                workflow_version=self.compiled.version,
                flow_run_id=flow_run.id,
                # Values typed in clear into Prefect's run form are masked by the schema: a run that
                # never started never moved them into blocks.
                parameters=mask_references(flow_run.parameters or {}, self.compiled.parameters_schema),
                expected_start_time=flow_run.expected_start_time,
                started_at=started,
            )
        row = record.row(status=state.type.value, ended_at=state.timestamp or utcnow())
        row = monitoring.with_placement(row, await monitoring.run_placement(flow_run))
        try:
            logger: Any = get_run_logger()
        except MissingContextError:
            logger = None
        await anyio.to_thread.run_sync(lambda: write_execution_log(row, logger=logger))
        monitoring.run_finished(row, started_here=started_here)
