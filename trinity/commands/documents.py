"""Documents and parameters from the command line: loaded, parsed and checked, or one line per problem."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from specs.errors import SpecError
from specs.loader import check_paths
from specs.models import Document
from specs.parameters import checked_run_parameters, parse_cli_param
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


def check_params(schema: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters checked, defaults applied, as the flow run carries them; parameters the
    schema does not accept (unknown names included) are refused, one line each. Every check of a
    run's parameters before it starts goes here, whether the run is from a file or a deployment."""
    try:
        return checked_run_parameters(schema, params, source="--param")
    except SpecError as exc:
        fail(*(problem.format() for problem in exc.problems))
