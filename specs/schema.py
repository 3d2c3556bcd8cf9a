"""The JSON Schema of Trinity documents, for editors and other tools.

It is generated from the pydantic models, plus the inputs of each built-in action (chosen by the
task's ``uses``). Any input may also be an expression string (``${{ ... }}``), since inputs are
type-checked after rendering. A copy lives in ``specs/schema/trinity.schema.json``; a test keeps
it in sync with :func:`documents_json_schema`.
"""

from __future__ import annotations

import copy
import json
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from specs.actions import BUILTIN_ACTIONS
from specs.models import Specification, Workflow

SCHEMA_ID = "https://trinity.dev/schema/trinity.schema.json"
EXPRESSION_SCHEMA = {
    "type": "string",
    "pattern": r"\$\{\{",
    "description": "An expression, ${{ ... }}, rendered before the run.",
}

_DOCUMENT = Annotated[Specification | Workflow, Field(discriminator="kind")]


def _with_expressions(schema: dict[str, Any]) -> dict[str, Any]:
    """Let every property of an action's inputs also be an expression string."""
    result = copy.deepcopy(schema)
    for name, prop in list(result.get("properties", {}).items()):
        result["properties"][name] = {"anyOf": [prop, {"$ref": "#/$defs/Expression"}]}
        if "description" in prop:
            result["properties"][name]["description"] = prop["description"]
    return result


def _action_rules(defs: dict[str, Any]) -> list[dict[str, Any]]:
    rules = []
    for name, model in BUILTIN_ACTIONS.items():
        schema = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        title = f"{model.__name__}"
        defs[title] = _with_expressions(schema)
        rules.append(
            {
                "if": {"properties": {"uses": {"const": name}}, "required": ["uses"]},
                "then": {"properties": {"with": {"$ref": f"#/$defs/{title}"}}},
            }
        )
    return rules


def documents_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one Trinity document: a Specification or a Workflow."""
    schema = TypeAdapter(_DOCUMENT).json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    defs["Expression"] = EXPRESSION_SCHEMA
    task = defs["Task"]
    task["allOf"] = _action_rules(defs)
    task["properties"]["uses"]["examples"] = list(BUILTIN_ACTIONS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Trinity document",
        "description": "A Trinity Specification (the contract) or Workflow (a DAG of tasks).",
        **schema,
    }


def schema_text() -> str:
    """The schema as the committed file holds it (stable key order, trailing newline)."""
    return json.dumps(documents_json_schema(), indent=2, sort_keys=True) + "\n"
