"""Messages between a Trinity worker and its executor processes.

Plain picklable dataclasses sent over a ``multiprocessing`` pipe. This module imports nothing
heavy: it is loaded by the executor process before Prefect is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ExecutorOptions:
    """How an executor process is set up; fixed for its lifetime."""

    index: int
    concurrency: int
    # Prefect settings and job environment, applied before Prefect is imported in the child.
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    # How long a cancelled run may take to stop before its executor is retired.
    cancel_grace_seconds: float = 30.0


# worker -> executor


@dataclass(frozen=True, slots=True)
class StartRun:
    """Run a flow run that the worker has claimed (it is Pending in Prefect)."""

    flow_run_id: str
    # Identifies the flow code: the executor loads a deployment's flow once per version.
    deployment_id: str | None = None
    deployment_version_key: str | None = None


@dataclass(frozen=True, slots=True)
class CancelRun:
    """Stop a flow run that is being cancelled in Prefect."""

    flow_run_id: str
    reason: str = "Flow run was cancelled."


@dataclass(frozen=True, slots=True)
class Stop:
    """Finish the runs in progress (up to ``grace_seconds``), then exit."""

    grace_seconds: float


# executor -> worker


@dataclass(frozen=True, slots=True)
class Ready:
    """The executor has imported Prefect and connected to the API."""

    pid: int


@dataclass(frozen=True, slots=True)
class RunAccepted:
    """The executor has taken a flow run and started working on it."""

    flow_run_id: str


@dataclass(frozen=True, slots=True)
class RunFinished:
    """A flow run has left the executor; ``state_type`` is its last known Prefect state type."""

    flow_run_id: str
    state_type: str | None
    state_name: str | None = None
    detail: str | None = None
    # The executor stopped without the run reaching a final state (it is shutting down).
    abandoned: bool = False


@dataclass(frozen=True, slots=True)
class RunStuck:
    """A cancelled run did not stop in time; the executor should take no new runs."""

    flow_run_id: str
