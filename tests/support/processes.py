"""A command run as its own process group for the length of a test, its output in a file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path


@contextlib.contextmanager
def running_process(
    argv: list[str], *, cwd: Path, env: Mapping[str, str], output: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` in a new session, stdout and stderr to ``output``; afterwards SIGTERM to its group,
    SIGKILL when it has not ended within 30 s."""
    with output.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
