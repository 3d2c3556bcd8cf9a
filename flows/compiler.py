"""Compile a validated workflow into a run plan: per-task policies resolved, order fixed.

Compilation is pure (no Prefect, no I/O). Each task's settings are resolved against the workflow
``defaults`` by :mod:`specs.task_settings` (the same resolution the analytics read) into the
concrete values the executor hands to Prefect: retry count, the list of retry delays (exponential
backoff expanded), jitter and timeout.
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from specs.dag import topological_order, upstream_closure
from specs.expressions import ExpressionError, analyze, bare_expression, find_expressions
from specs.models import Specification, Task, Workflow
from specs.parameters import EXTRA_PARAMETERS, accepts_undeclared_parameters, optional_parameters
from specs.parsing import iter_strings
from specs.task_settings import effective_settings


@dataclass(frozen=True)
class TaskPlan:
    """Everything the executor needs to run one spec task."""

    task: Task
    retries: int
    retry_delays: tuple[float, ...]
    retry_jitter: float | None
    timeout_seconds: float | None
    upstream: frozenset[str]

    @property
    def id(self) -> str:
        return self.task.id


@dataclass(frozen=True)
class CompiledWorkflow:
    """A workflow with its specification, ready to run."""

    workflow: Workflow
    specification: Specification
    order: tuple[str, ...]
    plans: Mapping[str, TaskPlan]
    # The Secret blocks its expressions read (``secrets.NAME``), loaded when a run starts.
    secrets: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.workflow.name

    @property
    def version(self) -> str:
        return self.workflow.version

    @property
    def parameters_schema(self) -> dict[str, Any]:
        return self.specification.parameters


def plan_task(task: Task, workflow: Workflow, needs: Mapping[str, list[str]]) -> TaskPlan:
    """Resolve one task's policies against the workflow defaults."""
    settings = effective_settings(task, workflow.defaults)
    return TaskPlan(
        task=task,
        retries=settings.retries,
        retry_delays=settings.retry_delays,
        retry_jitter=settings.retry_jitter,
        timeout_seconds=settings.timeout_seconds,
        upstream=frozenset(upstream_closure(needs, task.id)),
    )


def parameters_signature(schema: Mapping[str, Any]) -> inspect.Signature:
    """A keyword-only signature from a parameters schema (defaults from the schema).

    Prefect binds a flow run's parameters against the flow function's signature, so the generic
    flow gets one built per workflow. Annotations are ``Any``: the JSON Schema check happens in the
    executor, with located messages, instead of a second, differently worded pydantic check. A
    schema that accepts undeclared parameters adds ``**extra_parameters`` (see
    :func:`specs.parameters.prefect_parameters`).
    """
    properties = schema.get("properties", {})
    # Optional parameters without a default get None, or Prefect would demand them; the engine
    # drops that None again (specs.parameters.drop_unset_optionals).
    optional = optional_parameters(schema)
    params: list[inspect.Parameter] = []
    for name, prop in properties.items() if isinstance(properties, Mapping) else ():
        if isinstance(prop, Mapping) and "default" in prop:
            default = prop["default"]
        else:
            default = None if name in optional else inspect.Parameter.empty
        params.append(_keyword_parameter(str(name), default))
    if accepts_undeclared_parameters(schema):
        # Prefect hands a run's undeclared parameters over as one object under this name
        # (specs.parameters.prefect_parameters) and spreads it into keyword arguments.
        params.append(inspect.Parameter(EXTRA_PARAMETERS, inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(params)


def _keyword_parameter(name: str, default: Any) -> inspect.Parameter:
    if name.isidentifier() and not keyword.iskeyword(name):
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Any)
    # JSON Schema allows names such as 'start-date' or 'class'; inspect.Parameter refuses them, but
    # binding only compares names and the generic flow function takes **params, so the parameter is
    # built under a placeholder name and renamed.
    parameter = inspect.Parameter("_", inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Any)
    parameter._name = name  # type: ignore[attr-defined]
    return parameter


def compile_workflow(workflow: Workflow, specification: Specification) -> CompiledWorkflow:
    """Build the run plan of a validated workflow."""
    needs = {task.id: list(task.needs) for task in workflow.tasks}
    order = tuple(topological_order(needs))
    plans = {task.id: plan_task(task, workflow, needs) for task in workflow.tasks}
    return CompiledWorkflow(
        workflow=workflow,
        specification=specification,
        order=order,
        plans=MappingProxyType(plans),
        secrets=frozenset(name for task in workflow.tasks for name in secrets_read(task)),
    )


def secrets_read(task: Task) -> set[str]:
    """The Secret block names a (validated) task's expressions read."""
    embedded: list[Any] = [task.with_, task.for_each if isinstance(task.for_each, list) else None]
    embedded.append(task.cache.key if task.cache is not None else None)
    texts = [text for _, text in iter_strings(embedded) if "${{" in text]
    bare = [text for text in (task.if_, task.for_each) if isinstance(text, str)]
    names: set[str] = set()
    try:
        expressions = [e for text in texts for e in find_expressions(text)]
        expressions += [bare_expression(text) for text in bare]
        for expression in expressions:
            names |= analyze(expression.strip()).secrets
    except ExpressionError:
        pass  # validation reports it; the run fails on it where it is evaluated
    return names
