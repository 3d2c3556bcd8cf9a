"""Parameters: checking values against the spec's schema, defaults, and key=value parsing."""

from __future__ import annotations

from typing import Any

import pytest

from specs.errors import SpecError
from specs.parameters import (
    apply_defaults,
    check_parameters_schema,
    declared_parameters,
    drop_unset_optionals,
    optional_parameters,
    parse_cli_param,
    parse_cli_params,
    validate_parameters,
)


def schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "day": {"type": "string", "format": "date"},
            "limit": {"type": "integer", "minimum": 1, "default": 10},
            "tags": {"type": "array", "items": {"type": "string"}, "default": ["a"]},
        },
        "required": ["day"],
        "additionalProperties": False,
    }


def test_valid_parameters_have_no_problems() -> None:
    assert validate_parameters(schema(), {"day": "2024-01-31", "limit": 2}) == []


def test_problems_are_json_path_located() -> None:
    found = validate_parameters(schema(), {"limit": 0, "tags": ["x", 3], "dya": "2024-01-01"})
    by_path = {p.json_path: p.message for p in found}
    assert by_path["$.day"] == "missing required parameter 'day'"
    assert "less than the minimum" in by_path["$.limit"]
    assert "not of type 'string'" in by_path["$.tags[1]"]
    assert by_path["$.dya"] == "unknown parameter 'dya'; did you mean 'day'?"


def test_formats_are_checked() -> None:
    found = validate_parameters(schema(), {"day": "2024-13-45"})
    assert [p.json_path for p in found] == ["$.day"]


def test_invalid_schema_is_reported_instead_of_raising() -> None:
    found = validate_parameters({"type": "objekt"}, {})
    assert found[0].message.startswith("not a valid JSON Schema")


def test_schema_checks() -> None:
    assert check_parameters_schema(schema()) == []
    assert check_parameters_schema({"type": "string"})[0].json_path == "$.type"
    assert "only local references" in check_parameters_schema({"$ref": "http://x/y.json"})[0].message
    bad_default = {"type": "object", "properties": {"n": {"type": "integer", "default": "x"}}}
    assert check_parameters_schema(bad_default)[0].json_path == "$.properties.n.default"


def test_local_references_resolve() -> None:
    with_defs = {
        "type": "object",
        "$defs": {"day": {"type": "string", "pattern": "^[0-9-]+$"}},
        "properties": {"day": {"$ref": "#/$defs/day"}},
    }
    assert check_parameters_schema(with_defs) == []
    assert validate_parameters(with_defs, {"day": "x"})[0].json_path == "$.day"


def test_apply_defaults_fills_only_missing_and_copies() -> None:
    base = schema()
    filled = apply_defaults(base, {"day": "2024-01-31", "limit": 5})
    assert filled == {"day": "2024-01-31", "limit": 5, "tags": ["a"]}
    filled["tags"].append("b")
    assert base["properties"]["tags"]["default"] == ["a"]


def test_declared_parameters() -> None:
    assert declared_parameters(schema()) == {"day", "limit", "tags"}
    assert declared_parameters({"type": "object"}) == frozenset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("day=2024-01-31", ("day", "2024-01-31")),
        ("limit=3", ("limit", 3)),
        ("flag=true", ("flag", True)),
        ('tags=["a","b"]', ("tags", ["a", "b"])),
        ("code=007", ("code", "007")),
        ("empty=", ("empty", "")),
        ("expr=a=b", ("expr", "a=b")),
    ],
)
def test_parse_cli_param(text: str, expected: tuple[str, Any]) -> None:
    assert parse_cli_param(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=3", "bad key=1"])
def test_parse_cli_param_refuses(text: str) -> None:
    with pytest.raises(SpecError):
        parse_cli_param(text)


def test_parse_cli_params_later_wins() -> None:
    assert parse_cli_params(["a=1", "b=x", "a=2"]) == {"a": 2, "b": "x"}


def test_drop_unset_optionals_removes_only_a_null_the_schema_refuses() -> None:
    schema = {
        "type": "object",
        "properties": {
            "day": {"type": "string", "format": "date"},
            "note": {"type": ["string", "null"]},
            "must": {"type": "string"},
            "limit": {"type": "integer", "default": 3},
        },
        "required": ["must"],
    }

    kept = drop_unset_optionals(schema, {"day": None, "note": None, "must": None, "limit": None})

    assert kept == {"note": None, "must": None, "limit": None}
    assert optional_parameters(schema) == {"day", "note"}
