"""The generic workflow flow, built per workflow around one shared engine.

Each workflow is its own Prefect flow, named after the workflow (:func:`specs.naming.flow_name_for`),
so Prefect lists its runs, deployment, task runs and schedules under that name.

The flow function takes ``**params``; its ``__signature__`` is the specification's parameters
(keyword-only, schema defaults), because Prefect binds a run's parameters against the signature and
refuses names it does not declare. Parameter values are checked against the JSON Schema by the
engine (located messages), not by Prefect's pydantic casting, which would coerce silently.
"""

from __future__ import annotations

from typing import Any

from prefect import Flow

from flows import dask_runner
from flows.compiler import CompiledWorkflow, parameters_signature
from flows.engine import WorkflowEngine
from specs.naming import flow_name_for


def build_flow(compiled: CompiledWorkflow, *, engine: WorkflowEngine | None = None) -> Flow[..., Any]:
    """A Prefect flow that runs ``compiled`` (named and versioned as the workflow).

    ``engine`` replaces the default :class:`WorkflowEngine` (e.g. an instrumented one in benchmarks).
    """
    engine = engine or WorkflowEngine(compiled)

    async def trinity_workflow(**params: Any) -> Any:
        return await engine.run(params)

    trinity_workflow.__signature__ = parameters_signature(compiled.parameters_schema)  # type: ignore[attr-defined]
    trinity_workflow.__doc__ = compiled.workflow.description or f"Trinity workflow '{compiled.name}'."
    hooks = [engine.on_final_state]
    runner = compiled.workflow.task_runner
    return Flow(
        fn=trinity_workflow,
        name=flow_name_for(compiled.name),
        version=compiled.version,
        description=compiled.workflow.description or None,
        timeout_seconds=compiled.workflow.timeout_seconds,
        validate_parameters=False,
        # None keeps Prefect's default (task runs in the flow run's process).
        task_runner=dask_runner.task_runner_for(runner) if runner is not None else None,
        on_completion=list(hooks),
        on_failure=list(hooks),
        on_crashed=list(hooks),
        on_cancellation=list(hooks),
    )
