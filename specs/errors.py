"""Located problems and the exceptions that carry them.

Every check in :mod:`specs` reports a :class:`Problem`: the file, the line and column (1-based, when
known), a message that says what was expected, and the JSON path of the offending value. Checks
collect problems instead of stopping at the first, so a user sees everything wrong in one pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, with its location."""

    file: str
    line: int | None
    col: int | None
    message: str
    json_path: str = "$"

    def format(self) -> str:
        """Render as ``file:line:col: error: message (at json.path)``."""
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        return f"{where}: error: {self.message} (at {self.json_path})"

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for JSON output."""
        return asdict(self)


class SpecError(Exception):
    """Base of every domain error in :mod:`specs`; carries all problems found."""

    def __init__(self, problems: Sequence[Problem] | str, *, json_path: str = "$", file: str = "<input>"):
        if isinstance(problems, str):
            problems = [Problem(file=file, line=None, col=None, message=problems, json_path=json_path)]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(problem.format() for problem in self.problems))

    @property
    def message(self) -> str:
        """The first problem's message (handy when there is exactly one)."""
        return self.problems[0].message if self.problems else ""


def json_path(parts: Iterable[str | int]) -> str:
    """Format path parts as a JSON path: ``("tasks", 2, "needs", 0)`` -> ``$.tasks[2].needs[0]``."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.match(part):
            out.append(f".{part}")
        else:
            out.append(f"[{json.dumps(part)}]")
    return "".join(out)


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Order problems by file, then line and column (unlocated ones last within a file)."""
    return sorted(
        problems,
        key=lambda p: (p.file, p.line is None, p.line or 0, p.col or 0, p.json_path, p.message),
    )
