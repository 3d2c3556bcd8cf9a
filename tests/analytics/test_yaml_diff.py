"""Document edits and their unified YAML diffs."""

from __future__ import annotations

import pytest
import yaml

from analytics.yaml_diff import (
    REMOVE,
    DiffError,
    Edit,
    apply_edits,
    apply_unified_diff,
    dump_yaml,
    unified_yaml_diff,
)
from specs.models import Workflow
from tests.analytics.factories import task, workflow_doc


def _doc() -> dict[str, object]:
    return workflow_doc([task("a", retries=1, retry_delay_seconds=5), task("b", "a")])


def test_edits_set_remove_and_create_nested_keys_without_touching_the_input() -> None:
    doc = _doc()
    after = apply_edits(
        doc,
        [
            Edit("a", ("retry_backoff",), {"base_seconds": 10, "jitter": 0.5}),
            Edit("a", ("retry_delay_seconds",), REMOVE),
            Edit(None, ("concurrency", "max_parallel_tasks"), 4),
        ],
    )
    assert after["concurrency"] == {"max_parallel_tasks": 4}
    assert after["tasks"][0] == {
        "id": "a",
        "uses": "noop",
        "retries": 1,
        "retry_backoff": {"base_seconds": 10, "jitter": 0.5},
    }
    assert "retry_backoff" not in doc["tasks"][0]
    assert "concurrency" not in doc
    Workflow.model_validate(after)


def test_edit_of_an_unknown_task_fails() -> None:
    with pytest.raises(KeyError, match="no task 'zz'"):
        apply_edits(_doc(), [Edit("zz", ("retries",), 1)])


def test_diff_applies_to_the_dumped_document_and_gives_the_edited_one() -> None:
    doc = _doc()
    after = apply_edits(doc, [Edit("b", ("timeout_seconds",), 90), Edit("a", ("retries",), 0)])
    diff = unified_yaml_diff(doc, after, name="wf")
    assert diff.startswith("--- a/wf.yaml\n+++ b/wf.yaml\n")
    assert "-  retries: 1\n+  retries: 0\n" in diff
    patched = apply_unified_diff(dump_yaml(doc), diff)
    assert patched == dump_yaml(after)
    Workflow.model_validate(yaml.safe_load(patched))


def test_diff_of_identical_documents_is_empty() -> None:
    assert unified_yaml_diff(_doc(), _doc(), name="wf") == ""


def test_a_diff_for_another_text_is_refused() -> None:
    doc = _doc()
    diff = unified_yaml_diff(doc, apply_edits(doc, [Edit("a", ("retries",), 3)]), name="wf")
    other = dump_yaml(apply_edits(doc, [Edit("a", ("retries",), 2)]))
    with pytest.raises(DiffError, match="does not match line"):
        apply_unified_diff(other, diff)
