"""One spec task as a Prefect task: the task function, its settings, and what a call carries.

Every spec task runs through the same async task function, :func:`_execute`, wrapped in its own
:class:`prefect.Task` (named after the spec task; retries, delays, jitter, timeout and caching from
its plan). A call carries a :class:`TaskCall`: the plan, the expression context and the run scope.
Expressions in ``with`` are rendered inside the task run, so an expression error fails that task
visibly, and retrying is skipped when it cannot help (see :func:`_should_retry`).
"""

from __future__ import annotations

import datetime as dt
import inspect
from dataclasses import dataclass, field
from typing import Any

import anyio
from prefect import Task, get_run_logger
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import TaskRunContext
from prefect.serializers import PickleSerializer
from prefect.states import Completed
from pydantic import Field, ValidationError

from flows.actions import Action, ActionContext, ActionInputError
from flows.compiler import TaskPlan
from flows.recording import TaskRecord, process_peak_rss_bytes, stable_hash
from specs.actions import input_problems
from specs.expressions import ExpressionError, render
from specs.injection import injection_problems
from trinity.core.redaction import redact_held, redact_value
from trinity.core.types import utcnow

RUN, SKIP, ERROR, EMPTY, BLOCKED = "run", "skip", "error", "empty", "blocked"


@dataclass(frozen=True)
class RunScope:
    """What every task of one flow run shares."""

    workflow: str
    params: dict[str, Any]
    info: dict[str, Any]
    thread_limiter: anyio.CapacityLimiter
    # ``secrets.NAME`` values read for this run (expressions only; never logged).
    secrets: dict[str, Any] = field(default_factory=dict)
    # The texts of this run's secrets: masked wherever its tasks run (a Dask worker too).
    held: tuple[str, ...] = ()

    def __reduce__(self) -> tuple[Any, ...]:
        # A limiter does not pickle; a copy sent to a Dask worker gets one of its own, as large.
        tokens = self.thread_limiter.total_tokens
        return (_scope, (self.workflow, self.params, self.info, tokens, self.held))


def _scope(
    workflow: str, params: dict[str, Any], info: dict[str, Any], tokens: float, held: tuple[str, ...]
) -> RunScope:
    return RunScope(workflow, params, info, anyio.CapacityLimiter(tokens), held=held)


class TaskCall:
    """Everything one task run needs. A plain class on purpose: Prefect walks dataclasses, dicts
    and lists in task parameters looking for futures, and upstream outputs can be large."""

    __slots__ = ("action", "context", "error", "item", "message", "mode", "plan", "record", "scope", "worker")

    def __init__(
        self, scope: RunScope, plan: TaskPlan, mode: str, *, item: Any = None, message: str = ""
    ) -> None:
        self.scope = scope
        self.plan = plan
        self.mode = mode
        self.item = item
        self.message = message
        self.error: BaseException | None = None
        self.context: dict[str, Any] = {}
        self.record: TaskRecord | None = None
        self.action: Action | None = None
        # The address of the Dask worker running this call (flows.dask_runner), None in-process.
        self.worker: str | None = None

    def rendered_inputs(self) -> Any:
        return render(self.plan.task.with_, self.context)

    def cache_key(self) -> str | None:
        if self.mode != RUN or self.plan.task.cache is None:
            return None
        try:
            key_expression = self.plan.task.cache.key
            basis = render(key_expression, self.context) if key_expression else self.rendered_inputs()
        except ExpressionError:
            return None  # the run itself reports the expression error
        return f"trinity-{self.plan.task.uses}-{stable_hash(basis)}"

    async def execute(self) -> Any:
        if self.mode == SKIP:
            return Completed(name="Skipped", message=self.message)
        if self.mode == ERROR:
            assert self.error is not None
            raise self.error
        if self.mode == EMPTY:
            return []
        if self.mode == BLOCKED:
            # Prefect parks a task whose wait_for holds a failed state in NotReady before calling it.
            raise RuntimeError(f"task '{self.plan.id}' ran although an upstream task failed")
        return await self._run_action()

    async def _run_action(self) -> Any:
        assert self.record is not None
        assert self.action is not None
        record = self.record
        record.attempts += 1
        record.start_time = record.start_time or utcnow()
        logger = get_run_logger()
        if self.worker is not None:
            record.worker = self.worker
            logger.info("running on dask worker %s", self.worker)
        _refuse_injection(self.plan)
        raw = self.rendered_inputs()
        record.inputs_hash = stable_hash(raw)
        inputs = _validated_inputs(self.action, raw, self.plan.task.uses)
        context = ActionContext(
            task_id=self.plan.id,
            label=_current_label(self.plan.id),
            workflow=self.scope.workflow,
            params=self.scope.params,
            run=self.scope.info,
            item=self.item,
            logger=logger,
            thread_limiter=self.scope.thread_limiter,
        )
        try:
            if inspect.iscoroutinefunction(self.action.run):
                output = await self.action.run(inputs, context)
            else:
                output = await context.run_in_thread(self.action.run, inputs, context)
        finally:
            usage = context.usage
            if usage.cpu_seconds is not None:
                record.cpu_seconds = (record.cpu_seconds or 0.0) + usage.cpu_seconds
            peak = (
                usage.peak_memory_bytes if usage.peak_memory_bytes is not None else process_peak_rss_bytes()
            )
            record.peak_memory_bytes = max(record.peak_memory_bytes or 0, peak)
        record.output_hash = stable_hash(output)
        # Downstream tasks get the output itself; what Prefect keeps of it (a cached task's
        # persisted result) goes through RedactedResultSerializer.
        return output


def _current_label(default: str) -> str:
    task_run = TaskRunContext.get()
    return task_run.task_run.name if task_run and task_run.task_run else default


class RedactedError(Exception):
    """An action's error whose text held a secret, re-raised with the secret masked."""


def _mask_credentials(exc: Exception) -> None:
    """Mask credentials in URLs and secrets in an exception's text (it becomes Prefect's state
    message and log lines); an exception whose text its arguments do not make is replaced."""
    text = str(exc)
    masked = redact_held(text)
    if masked == text:
        return
    if len(exc.args) <= 1:
        exc.args = (masked,)
        if str(exc) == masked:
            return
    raise RedactedError(f"{type(exc).__name__}: {masked}") from None


def _refuse_injection(plan: TaskPlan) -> None:
    """Validation refuses these; a definition that skipped it (edited in Prefect) must not run."""
    argv = plan.task.with_.get("argv")
    if plan.task.uses == "shell" and isinstance(argv, list):
        for position, message in injection_problems(argv):
            raise ActionInputError(f"with.argv[{position}]: {message}")


def _validated_inputs(action: Action, raw: Any, uses: str) -> Any:
    try:
        return action.inputs.model_validate(raw)
    except ValidationError:
        problems = input_problems(action.inputs, raw)
    details = "; ".join(
        f"with.{'.'.join(str(p) for p in path)}: {message}" if path else message for path, message in problems
    )
    raise ActionInputError(f"invalid inputs for action '{uses}': {details or 'not valid'}")


async def _execute(label: str, call: TaskCall) -> Any:
    """The body of every spec task run (``label`` only names the run)."""
    try:
        return await call.execute()
    except Exception as exc:
        _mask_credentials(exc)  # its text becomes the task run's state message in Prefect
        raise


def _cache_key(context: Any, parameters: dict[str, Any]) -> str | None:
    call = parameters.get("call")
    return call.cache_key() if isinstance(call, TaskCall) else None


def _should_retry(task: Any, task_run: Any, state: State) -> bool:
    """Retrying cannot fix an expression or an input that does not fit the action."""
    return not isinstance(state.data, ExpressionError | ActionInputError)


class RedactedResultSerializer(PickleSerializer[Any]):
    """Task results as Prefect persists them (cached tasks only): secrets and credentials in URLs
    masked. A cache hit therefore gives its downstream tasks the masked value."""

    type: str = Field(default="trinity-redacted-pickle", frozen=True)

    def dumps(self, obj: Any) -> bytes:
        return super().dumps(redact_value(obj))


def build_task(plan: TaskPlan) -> Task[Any, Any]:
    """The Prefect task for one spec task (retries, timeout, cache as planned)."""
    cache = plan.task.cache if plan.task.cache is not None and plan.task.cache.enabled else None
    caching: dict[str, Any] = (
        {
            "cache_key_fn": _cache_key,
            "cache_expiration": dt.timedelta(seconds=cache.expiry_seconds),
            "persist_result": True,
            "result_serializer": RedactedResultSerializer(),
        }
        if cache is not None
        else {"cache_policy": NO_CACHE, "persist_result": False}
    )
    return Task(
        fn=_execute,
        name=plan.id,
        description=plan.task.description or None,
        task_run_name="{label}",
        retries=plan.retries,
        retry_delay_seconds=list(plan.retry_delays) if plan.retry_delays else 0,
        retry_jitter_factor=plan.retry_jitter,
        timeout_seconds=plan.timeout_seconds,
        retry_condition_fn=_should_retry,
        **caching,
    )
