"""Expressions in an interpreter's script argument: which argv items are scripts, what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from specs.expressions import evaluate
from specs.injection import injection_problems, interpreter_of, script_arguments
from tests.specs.helpers import only, problems, workflow_text

X = "${{ params.day }}"
Q = "${{ params.day | quote }}"


@pytest.mark.parametrize(
    ("argv", "refused"),
    [
        (["sh", "-c", f"echo {X}"], [2]),
        (["/bin/sh", "-c", f"echo {X}"], [2]),
        (["bash", "-lc", f"echo {X}"], [2]),
        (["bash", "-e", "-o", "pipefail", "-c", f"echo {X}"], [5]),
        (["/usr/bin/env", "LANG=C", "zsh", "-c", f"echo {X}"], [4]),
        (["timeout", "5", "dash", "-c", f"echo {X}"], [4]),
        (["ksh", "-c", f"echo {Q} {X}"], [2]),
        (["python", "-c", f"print({X})"], [2]),
        (["/usr/local/bin/python3.11", "-c", f"print({Q})"], [2]),
        (["node", "-e", f"console.log({X})"], [2]),
        (["nodejs", "--eval", f"console.log({X})"], [2]),
        (["perl", "-ne", f"print {X}"], [2]),
        (["pwsh", "-Command", "Write-Host", X], [3]),
        (["powershell.exe", "-c", f"Write-Host {X}"], [2]),
        (["docker", "exec", "box", "sh", "-c", f"echo {X}"], [5]),
    ],
)
def test_expressions_in_scripts_are_refused(argv: list[Any], refused: list[int]) -> None:
    assert [index for index, _ in injection_problems(argv)] == refused


@pytest.mark.parametrize(
    "argv",
    [
        ["sh", "-c", f"echo {Q}"],
        ["bash", "-c", f"echo {Q} ${{{{ params.limit|quote }}}}"],
        ["sh", "-c", 'echo "$DAY"'],
        ["sh", "-c", 'echo "$1"', "sh", X],
        ["echo", X],
        ["bash", "script.sh", X],
        ["python", "job.py", "-c", X],
        ["grep", "-c", "sh", X],
        [X, "-c", "echo hi"],
    ],
)
def test_plain_arguments_and_quoted_values_pass(argv: list[Any]) -> None:
    assert list(injection_problems(argv)) == []


def test_quoting_must_be_the_last_step() -> None:
    argv = ["sh", "-c", "echo ${{ 'a' ~ params.day | quote }}"]
    assert [index for index, _ in injection_problems(argv)] == [2]


def test_interpreter_names() -> None:
    assert interpreter_of("C:\\Windows\\cmd.exe") is not None
    assert interpreter_of("python3") is not None
    assert interpreter_of("shellcheck") is None
    assert [s.program for s in script_arguments(["/bin/bash", "-xc", "true"])] == ["/bin/bash -xc"]


def test_quote_filter_makes_one_shell_word() -> None:
    context = {"params": {"name": "x; id > pwned.txt", "n": None, "flag": True, "it": "it's"}}
    assert evaluate("params.name | quote", context) == "'x; id > pwned.txt'"
    assert evaluate("params.it | quote", context) == "'it'\"'\"'s'"
    assert evaluate("params.n | quote", context) == "''"
    assert evaluate("params.flag | quote", context) == "true"


@pytest.mark.parametrize(
    ("script", "where", "fixes"),
    [
        # A shell script: quoting the value and passing it in the environment both work.
        (f'[sh, -c, "echo {X}"]', "inside the script of 'sh -c'", [f"'{Q}'", '"$DAY"']),
        # Any other language: only the environment.
        (f'[python3, -c, "print({Q})"]', "Python code", []),
    ],
)
def test_validation_locates_the_argv_item_and_shows_the_fixes(
    script: str, where: str, fixes: list[str]
) -> None:
    text = workflow_text(f"- id: greet\n  uses: shell\n  with: {{argv: {script}}}\n")
    problem = only(problems(text), where)
    assert problem.json_path == "$.tasks[0].with.argv[2]"
    assert problem.line == 17
    assert "with.env: {DAY: '${{ params.day }}'}" in problem.message
    for fix in fixes:
        assert fix in problem.message
