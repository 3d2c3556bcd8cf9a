"""Documents and parameters from the command line: loaded, parsed and checked, or one line per problem."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from specs.errors import SpecError
from specs.loader import check_paths
from specs.models import Document
from specs.parameters import parse_cli_param, validate_parameters
from trinity.commands.common import fail


def load_documents(paths: Sequence[Path]) -> list[Document]:
    """Every document in ``paths`` (files or folders), validated together."""
    result = check_paths(paths)
    if result.problems:
        fail(*(problem.format() for problem in result.problems))
    return list(result.documents)


def parse_params(texts: Sequence[str]) -> dict[str, Any]:
    """``--param KEY=VALUE`` options as a dict (VALUE parsed as JSON where it parses)."""
    params: dict[str, Any] = {}
    errors: list[str] = []
    for text in texts:
        try:
            key, value = parse_cli_param(text)
        except SpecError as exc:
            errors.append(f"--param: {exc.message}")
            continue
        params[key] = value
    if errors:
        fail(*errors)
    return params


def check_params(schema: dict[str, Any], params: dict[str, Any]) -> None:
    """Refuse parameters that the specification's schema does not accept (every check of a run's
    parameters before it starts goes here, whether the run is from a file or a deployment)."""
    problems = validate_parameters(schema, params, source="--param")
    if problems:
        fail(*(problem.format() for problem in problems))
