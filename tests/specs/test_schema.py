"""The JSON Schema: committed copy in sync, valid, and agreeing with the examples."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from specs.schema import documents_json_schema, schema_text

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "specs" / "schema" / "trinity.schema.json"


def test_committed_schema_is_in_sync() -> None:
    assert COMMITTED.read_text() == schema_text(), "run: trinity schema -o specs/schema/trinity.schema.json"


def test_schema_is_valid_draft_2020_12() -> None:
    schema = documents_json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_examples_satisfy_the_schema() -> None:
    validator = Draft202012Validator(json.loads(COMMITTED.read_text()))
    examples = sorted((ROOT / "specs" / "examples").glob("*.yaml"))
    assert examples, "no example files found"
    for path in examples:
        for document in yaml.safe_load_all(path.read_text()):
            errors = [e.message for e in validator.iter_errors(document)]
            assert errors == [], f"{path.name}: {errors[:3]}"


def test_schema_catches_unknown_keys_and_action_inputs() -> None:
    validator = Draft202012Validator(documents_json_schema())
    workflow = {
        "kind": "Workflow",
        "name": "x",
        "version": "1.0.0",
        "spec": {"name": "x", "version": "^1.0.0"},
        "tasks": [{"id": "a", "uses": "sleep", "with": {"seconds": 1}}],
    }
    assert list(validator.iter_errors(workflow)) == []
    workflow["tasks"][0]["with"] = {"seconds": "${{ params.wait }}"}  # type: ignore[index]
    assert list(validator.iter_errors(workflow)) == []
    workflow["tasks"][0]["with"] = {"secs": 1}  # type: ignore[index]
    assert list(validator.iter_errors(workflow)) != []
    workflow["tasks"][0]["with"] = {"seconds": 1}  # type: ignore[index]
    workflow["taks"] = []
    assert list(validator.iter_errors(workflow)) != []
