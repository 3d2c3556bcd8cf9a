"""The schema checked into docs/ is the one the API serves, as ``trinity graphql-schema`` prints it."""

from __future__ import annotations

import sys
from pathlib import Path

from api.graphql.schema import print_schema
from tests.support.shell import run_command

REPO = Path(__file__).resolve().parents[3]
CHECKED_IN = REPO / "docs" / "graphql-schema.graphql"


def test_the_checked_in_schema_is_current() -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == print_schema(), (
        "docs/graphql-schema.graphql is stale: run `trinity graphql-schema > docs/graphql-schema.graphql`"
    )


def test_the_command_prints_the_schema() -> None:
    result = run_command([sys.executable, "-m", "trinity.cli", "graphql-schema"], cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == CHECKED_IN.read_text(encoding="utf-8")
    assert "executeWorkflow(id: ID!, parameters: JSON, idempotencyKey: String): Run!" in result.stdout
