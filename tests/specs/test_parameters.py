"""Parameters: checking values against the spec's schema, defaults, and key=value parsing."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from specs.errors import SpecError
from specs.parameters import (
    EXTRA_PARAMETERS,
    accepts_undeclared_parameters,
    apply_defaults,
    check_parameters_schema,
    checked_run_parameters,
    declared_parameters,
    drop_unset_optionals,
    optional_parameters,
    parse_cli_param,
    parse_cli_params,
    prefect_parameters,
    prefect_parameters_schema,
    unknown_parameters,
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


NAMES = {"type": "object", "properties": {"names": {"type": "array", "items": {"type": "string"}}}}


def test_an_unknown_name_is_refused_when_the_schema_says_nothing_of_others() -> None:
    found = validate_parameters(NAMES, {"nams": ["ada"]})

    assert [(p.json_path, p.message) for p in found] == [
        ("$.nams", "unknown parameter 'nams'; did you mean 'names'?")
    ]
    assert [p.message for p in unknown_parameters(NAMES, {"zzz": 1, "names": []})] == [
        "unknown parameter 'zzz'"
    ]


def test_unknown_names_are_reported_once_each_beside_other_problems() -> None:
    found = validate_parameters(schema(), {"dya": "x", "limt": 2, "limit": 0, "day": "2024-01-01"})

    messages = sorted(p.message for p in found if p.message.startswith("unknown"))
    assert messages == [
        "unknown parameter 'dya'; did you mean 'day'?",
        "unknown parameter 'limt'; did you mean 'limit'?",
    ]
    assert [p.json_path for p in found if not p.message.startswith("unknown")] == ["$.limit"]


@pytest.mark.parametrize(
    ("openness", "refused"),
    [
        ({"additionalProperties": True}, []),
        ({"additionalProperties": {"type": "integer"}}, ["$.x_n"]),
        ({"patternProperties": {"^x_": {"type": "integer"}}}, ["$.x_n"]),
    ],
)
def test_a_schema_that_says_so_accepts_undeclared_names(openness: dict[str, Any], refused: list[str]) -> None:
    open_schema = {**NAMES, **openness}

    assert accepts_undeclared_parameters(open_schema)
    assert validate_parameters(open_schema, {"names": ["a"], "x_n": 3}) == []
    assert unknown_parameters(open_schema, {"x_n": 3}) == []
    # What the schema says of them still holds.
    assert [p.json_path for p in validate_parameters(open_schema, {"x_n": "three"})] == refused


@pytest.mark.parametrize("closed", [{}, {"additionalProperties": False}])
def test_patterns_admit_only_matching_names(closed: dict[str, Any]) -> None:
    patterned = {**NAMES, "patternProperties": {"^x_": {}}, **closed}

    found = validate_parameters(patterned, {"x_ok": 1, "nams": [], "other": 2})

    assert sorted((p.json_path, p.message) for p in found) == [
        ("$.nams", "unknown parameter 'nams'; did you mean 'names'?"),
        ("$.other", "unknown parameter 'other'"),
    ]
    assert not Draft202012Validator(prefect_parameters_schema(patterned)).is_valid(
        prefect_parameters(patterned, {"other": 2})
    )
    assert Draft202012Validator(prefect_parameters_schema(patterned)).is_valid(
        prefect_parameters(patterned, {"x_ok": 2})
    )


def test_prefect_schema_of_a_closed_spec_refuses_other_names() -> None:
    prefect_schema = prefect_parameters_schema(NAMES)

    assert prefect_schema == {**NAMES, "additionalProperties": False}
    assert "additionalProperties" not in NAMES  # the spec's own schema is left as it was
    assert prefect_parameters(NAMES, {"names": ["a"]}) == {"names": ["a"]}


def test_prefect_schema_of_an_open_spec_carries_undeclared_names_as_one_object() -> None:
    open_schema = {**NAMES, "additionalProperties": {"type": "integer"}}

    prefect_schema = prefect_parameters_schema(open_schema)

    assert prefect_schema["additionalProperties"] is False
    extra = prefect_schema["properties"][EXTRA_PARAMETERS]
    assert extra["type"] == "object"
    assert extra["additionalProperties"] == {"type": "integer"}
    folded = prefect_parameters(open_schema, {"names": ["a"], "n": 1})
    assert folded == {"names": ["a"], EXTRA_PARAMETERS: {"n": 1}}
    # Prefect's check of the folded form, and ours of the user's form against either schema.
    assert Draft202012Validator(prefect_schema).is_valid(folded)
    assert not Draft202012Validator(prefect_schema).is_valid({"names": ["a"], "n": 1})
    assert not Draft202012Validator(prefect_schema).is_valid({EXTRA_PARAMETERS: {"n": "x"}})
    assert validate_parameters(prefect_schema, {"names": ["a"], "n": 1}) == []
    assert [p.json_path for p in validate_parameters(prefect_schema, {"n": "x"})] == ["$.n"]


def test_checked_run_parameters_checks_fills_defaults_and_folds() -> None:
    with pytest.raises(SpecError) as caught:
        checked_run_parameters(schema(), {"dy": "2024-01-01"}, source="--param")
    assert [p.format() for p in caught.value.problems] == [
        "--param: error: unknown parameter 'dy'; did you mean 'day'? (at $.dy)",
        "--param: error: missing required parameter 'day' (at $.day)",
    ]

    assert checked_run_parameters(schema(), {"day": "2024-01-31"}) == {
        "day": "2024-01-31",
        "limit": 10,
        "tags": ["a"],
    }
    open_schema = {**NAMES, "additionalProperties": True}
    for given in (open_schema, prefect_parameters_schema(open_schema)):
        assert checked_run_parameters(given, {"names": [], "k": "v"}) == {
            "names": [],
            EXTRA_PARAMETERS: {"k": "v"},
        }


def test_the_extra_parameters_name_is_reserved_only_in_an_open_schema() -> None:
    declared = {"type": "object", "properties": {EXTRA_PARAMETERS: {"type": "object"}}}

    assert check_parameters_schema(declared) == []
    found = check_parameters_schema({**declared, "additionalProperties": True})
    assert [p.json_path for p in found] == [f"$.properties.{EXTRA_PARAMETERS}"]
