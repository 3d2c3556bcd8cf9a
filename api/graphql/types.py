# mypy: disallow-untyped-decorators=False
"""The GraphQL object types, each a view of a stored row (kept private) plus batched fields."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Self, TypeVar, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.graphql.args import UNSET, given
from api.graphql.errors import bad_input
from api.graphql.pagination import Connection, connection, window
from api.models.analytics import AnalyticsInsight, AnalyticsPerformance
from api.models.run import Run as RunRow
from api.models.run import RunDetail, RunPublic
from api.models.specification import Specification as SpecificationRow
from api.models.workflow import Workflow as WorkflowRow
from api.models.workflow import WorkflowPublic, WorkflowStatus
from api.services import runs as run_service
from deployments.event_order import RunEvent as RunEventValue
from deployments.events import read_run_logs

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# The GraphQL enum is the model's own enum, registered with strawberry.
LIFECYCLE = "A workflow's lifecycle: draft -> active <-> paused; any -> archived."
strawberry.enum(
    WorkflowStatus, description="A workflow's lifecycle: draft -> active <-> paused, any -> archived."
)

V = TypeVar("V", bound="DataclassInstance")

RUNS_PER_WORKFLOW = 10
FINDINGS_PER_WORKFLOW = 10


def parse_id(value: str, argument: str = "id") -> uuid.UUID:
    """An ``ID`` argument as a UUID (BAD_USER_INPUT otherwise)."""
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise bad_input(argument, "expected a UUID") from exc


def by_name(cls: type[V], source: object, **converted: Any) -> V:
    """A ``cls`` whose fields are the same-named attributes of ``source``, but for ``converted``."""
    names = [f.name for f in dataclasses.fields(cls)]
    return cls(**{name: converted[name] if name in converted else getattr(source, name) for name in names})


# What a listed run (RunPublic) and its stored row share, besides the state.
_ROW_FIELDS = {
    "id",
    "workflow_id",
    "workflow_name",
    "workflow_version",
    "flow_run_id",
    "parameters",
    "created_at",
}


@strawberry.type
class Specification:
    id: strawberry.ID
    name: str
    version: str
    description: str
    document: JSON = strawberry.field(description="The specification document as stored (normalised).")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: SpecificationRow) -> Specification:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            version=row.version,
            description=str(row.document.get("description", "")),
            document=cast(JSON, row.document),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(description="A workflow's Prefect deployment.")
class Deployment:
    id: strawberry.ID
    name: str


@strawberry.type(description="A Prefect state: its type (SCHEDULED, RUNNING, COMPLETED, ...) and name.")
class RunState:
    type: str
    name: str


@strawberry.type
class TaskRun:
    id: strawberry.ID
    task_id: str = strawberry.field(description="The spec task id.")
    name: str
    state: str
    state_name: str
    start_time: datetime | None
    end_time: datetime | None


@strawberry.type(description="One log line of a run.")
class LogLine:
    timestamp: datetime
    level: str | None
    message: str | None
    task: str | None
    task_run: str | None


@strawberry.type(description="A run's state change or log line, as it happens.")
class RunEvent:
    id: str = strawberry.field(description="The stream's cursor after this event (resume with after:).")
    type: str = strawberry.field(description="flow_run.state, task_run.state or log")
    timestamp: datetime
    flow_run_id: strawberry.ID
    task_run_id: strawberry.ID | None
    task: str | None
    task_run: str | None
    state: str | None
    state_name: str | None
    message: str | None
    level: str | None

    @classmethod
    def from_value(cls, event: RunEventValue) -> RunEvent:
        return by_name(
            cls,
            event,
            id=event.cursor,
            type=event.kind.value,
            flow_run_id=strawberry.ID(str(event.flow_run_id)),
            task_run_id=strawberry.ID(str(event.task_run_id)) if event.task_run_id else None,
        )


@strawberry.type
class Run:
    id: strawberry.ID
    workflow_id: strawberry.ID | None
    workflow_name: str
    workflow_version: str
    flow_run_id: strawberry.ID
    parameters: JSON
    created_at: datetime
    row: strawberry.Private[RunRow]
    known_state: strawberry.Private[tuple[str, str] | None] = None

    @classmethod
    def from_row(cls, row: RunRow, *, state: tuple[str, str] | None = None) -> Run:
        return cls(
            id=strawberry.ID(str(row.id)),
            workflow_id=strawberry.ID(str(row.workflow_id)) if row.workflow_id else None,
            workflow_name=row.workflow_name,
            workflow_version=row.workflow_version,
            flow_run_id=strawberry.ID(str(row.flow_run_id)),
            parameters=cast(JSON, row.parameters),
            created_at=row.created_at,
            row=row,
            known_state=state,
        )

    @classmethod
    def from_public(cls, item: RunPublic) -> Run:
        """A run as the runs service lists it, with its current state."""
        row = RunRow(
            **item.model_dump(include=_ROW_FIELDS), state_type=item.state.type, state_name=item.state.name
        )
        return cls.from_row(row, state=(item.state.type, item.state.name))

    async def _state(self, info: Info[Any, Any]) -> tuple[str, str]:
        if self.known_state is None:
            current = await info.context.loaders.run_state.load(self.row.flow_run_id)
            self.known_state = current or (self.row.state_type, self.row.state_name)
        return self.known_state

    @strawberry.field(
        description="The Prefect state type: SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, ..."
    )
    async def state(self, info: Info[Any, Any]) -> str:
        return (await self._state(info))[0]

    @strawberry.field
    async def state_name(self, info: Info[Any, Any]) -> str:
        return (await self._state(info))[1]

    @strawberry.field(description="The state type and name together.")
    async def run_state(self, info: Info[Any, Any]) -> RunState:
        state_type, name = await self._state(info)
        return RunState(type=state_type, name=name)

    @strawberry.field(description="The run in the Prefect UI.")
    def ui_url(self, info: Info[Any, Any]) -> str | None:
        url: str | None = info.context.app.prefect.flow_run_url(self.row.flow_run_id)
        return url

    async def _detail(self, info: Info[Any, Any]) -> RunDetail:
        detail: RunDetail = await info.context.loaders.run_detail.load(self.row)
        return detail

    @strawberry.field
    async def start_time(self, info: Info[Any, Any]) -> datetime | None:
        return (await self._detail(info)).start_time

    @strawberry.field
    async def end_time(self, info: Info[Any, Any]) -> datetime | None:
        return (await self._detail(info)).end_time

    @strawberry.field(description="The run's task runs with their states, from Prefect.")
    async def tasks(self, info: Info[Any, Any]) -> list[TaskRun]:
        detail = await self._detail(info)
        return [
            TaskRun(
                id=strawberry.ID(str(task.id)),
                task_id=task.task_id,
                name=task.name,
                state=task.state.type,
                state_name=task.state.name,
                start_time=task.start_time,
                end_time=task.end_time,
            )
            for task in detail.tasks
        ]

    @strawberry.field(description="The run's log lines, oldest first, a page at a time.")
    async def logs(
        self, info: Info[Any, Any], first: int | None = UNSET, after: str | None = UNSET
    ) -> Connection[LogLine]:
        limit, offset = window(first, after)
        async with info.context.app.prefect.scope():
            events = await read_run_logs(flow_run_id=self.row.flow_run_id, limit=limit + 1, offset=offset)
        lines = [
            LogLine(timestamp=e.timestamp, level=e.level, message=e.message, task=e.task, task_run=e.task_run)
            for e in events[:limit]
        ]
        # One more than asked tells whether another page follows, without counting every line.
        return connection(lines, total=offset + len(events), offset=offset)


@strawberry.type
class AnalyticsWindow:
    """What every analytics row has: the workflow (and task) and the window it covers (its types
    name their fields as the row does)."""

    id: strawberry.ID
    workflow: str
    task_id: str | None
    window_start: datetime
    window_end: datetime

    @classmethod
    def from_row(cls, row: AnalyticsPerformance | AnalyticsInsight) -> Self:
        return by_name(cls, row, id=strawberry.ID(str(row.id)))


@strawberry.type
class Performance(AnalyticsWindow):
    metrics: JSON
    created_at: datetime


@strawberry.type(description="A bottleneck, anomaly or recommendation found by the analytics.")
class Insight(AnalyticsWindow):
    kind: str
    title: str
    severity: str
    evidence: JSON
    yaml_diff: str | None
    created_at: datetime


@strawberry.type(description="Another version of the same workflow name.")
class WorkflowVersion:
    id: strawberry.ID
    version: str
    status: WorkflowStatus
    created_at: datetime


@strawberry.type
class Workflow:
    id: strawberry.ID
    name: str
    version: str
    status: WorkflowStatus
    definition: JSON = strawberry.field(description="The workflow document as stored.")
    spec_name: str
    spec_range: str = strawberry.field(description="The version range the workflow asks for.")
    created_at: datetime
    updated_at: datetime
    row: strawberry.Private[WorkflowRow]

    @classmethod
    def from_row(cls, row: WorkflowRow) -> Workflow:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            version=row.version,
            status=WorkflowStatus(row.status),
            definition=cast(JSON, row.definition),
            spec_name=row.spec_name,
            spec_range=row.spec_range,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row=row,
        )

    @strawberry.field(description="The stored specification this workflow is bound to.")
    async def spec(self, info: Info[Any, Any]) -> Specification | None:
        if self.row.spec_id is None:
            return None
        row = await info.context.loaders.specification.load(self.row.spec_id)
        return Specification.from_row(row) if row is not None else None

    @strawberry.field(description="Every stored version of this workflow's name, newest first.")
    async def versions(self, info: Info[Any, Any]) -> list[WorkflowVersion]:
        rows = await info.context.loaders.versions.load(self.row.name)
        return [
            WorkflowVersion(
                id=strawberry.ID(str(r.id)),
                version=r.version,
                status=WorkflowStatus(r.status),
                created_at=r.created_at,
            )
            for r in rows
        ]

    @strawberry.field
    def deployment(self) -> Deployment | None:
        public = WorkflowPublic.from_row(self.row)
        if public.deployment_id is None or public.deployment_name is None:
            return None
        return Deployment(id=strawberry.ID(str(public.deployment_id)), name=public.deployment_name)

    @strawberry.field(description="The workflow's runs, newest first.")
    async def runs(
        self,
        info: Info[Any, Any],
        first: Annotated[int | None, strawberry.argument(description="Page size (default 10).")] = UNSET,
        after: str | None = UNSET,
    ) -> Connection[Run]:
        limit, offset = window(RUNS_PER_WORKFLOW if given(first) is None else first, after)
        if offset == 0:
            rows, total = await info.context.loaders.latest_runs.load((self.row.id, limit))
            return connection([Run.from_row(r) for r in rows], total=total, offset=0)
        async with info.context.session() as session:
            items, total = await run_service.list_runs(
                session=session,
                prefect=info.context.app.prefect,
                workflow_id=self.row.id,
                limit=limit,
                offset=offset,
            )
        runs = [Run.from_public(item) for item in items]
        return connection(runs, total=total, offset=offset)

    @strawberry.field(description="The latest findings of the analytics for this workflow, newest first.")
    async def findings(self, info: Info[Any, Any], first: int = FINDINGS_PER_WORKFLOW) -> list[Insight]:
        limit, _ = window(first, None)
        rows = await info.context.loaders.findings.load((self.row.name, limit))
        return [Insight.from_row(row) for row in rows]
