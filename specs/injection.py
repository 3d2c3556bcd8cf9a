"""Expressions inside an interpreter's script argument: code injection, found before anything runs.

``argv: [sh, -c, "echo ${{ params.name }}"]`` renders the parameter into the text the shell parses,
so a value such as ``x; id`` runs ``id``. This module finds the script argument of an interpreter
anywhere in ``argv`` (``sh -c``, ``bash -lc``, ``/usr/bin/env python3 -c``, ``timeout 5 node -e``,
``pwsh -Command`` ...) and flags every expression in it that is not made safe:

* POSIX shells accept an expression whose last step is the ``quote`` filter (``shlex.quote``):
  ``${{ params.name | quote }}`` renders as one shell word whatever the value holds;
* every interpreter accepts the value through the environment instead: ``with.env`` maps a
  variable to the expression, and the script reads ``"$NAME"`` (``os.environ['NAME']`` ...).

POSIX quoting is not a string literal of Python, JavaScript, Perl or PowerShell, so for those only
the environment is safe. ``argv`` items that are no interpreter's script stay plain values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

from specs.errors import SpecError
from specs.expressions import find_expressions, parse_expression

QUOTE_FILTER = "quote"


@dataclass(frozen=True)
class Interpreter:
    """A program that runs code given as an argument."""

    family: str  # "shell" (POSIX quoting is safe) or the language's name
    flags: frozenset[str]  # options whose following argument is the script
    cluster: str = ""  # a short option letter that may be bundled (``-ec``), or "" when not
    takes_rest: bool = False  # every later argument is part of the script (PowerShell)
    case_insensitive: bool = False


_SHELL = Interpreter("shell", frozenset({"-c"}), cluster="c")
_PYTHON = Interpreter("Python", frozenset({"-c"}), cluster="c")
_POWERSHELL = Interpreter(
    "PowerShell", frozenset({"-c", "-command", "/c", "/command"}), takes_rest=True, case_insensitive=True
)
_INTERPRETERS: dict[str, Interpreter] = {
    **dict.fromkeys(("sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "busybox-sh"), _SHELL),
    "fish": Interpreter("fish", frozenset({"-c", "--command"}), cluster="c"),
    "node": Interpreter("JavaScript", frozenset({"-e", "--eval", "-p", "--print"})),
    "nodejs": Interpreter("JavaScript", frozenset({"-e", "--eval", "-p", "--print"})),
    "perl": Interpreter("Perl", frozenset({"-e", "-E"}), cluster="eE"),
    "ruby": Interpreter("Ruby", frozenset({"-e"}), cluster="e"),
    "php": Interpreter("PHP", frozenset({"-r"})),
    "lua": Interpreter("Lua", frozenset({"-e"})),
    "Rscript": Interpreter("R", frozenset({"-e"})),
    "osascript": Interpreter("AppleScript", frozenset({"-e"})),
    "pwsh": _POWERSHELL,
    "powershell": _POWERSHELL,
    "cmd": Interpreter("cmd", frozenset({"/c", "/k"}), takes_rest=True, case_insensitive=True),
}
_PYTHON_NAME = re.compile(r"^(python|pypy)(\d+(\.\d+)?)?$")
# Shell options that take the next argument as their value (``bash -o pipefail -c ...``).
_SHELL_VALUE_OPTIONS = frozenset({"-o", "+o", "-O", "+O"})


def interpreter_of(program: str) -> Interpreter | None:
    """The interpreter an ``argv`` item names (a path and ``.exe`` allowed), or None."""
    name = program.replace("\\", "/").rsplit("/", 1)[-1]
    name = name.removesuffix(".exe").removesuffix(".EXE")
    if _PYTHON_NAME.match(name):
        return _PYTHON
    return _INTERPRETERS.get(name)


def _is_script_flag(interpreter: Interpreter, item: str) -> bool:
    text = item.lower() if interpreter.case_insensitive else item
    if text in interpreter.flags:
        return True
    if interpreter.case_insensitive and len(text) >= 3 and "-command".startswith(text):
        return True  # PowerShell accepts any prefix of a parameter name: -Com, -comm
    bundled = interpreter.cluster and len(text) > 2 and text[0] == "-" and text[1] != "-"
    return bool(bundled) and text[1:].isalpha() and text[-1] in interpreter.cluster


@dataclass(frozen=True)
class ScriptArgument:
    """One ``argv`` item that an interpreter runs as code."""

    index: int
    interpreter: Interpreter
    program: str  # how argv calls it, e.g. "sh -c" or "/usr/bin/python3 -c"


def script_arguments(argv: Sequence[Any]) -> list[ScriptArgument]:
    """The ``argv`` items that are an interpreter's script.

    The interpreter may stand anywhere (after ``env``, ``timeout 5``, ``docker exec c`` ...); its
    options are read up to its script flag. Items that are not literal strings are skipped.
    """
    found: list[ScriptArgument] = []
    index = 0
    while index < len(argv):
        item = argv[index]
        interpreter = interpreter_of(item) if isinstance(item, str) and "${{" not in item else None
        index += 1
        if interpreter is None:
            continue
        while index < len(argv) and isinstance(argv[index], str):
            option = argv[index]
            if _is_script_flag(interpreter, option):
                last = len(argv) if interpreter.takes_rest else min(index + 2, len(argv))
                program = f"{item} {option}"
                found.extend(ScriptArgument(at, interpreter, program) for at in range(index + 1, last))
                index = last
                break
            if option in _SHELL_VALUE_OPTIONS and interpreter.family == "shell":
                index += 2
            elif option.startswith(("-", "+")) and option not in ("-", "--"):
                index += 1
            else:
                break  # a script file or the first operand: no inline script here
    return found


def _quoted(expression: str) -> bool:
    try:
        tree = parse_expression(expression)
    except SpecError:
        return False  # reported by the expression checks
    return isinstance(tree, nodes.Filter) and tree.name == QUOTE_FILTER


def _variable_name(expression: str) -> str:
    match = re.fullmatch(r"(?:params|item)\.([A-Za-z_][A-Za-z0-9_]*)", expression)
    return match.group(1).upper() if match else "VALUE"


def _message(expression: str, program: str, interpreter: Interpreter) -> str:
    written = " ".join(expression.split())
    # An expression quoted for the shell is still unsafe in other languages: offer its value.
    value = re.sub(rf"\s*\|\s*{QUOTE_FILTER}$", "", written)
    name = _variable_name(value)
    env_form = f"with.env: {{{name}: '${{{{ {value} }}}}'}}"
    if interpreter.family == "shell":
        return (
            f"expression '${{{{ {written} }}}}' is inside the script of '{program}', where a value such "
            f"as 'x; id' runs as a command; quote it: '${{{{ {value} | {QUOTE_FILTER} }}}}', or pass it "
            f'as {env_form} and write "${name}" in the script'
        )
    return (
        f"expression '${{{{ {written} }}}}' is inside the {interpreter.family} code of '{program}', where "
        f"a value can run as code; pass it as {env_form} and read the variable {name} in the code "
        f"('{QUOTE_FILTER}' is POSIX shell quoting, not {interpreter.family}'s)"
    )


def injection_problems(argv: Sequence[Any]) -> Iterator[tuple[int, str]]:
    """(argv index, message) for each unsafe expression in an interpreter's script argument."""
    for script in script_arguments(argv):
        text = argv[script.index]
        if not isinstance(text, str) or "${{" not in text:
            continue
        try:
            expressions = find_expressions(text)
        except SpecError:
            continue  # an unclosed ${{ is reported by the expression checks
        for expression in expressions:
            if script.interpreter.family == "shell" and _quoted(expression):
                continue
            yield script.index, _message(expression, script.program, script.interpreter)
