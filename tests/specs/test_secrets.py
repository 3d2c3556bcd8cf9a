"""Secret parameters and ``${{ secrets.NAME }}``: which values are secrets, how they are shown,
how a deployment's form takes them, and the static checks of secret names."""

from __future__ import annotations

from specs.parameters import prefect_parameters_schema, validate_parameters
from specs.secrets import (
    mask_references,
    mask_secret_parameters,
    referenced_block,
    secret_parameters,
    secret_reference,
)
from tests.specs.helpers import only, problems, workflow_text

SCHEMA = {
    "type": "object",
    "properties": {
        "password": {"type": "string", "format": "password", "minLength": 8, "title": "DB password"},
        "token": {"type": "string", "writeOnly": True, "pattern": "^t-"},
        "day": {"type": "string"},
    },
    "required": ["password"],
}


def test_password_format_and_write_only_declare_secrets() -> None:
    assert secret_parameters(SCHEMA) == {"password", "token"}
    assert secret_parameters({"type": "object"}) == frozenset()


def test_secret_values_are_shown_masked() -> None:
    params = {"password": "hunter2-pw", "token": "t-1234", "day": "2024-05-01"}
    assert mask_secret_parameters(SCHEMA, params) == {"password": "***", "token": "***", "day": "2024-05-01"}


def test_references_name_a_block_and_are_masked_where_the_schema_is_unknown() -> None:
    reference = secret_reference("trinity-run-secret-abc")
    assert referenced_block(reference) == "trinity-run-secret-abc"
    assert referenced_block("hunter2-pw") is None
    assert referenced_block("trinity-secret:Not A Block") is None
    assert mask_references({"password": reference, "day": "x"}) == {"password": "***", "day": "x"}


def test_the_deployment_form_masks_secrets_and_accepts_references() -> None:
    form = prefect_parameters_schema(SCHEMA)
    assert form["properties"]["password"] == {
        "title": "DB password",
        "type": "string",
        "format": "password",
        "writeOnly": True,
    }
    assert form["properties"]["token"]["format"] == "password"
    assert "pattern" not in form["properties"]["token"]
    assert form["properties"]["day"] == {"type": "string"}
    assert SCHEMA["properties"]["password"]["minLength"] == 8  # type: ignore[index]


def test_secrets_are_read_by_block_name() -> None:
    text = workflow_text(
        """
        - id: a
          uses: noop
          with: {output: "${{ secrets.dbtoken }} ${{ secrets['api-key'] }}"}
          if: "${{ secrets['flag-1'] != '' }}"
        """
    )
    assert problems(text) == []


def test_bad_secret_reads_are_located() -> None:
    text = workflow_text(
        """
        - id: a
          uses: noop
          with:
            output: "${{ secrets.DbToken }}"
            whole: "${{ secrets }}"
            dynamic: "${{ secrets[params.day] }}"
        """
    )
    found = problems(text)
    upper = only(found, "secrets.DbToken")
    assert "lowercase letters, digits and dashes" in upper.message
    assert upper.json_path == "$.tasks[0].with.output"
    assert only(found, "read a secret by its name").json_path == "$.tasks[0].with.whole"
    assert only(found, "literal name").json_path == "$.tasks[0].with.dynamic"


def test_problems_do_not_quote_a_secret_value() -> None:
    schema = {
        "type": "object",
        "properties": {"pw": {"type": "string", "format": "password", "minLength": 10}},
    }
    [problem] = validate_parameters(schema, {"pw": "hunter2"})
    assert "hunter2" not in problem.message
    assert problem.json_path == "$.pw"
