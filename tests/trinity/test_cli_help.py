"""The CLI's help shows code as code: no reStructuredText double backticks in any command's help."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from trinity.cli import app


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    return result.output


def test_no_command_help_shows_double_backticks() -> None:
    commands = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {"validate", "run", "report", "up", "down", "status"} <= set(commands)

    pages = {"trinity": _help(), **{name: _help(name) for name in commands}}

    assert {name: text for name, text in pages.items() if "``" in text} == {}
    assert "Stop a running `trinity up`" in pages["trinity"]
