"""Reading the DAG and effective settings from a workflow document."""

from __future__ import annotations

import pytest

from analytics.workflow_doc import DEFAULT_MAX_PARALLEL_TASKS, read_document
from specs.dag import CycleError
from tests.analytics.factories import task, workflow_doc


def test_settings_fall_back_to_defaults() -> None:
    doc = workflow_doc(
        [
            task("a", retries=5, timeout_seconds=9),
            task("b", "a", retry_backoff={"base_seconds": 2}),
            task("c", "b", for_each="${{ params.items }}", cache={"expiry_seconds": 60}),
        ],
        defaults={"retries": 2, "retry_delay_seconds": [1, 5], "timeout_seconds": 30},
        concurrency={"max_parallel_tasks": 3},
    )
    info = read_document(doc)
    a, b, c = info.tasks["a"], info.tasks["b"], info.tasks["c"]
    assert (a.retries, a.timeout_seconds, a.retry_delay_seconds) == (5, 9.0, [1.0, 5.0])
    assert (b.retries, b.retry_backoff, b.retry_delay_seconds) == (2, {"base_seconds": 2}, None)
    assert (c.timeout_seconds, c.cache_enabled, c.fan_out) == (30.0, True, True)
    assert info.max_parallel_tasks == 3
    assert info.order == ("a", "b", "c")


def test_unknown_needs_are_ignored_and_limit_defaults() -> None:
    info = read_document(workflow_doc([task("x", "ghost"), task("y")]))
    assert info.needs == {"x": [], "y": []}
    assert info.max_parallel_tasks == DEFAULT_MAX_PARALLEL_TASKS


def test_order_is_topological_with_document_order_for_ties() -> None:
    info = read_document(workflow_doc([task("d", "b", "c"), task("b", "a"), task("c", "a"), task("a")]))
    assert info.order == ("a", "b", "c", "d")


def test_cycles_are_reported_with_their_tasks() -> None:
    with pytest.raises(CycleError, match="a -> b -> a"):
        read_document(workflow_doc([task("a", "b"), task("b", "a"), task("c")]))
