"""Running what the product prints for people to paste: in a clean shell, as a new terminal would."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from trinity.banner import PROMPT

_PROMPTED = re.compile(rf"^.*?\s{re.escape(PROMPT)}(?P<line>\S.*)$")


def commands_in(text: str) -> list[str]:
    """The command lines of a printed banner: what follows the prompt (timestamps and all before it go)."""
    return [match.group("line") for line in text.splitlines() if (match := _PROMPTED.match(line))]


def run_command(
    argv: list[str], *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end, its output captured as text; the caller checks the exit code."""
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def run_in_clean_shell(
    line: str, *, home: Path, cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``env -i PATH=/usr/bin:/bin HOME=… bash -c LINE``: nothing of this process's environment."""
    return run_command(
        ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}", "bash", "-c", line], cwd=cwd, timeout=timeout
    )
