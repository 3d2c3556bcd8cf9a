"""The document model: what users write in YAML or JSON.

Two kinds of document exist, told apart by ``kind``:

* :class:`Specification` -- the contract (what, success criteria, parameters);
* :class:`Workflow` -- the implementation (a DAG of tasks bound to a specification).

The models check shape, types and ranges only. Cross-field and cross-document checks (cycles,
unknown references, expressions, version ranges) live in :mod:`specs.validation`, which reports
every problem with its location instead of stopping at the first.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$"
TASK_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$"
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

Name = Annotated[str, Field(pattern=NAME_PATTERN, description="Lower-case name: a-z, 0-9, '.', '_', '-'.")]
SemVer = Annotated[str, Field(pattern=SEMVER_PATTERN, description="Semantic version, e.g. 1.2.0.")]
TaskId = Annotated[str, Field(pattern=TASK_ID_PATTERN, description="Task id: a letter or '_' first.")]
Seconds = Annotated[float, Field(gt=0, le=7 * 24 * 3600)]
DelaySeconds = Annotated[float, Field(ge=0, le=24 * 3600)]
DEFAULT_MAX_PARALLEL_TASKS = 16
MAX_DASK_WORKERS = 256
_PORT = r"(?:[1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5])"
_HOST = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]{2,45}\])"
)
DASK_ADDRESS_PATTERN = rf"^tcp://{_HOST}:{_PORT}$"


class _Strict(BaseModel):
    """Base for every document part: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=False)


class Requirement(_Strict):
    """One requirement of a specification."""

    id: Annotated[str, Field(min_length=1, max_length=64)]
    text: Annotated[str, Field(min_length=1, max_length=4000)]


class SuccessMetrics(_Strict):
    """Measurable targets; the analytics check every run history against them."""

    duration_p95_seconds: Seconds | None = None
    success_rate_min: Annotated[float, Field(ge=0, le=1)] | None = None
    max_queue_wait_seconds: Seconds | None = None


class Specification(_Strict):
    """The contract a workflow implements. Versions are immutable."""

    kind: Literal["Specification"]
    name: Name
    version: SemVer
    description: Annotated[str, Field(max_length=10_000)] = ""
    requirements: list[Requirement] = Field(default_factory=list)
    success_metrics: SuccessMetrics = Field(default_factory=SuccessMetrics)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema (draft 2020-12) of the workflow inputs.",
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)


class SpecRef(_Strict):
    """The specification a workflow implements: a name and a version range."""

    name: Name
    version: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            description="Exact version, ^ or ~ range, or comparisons such as '>=2.0.0,<3.0.0'.",
        ),
    ]


class Schedule(_Strict):
    """When a workflow runs on its own. Exactly one of ``cron``, ``interval_seconds``, ``rrule``."""

    cron: str | None = None
    interval_seconds: Annotated[float, Field(gt=0, le=366 * 24 * 3600)] | None = None
    rrule: str | None = None
    timezone: str = "UTC"
    active: bool = True

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Schedule:
        given = [k for k in ("cron", "interval_seconds", "rrule") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a schedule needs exactly one of 'cron', 'interval_seconds' or 'rrule'"
                + (f", got {', '.join(given)}" if given else "")
            )
        return self


class RetryBackoff(_Strict):
    """Exponential backoff: delay = min(cap, base * factor ** (attempt - 1)), +/- jitter."""

    base_seconds: DelaySeconds = 1.0
    factor: Annotated[float, Field(ge=1, le=100)] = 2.0
    cap_seconds: DelaySeconds = 300.0
    jitter: Annotated[float, Field(ge=0, le=1, description="Fraction of the delay, 0..1.")] = 0.0


RetryDelay = DelaySeconds | Annotated[list[DelaySeconds], Field(min_length=1, max_length=100)]


class RetryPolicy(_Strict):
    """Fields shared by workflow defaults and tasks."""

    retries: Annotated[int, Field(ge=0, le=100)] | None = Field(
        default=None, description="Extra attempts after a failure."
    )
    retry_delay_seconds: RetryDelay | None = Field(
        default=None, description="Seconds before each retry; a list gives one delay per retry."
    )
    retry_backoff: RetryBackoff | None = None
    timeout_seconds: Seconds | None = None

    @model_validator(mode="after")
    def _one_delay_kind(self) -> RetryPolicy:
        if self.retry_delay_seconds is not None and self.retry_backoff is not None:
            raise ValueError("give either 'retry_delay_seconds' or 'retry_backoff', not both")
        return self


class Defaults(RetryPolicy):
    """Task settings applied where a task does not set its own."""


class Concurrency(_Strict):
    """Limits on parallel work."""

    max_parallel_tasks: Annotated[int, Field(ge=1, le=10_000)] = DEFAULT_MAX_PARALLEL_TASKS
    max_active_runs: Annotated[int, Field(ge=1, le=10_000)] | None = None
    on_collision: Literal["enqueue", "cancel_new"] = Field(
        default="enqueue",
        description="What a new run does when max_active_runs are already running.",
    )


class Cache(_Strict):
    """Opt-in result caching: a task with the same action and inputs reuses its output."""

    enabled: bool = True
    expiry_seconds: Annotated[float, Field(gt=0, le=366 * 24 * 3600)] = 3600.0
    key: str | None = Field(
        default=None,
        description="Optional expression; defaults to a hash of the action and its resolved inputs.",
    )


class Task(RetryPolicy):
    """One node of the DAG."""

    id: TaskId
    uses: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            description="Action: python, shell, http, sql, workflow, noop, sleep.",
        ),
    ]
    with_: dict[str, Any] = Field(
        default_factory=dict,
        alias="with",
        description="Inputs of the action; values may be ${{ }} expressions.",
    )
    needs: list[TaskId] = Field(default_factory=list, description="Ids of the tasks that must finish first.")
    if_: str | None = Field(
        default=None,
        alias="if",
        description="Expression; when false the task and everything downstream of it are skipped.",
    )
    for_each: str | list[Any] | None = Field(
        default=None, description="A list, or an expression giving one: the task runs once per item."
    )
    cache: Cache | None = None
    description: Annotated[str, Field(max_length=4000)] = ""


class OnCrash(_Strict):
    """What Trinity does when a run of the workflow crashes (its process died or its heartbeats
    stopped): start it again, with the same parameters, at most ``rerun`` times in a chain."""

    rerun: Annotated[int, Field(ge=0, le=100)] = Field(
        default=0,
        description="How many times a crashed run is started again (a new flow run, same parameters).",
    )


class TaskRunner(_Strict):
    """Where a workflow's task runs execute: a Dask cluster (absent: in the flow run's process)."""

    type: Literal["dask"] = Field(description="The runner: 'dask' (prefect-dask's DaskTaskRunner).")
    address: Annotated[str, Field(max_length=300, pattern=DASK_ADDRESS_PATTERN)] | None = Field(
        default=None, description="The scheduler of a running Dask cluster, tcp://host:port."
    )
    workers: Annotated[int, Field(ge=1, le=MAX_DASK_WORKERS)] | None = Field(
        default=None, description="Start a local Dask cluster of this many worker processes for each run."
    )

    @model_validator(mode="after")
    def _address_or_workers(self) -> TaskRunner:
        if (self.address is None) == (self.workers is None):
            raise ValueError("a dask task_runner needs exactly one of 'address' or 'workers'")
        return self


class Workflow(_Strict):
    """The implementation of a specification: a DAG of tasks."""

    kind: Literal["Workflow"]
    name: Name
    version: SemVer
    description: Annotated[str, Field(max_length=10_000)] = ""
    spec: SpecRef = Field(description="The specification implemented: its name and a version range.")
    schedule: Schedule | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    concurrency: Concurrency = Field(default_factory=Concurrency)
    timeout_seconds: Seconds | None = Field(default=None, description="Limit on the whole run.")
    on_crash: OnCrash | None = Field(
        default=None, description="What happens when a run crashes, e.g. {rerun: 2} (default: no rerun)."
    )
    task_runner: TaskRunner | None = Field(
        default=None,
        description="Run the tasks on Dask: {type: dask, address: tcp://host:port} or"
        " {type: dask, workers: N}"
        " (default: in the flow run's process).",
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    tasks: Annotated[list[Task], Field(min_length=1)]

    def task(self, task_id: str) -> Task:
        """Return the task with this id (KeyError when absent)."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)


Document = Specification | Workflow
