"""Checks beyond shape: the DAG, actions and their inputs, expressions, schedules, parameters.

Every check works from what could be read, even when parts of a document are invalid, so one bad
task does not hide problems in the others. All checks are linear in the number of tasks (upstream
checks use topological positions, see :class:`specs.dag.Reachability`).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from croniter import croniter
from dateutil.rrule import rrulestr
from pydantic import ValidationError

from specs.actions import action_inputs_model, action_load_error, action_names, input_problems
from specs.dag import Reachability, all_cycles
from specs.errors import Problem
from specs.expressions import ExpressionError, References, analyze, bare_expression, find_expressions
from specs.injection import injection_problems
from specs.model_errors import suggest
from specs.models import Schedule, Specification, SpecRef, Task, Workflow
from specs.naming import reserved_name_problem
from specs.parameters import accepts_undeclared_parameters, declared_parameters, schema_problems
from specs.parsing import PathParts, RawDocument, iter_strings
from specs.versions import VersionError, parse_range

MAX_TASKS = 20_000
MAX_RRULE_CHARS = 6_500


@dataclass
class WorkflowView:
    """What could be read of a workflow, even when parts of it are invalid."""

    name: str | None
    spec: SpecRef | None
    schedule: Schedule | None
    ids: list[tuple[int, str]] = field(default_factory=list)
    tasks: list[tuple[int, Task]] = field(default_factory=list)


def _try(model: Any, value: Any) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def workflow_view(data: Mapping[str, Any], workflow: Workflow | None) -> WorkflowView:
    """A view of a workflow: from the model when valid, else salvaged part by part."""
    if workflow is not None:
        return WorkflowView(
            name=workflow.name,
            spec=workflow.spec,
            schedule=workflow.schedule,
            ids=[(i, t.id) for i, t in enumerate(workflow.tasks)],
            tasks=list(enumerate(workflow.tasks)),
        )
    raw_tasks = data.get("tasks")
    raw_tasks = raw_tasks if isinstance(raw_tasks, list) else []
    name = data.get("name")
    view = WorkflowView(
        name=name if isinstance(name, str) else None,
        spec=_try(SpecRef, data.get("spec")),
        schedule=_try(Schedule, data["schedule"]) if data.get("schedule") is not None else None,
    )
    for index, raw in enumerate(raw_tasks):
        if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
            view.ids.append((index, raw["id"]))
        task = _try(Task, raw)
        if task is not None:
            view.tasks.append((index, task))
    return view


def specification_problems(doc: RawDocument) -> list[Problem]:
    """Parameters schema and requirement ids of a specification (read from the raw data)."""
    data = doc.data
    problems: list[Problem] = []
    parameters = data.get("parameters")
    if isinstance(parameters, Mapping):
        for path, message in schema_problems(parameters):
            problems.append(doc.problem(("parameters", *path), message))
    requirements = data.get("requirements")
    if isinstance(requirements, list):
        seen: dict[str, int] = {}
        for index, requirement in enumerate(requirements):
            rid = requirement.get("id") if isinstance(requirement, Mapping) else None
            if isinstance(rid, str):
                if rid in seen:
                    message = f"duplicate requirement id '{rid}' (also requirements[{seen[rid]}])"
                    problems.append(doc.problem(("requirements", index, "id"), message))
                seen.setdefault(rid, index)
    return problems


@lru_cache(maxsize=1)
def _timezones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def schedule_problems(doc: RawDocument, schedule: Schedule) -> list[Problem]:
    """Cron, rrule and timezone checks."""
    problems: list[Problem] = []
    if schedule.cron is not None and not croniter.is_valid(schedule.cron):
        problems.append(doc.problem(("schedule", "cron"), f"invalid cron expression '{schedule.cron}'"))
    if schedule.rrule is not None:
        if len(schedule.rrule) > MAX_RRULE_CHARS:
            problems.append(doc.problem(("schedule", "rrule"), f"rrule is over {MAX_RRULE_CHARS} characters"))
        else:
            try:
                rrulestr(schedule.rrule)
            except (ValueError, TypeError, OverflowError) as exc:
                problems.append(doc.problem(("schedule", "rrule"), f"invalid rrule: {exc}"))
    try:
        zoneinfo.ZoneInfo(schedule.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = suggest(schedule.timezone, _timezones())
        message = f"unknown timezone '{schedule.timezone}'{hint}"
        problems.append(doc.problem(("schedule", "timezone"), message))
    return problems


@dataclass
class _TaskScope:
    """What expressions in one task may read."""

    doc: RawDocument
    index: int
    task: Task
    known: dict[str, int]
    reach: Reachability | None
    parameters: frozenset[str] | None
    spec_label: str


def _reference_problems(
    scope: _TaskScope, path: PathParts, refs: References, *, item_ok: bool
) -> Iterator[Problem]:
    doc, task = scope.doc, scope.task
    for message in refs.problems:
        yield doc.problem(path, message)
    for ref in sorted(refs.tasks):
        if ref == task.id:
            yield doc.problem(path, f"task '{task.id}' reads its own output (tasks.{ref}.output)")
        elif ref not in scope.known:
            hint = suggest(ref, list(scope.known))
            yield doc.problem(path, f"expression reads tasks.{ref}.output but there is no task '{ref}'{hint}")
        elif (
            scope.reach is not None
            and ref in scope.reach
            and task.id in scope.reach
            and not scope.reach.is_upstream(ref, task.id)
        ):
            yield doc.problem(
                path,
                f"expression reads tasks.{ref}.output but '{ref}' is not upstream of '{task.id}'; "
                f"add '{ref}' to needs",
            )
    if scope.parameters is not None:
        for name in sorted(refs.params - scope.parameters):
            hint = suggest(name, sorted(scope.parameters))
            yield doc.problem(
                path, f"unknown parameter '{name}': {scope.spec_label} does not declare it{hint}"
            )
    if refs.uses_item and not item_ok:
        field = next((part for part in path[2:3] if isinstance(part, str)), "")
        where = f"in '{field}'" if task.for_each is not None else "in a task without for_each"
        yield doc.problem(path, f"'item' is only defined in 'with' of a task with for_each, not {where}")


def _expressions_in(
    scope: _TaskScope, path: PathParts, text: str, *, item_ok: bool, whole: bool
) -> Iterator[Problem]:
    try:
        expressions = [bare_expression(text)] if whole else find_expressions(text)
    except ExpressionError as exc:
        yield scope.doc.problem(path, exc.message)
        return
    for expression in expressions:
        try:
            refs = analyze(expression.strip())
        except ExpressionError as exc:
            yield scope.doc.problem(path, exc.message)
            continue
        yield from _reference_problems(scope, path, refs, item_ok=item_ok)


def _task_expression_problems(scope: _TaskScope) -> Iterator[Problem]:
    task, base = scope.task, ("tasks", scope.index)
    fans_out = task.for_each is not None
    for path, text in iter_strings(task.with_, (*base, "with")):
        if "${{" in text:
            yield from _expressions_in(scope, path, text, item_ok=fans_out, whole=False)
    if task.if_ is not None:
        yield from _expressions_in(scope, (*base, "if"), task.if_, item_ok=False, whole=True)
    if isinstance(task.for_each, str):
        yield from _expressions_in(scope, (*base, "for_each"), task.for_each, item_ok=False, whole=True)
    elif isinstance(task.for_each, list):
        for path, text in iter_strings(task.for_each, (*base, "for_each")):
            if "${{" in text:
                yield from _expressions_in(scope, path, text, item_ok=False, whole=False)
    if task.cache is not None and task.cache.key is not None:
        path = (*base, "cache", "key")
        yield from _expressions_in(scope, path, task.cache.key, item_ok=fans_out, whole=False)


def _action_problems(
    doc: RawDocument, index: int, task: Task, workflow_name: str | None
) -> Iterator[Problem]:
    model = action_inputs_model(task.uses)
    if model is None:
        reason = action_load_error(task.uses)
        if reason:
            yield doc.problem(("tasks", index, "uses"), reason)
        else:
            hint = suggest(task.uses, action_names())
            yield doc.problem(("tasks", index, "uses"), f"unknown action '{task.uses}'{hint}")
        return
    for path, message in input_problems(model, task.with_):
        yield doc.problem(("tasks", index, "with", *path), message, key=message.startswith("unknown input"))
    argv = task.with_.get("argv")
    if task.uses == "shell" and isinstance(argv, list):
        for position, message in injection_problems(argv):
            yield doc.problem(("tasks", index, "with", "argv", position), message)
    if task.uses == "workflow" and workflow_name is not None and task.with_.get("name") == workflow_name:
        yield doc.problem(("tasks", index, "with", "name"), f"workflow '{workflow_name}' runs itself")


def _graph_problems(
    doc: RawDocument, view: WorkflowView
) -> tuple[list[Problem], dict[str, list[str]], dict[str, int]]:
    problems: list[Problem] = []
    known: dict[str, int] = {}
    for index, task_id in view.ids:
        if task_id in known:
            message = f"duplicate task id '{task_id}' (first at tasks[{known[task_id]}])"
            problems.append(doc.problem(("tasks", index, "id"), message))
        else:
            known[task_id] = index
    needs: dict[str, list[str]] = {}
    for index, task in view.tasks:
        deps: list[str] = []
        for position, dep in enumerate(task.needs):
            path = ("tasks", index, "needs", position)
            if dep == task.id:
                problems.append(doc.problem(path, f"task '{task.id}' needs itself"))
            elif dep not in known:
                hint = suggest(dep, list(known))
                problems.append(doc.problem(path, f"'{task.id}' needs unknown task '{dep}'{hint}"))
            else:
                deps.append(dep)
        if known.get(task.id) == index:
            needs[task.id] = deps
    for cycle in all_cycles(needs):
        index = known[cycle[0]]
        message = f"dependency cycle: {' -> '.join(cycle)} (each task needs the next)"
        problems.append(doc.problem(("tasks", index, "needs"), message))
    return problems, needs, known


def workflow_problems(doc: RawDocument, view: WorkflowView, *, spec: Specification | None) -> list[Problem]:
    """Every check of one workflow beyond its shape; ``spec`` is the specification it resolved to."""
    problems: list[Problem] = []
    reserved = reserved_name_problem(view.name) if view.name is not None else None
    if reserved is not None:
        problems.append(doc.problem(("name",), reserved))
    if view.schedule is not None:
        problems.extend(schedule_problems(doc, view.schedule))
    if view.spec is not None:
        try:
            parse_range(view.spec.version)
        except VersionError as exc:
            problems.append(doc.problem(("spec", "version"), exc.message))
    graph_problems, needs, known = _graph_problems(doc, view)
    problems.extend(graph_problems)
    cyclic = any(p.message.startswith("dependency cycle") for p in graph_problems)
    reach = None if cyclic else Reachability(needs)
    parameters = None
    label = ""
    # A spec that accepts undeclared parameters leaves the names a run may pass open.
    if (
        spec is not None
        and isinstance(spec.parameters, Mapping)
        and not accepts_undeclared_parameters(spec.parameters)
    ):
        parameters = declared_parameters(spec.parameters)
        label = f"specification {spec.name}@{spec.version}"
    for index, task in view.tasks:
        problems.extend(_action_problems(doc, index, task, view.name))
        scope = _TaskScope(doc, index, task, known, reach, parameters, label)
        problems.extend(_task_expression_problems(scope))
    return problems
