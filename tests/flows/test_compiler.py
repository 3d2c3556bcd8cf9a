"""Compilation: task policies resolved against workflow defaults (pure)."""

from __future__ import annotations

import inspect

from analytics.frames import WorkflowContext
from analytics.workflow_doc import read_document
from flows.compiler import compile_workflow, parameters_signature
from flows.task_run import build_task
from specs.parameters import EXTRA_PARAMETERS
from tests.flows.factories import specification, workflow


def test_task_settings_override_workflow_defaults() -> None:
    wf = workflow(
        [
            {"id": "a", "uses": "noop"},
            {"id": "b", "uses": "noop", "retries": 1, "retry_backoff": {"base_seconds": 2, "factor": 3}},
            {"id": "c", "uses": "noop", "needs": ["a", "b"], "retries": 0, "timeout_seconds": 5},
        ],
        defaults={"retries": 3, "retry_delay_seconds": [1, 10], "timeout_seconds": 60},
    )

    plans = compile_workflow(wf, specification()).plans

    assert (plans["a"].retries, plans["a"].retry_delays, plans["a"].timeout_seconds) == (3, (1.0, 10.0), 60)
    assert (plans["b"].retries, plans["b"].retry_delays) == (1, (2.0,))
    assert (plans["c"].retries, plans["c"].retry_delays, plans["c"].timeout_seconds) == (0, (), 5)
    assert plans["c"].upstream == {"a", "b"}


def test_prefect_task_carries_the_plan() -> None:
    wf = workflow(
        [
            {
                "id": "t",
                "uses": "noop",
                "retries": 2,
                "timeout_seconds": 7,
                "retry_backoff": {"base_seconds": 1, "factor": 2, "cap_seconds": 10, "jitter": 0.5},
                "cache": {"expiry_seconds": 120},
            }
        ]
    )

    task = build_task(compile_workflow(wf, specification()).plans["t"])

    assert task.name == "t"
    assert task.retries == 2
    assert task.retry_delay_seconds == [1.0, 2.0]
    assert task.retry_jitter_factor == 0.5
    assert task.timeout_seconds == 7
    assert task.cache_expiration.total_seconds() == 120
    assert task.persist_result is True


def test_signature_lists_spec_parameters_with_defaults() -> None:
    schema = {
        "type": "object",
        "properties": {
            "day": {"type": "string"},
            "note": {"type": "string"},
            "start-date": {"default": "x"},
            "class": {"default": 1},
        },
        "required": ["day"],
    }

    signature = parameters_signature(schema)

    assert list(signature.parameters) == ["day", "note", "start-date", "class"]
    assert signature.parameters["day"].default is inspect.Parameter.empty
    assert signature.parameters["note"].default is None  # optional: Prefect must not demand it
    assert signature.parameters["start-date"].default == "x"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in signature.parameters.values())


def test_signature_takes_undeclared_parameters_only_when_the_schema_accepts_them() -> None:
    closed = {"type": "object", "properties": {"day": {"type": "string"}}}

    assert list(parameters_signature(closed).parameters) == ["day"]
    signature = parameters_signature({**closed, "additionalProperties": True})
    assert list(signature.parameters) == ["day", EXTRA_PARAMETERS]
    assert signature.parameters[EXTRA_PARAMETERS].kind is inspect.Parameter.VAR_KEYWORD


def test_the_analytics_read_the_settings_the_compiler_runs_with() -> None:
    wf = workflow(
        [
            {"id": "a", "uses": "noop"},
            {"id": "b", "uses": "noop", "needs": ["a"], "retries": 4, "retry_delay_seconds": 3},
            {"id": "c", "uses": "noop", "needs": ["a"], "retry_backoff": {"base_seconds": 2}, "retries": 0},
        ],
        defaults={"retries": 2, "retry_backoff": {"base_seconds": 1, "jitter": 0.5}, "timeout_seconds": 9},
    )
    plans = compile_workflow(wf, specification()).plans
    read = read_document(WorkflowContext.from_models(wf).document)

    for task_id, plan in plans.items():
        settings = read.tasks[task_id]
        assert (settings.retries, settings.timeout_seconds) == (plan.retries, plan.timeout_seconds)
    assert read.tasks["a"].retry_backoff == {
        "base_seconds": 1.0,
        "factor": 2.0,
        "cap_seconds": 300.0,
        "jitter": 0.5,
    }
    assert plans["a"].retry_jitter == 0.5
    assert read.tasks["b"].retry_delay_seconds == 3.0
    assert read.max_parallel_tasks == wf.concurrency.max_parallel_tasks


def test_the_secrets_a_workflow_reads_are_known_before_it_runs() -> None:
    wf = workflow(
        [
            {
                "id": "a",
                "uses": "noop",
                "with": {"output": "${{ secrets.dbtoken }} ${{ secrets['api-key'] }}"},
            },
            {"id": "b", "uses": "noop", "if": "${{ secrets['flag-1'] != '' }}", "for_each": [1]},
            {"id": "c", "uses": "noop", "cache": {"key": "${{ secrets.salt }}"}},
        ]
    )

    assert compile_workflow(wf, specification()).secrets == {"dbtoken", "api-key", "flag-1", "salt"}
