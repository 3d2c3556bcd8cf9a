"""``shell``: run a program from an argv list (never through a shell).

stdout and stderr stream into the run's logs line by line while the program runs, and are kept
(up to :data:`MAX_CAPTURE_BYTES` each) for the output ``{returncode, stdout, stderr}``. A non-zero
exit fails the task. The child runs in its own session, so a timeout or a cancelled task kills the
whole process group, not only the direct child.

The child is reaped with ``os.wait4``, which returns its resource usage: user + system CPU seconds
and peak RSS of the child (and of grandchildren it waited for) -- exact and free.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import IO, Any

import anyio
import anyio.to_thread

from flows.actions.base import ActionContext, ActionError, ActionTimeoutError
from specs.actions import ShellInputs

MAX_CAPTURE_BYTES = 1024 * 1024
MAX_LOGGED_LINES = 5_000
# Output pumps may outlive the child when a grandchild keeps the pipe open; wait this long for them.
PUMP_JOIN_SECONDS = 2.0


class ShellCommandError(ActionError):
    """The program exited with a non-zero status or could not be started."""


class _Capture:
    """Keeps the first MAX_CAPTURE_BYTES of a stream and logs its lines."""

    def __init__(self, name: str, logger: logging.Logger | logging.LoggerAdapter[logging.Logger]):
        self.name = name
        self.logger = logger
        self.chunks: list[bytes] = []
        self.size = 0
        self.truncated = False
        self.lines = 0

    def feed(self, line: bytes) -> None:
        room = MAX_CAPTURE_BYTES - self.size
        if room > 0:
            kept = line[:room]
            self.chunks.append(kept)
            self.size += len(kept)
        if len(line) > room:
            self.truncated = True
        self.lines += 1
        if self.lines <= MAX_LOGGED_LINES:
            level = logging.INFO if self.name == "stdout" else logging.WARNING
            self.logger.log(level, "%s: %s", self.name, line.decode("utf-8", "replace").rstrip("\r\n"))
        elif self.lines == MAX_LOGGED_LINES + 1:
            self.logger.warning("%s: further lines are not logged (kept in the output)", self.name)

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    def last_line(self) -> str:
        lines = self.text().strip().splitlines()
        return lines[-1][:500] if lines else ""


def _pump(stream: IO[bytes], capture: _Capture) -> None:
    try:
        for line in iter(stream.readline, b""):
            capture.feed(line)
    finally:
        stream.close()


def _reap(process: subprocess.Popen[bytes]) -> Any:
    """Wait for the child and return its rusage; record the exit status on the Popen object."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _describe_exit(argv0: str, code: int) -> str:
    if code < 0:
        try:
            signal_name = signal.Signals(-code).name
        except ValueError:
            signal_name = f"signal {-code}"
        return f"'{argv0}' was killed by {signal_name}"
    return f"'{argv0}' exited with code {code}"


def _start(inputs: ShellInputs) -> subprocess.Popen[bytes]:
    env = {**os.environ, **inputs.env}
    try:
        return subprocess.Popen(
            inputs.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=inputs.cwd,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        missing = inputs.cwd if inputs.cwd and not os.path.isdir(inputs.cwd) else inputs.argv[0]
        raise ShellCommandError(f"cannot start '{inputs.argv[0]}': not found: {missing}") from exc
    except PermissionError as exc:
        raise ShellCommandError(f"cannot start '{inputs.argv[0]}': permission denied") from exc
    except OSError as exc:
        raise ShellCommandError(f"cannot start '{inputs.argv[0]}': {exc.strerror or exc}") from exc


class ShellAction:
    """Run ``argv`` with ``env`` (added to the worker's environment), ``cwd`` and ``timeout_seconds``."""

    name = "shell"
    inputs = ShellInputs

    async def run(self, inputs: ShellInputs, context: ActionContext) -> dict[str, Any]:
        process = _start(inputs)
        assert process.stdout is not None
        assert process.stderr is not None
        stdout, stderr = _Capture("stdout", context.logger), _Capture("stderr", context.logger)
        # Each pump logs from its own thread: give it this task's context (run logger, settings).
        pumps = [
            threading.Thread(
                target=contextvars.copy_context().run, args=(_pump, stream, capture), daemon=True
            )
            for stream, capture in ((process.stdout, stdout), (process.stderr, stderr))
        ]
        for pump in pumps:
            pump.start()
        argv0 = inputs.argv[0]
        # A dedicated thread always reaps the child, even when this task is cancelled first.
        reaped: dict[str, Any] = {}
        reaper = threading.Thread(target=lambda: reaped.update(usage=_reap(process)), daemon=True)
        reaper.start()
        try:
            with anyio.fail_after(inputs.timeout_seconds):
                await anyio.to_thread.run_sync(reaper.join, abandon_on_cancel=True)
        except TimeoutError:
            _kill_group(process)
            limit = f"{inputs.timeout_seconds:g}s"
            raise ActionTimeoutError(f"'{argv0}' timed out after {limit} and was killed") from None
        except BaseException:
            _kill_group(process)  # cancelled: task timeout or run cancelled
            raise
        usage = reaped["usage"]
        for pump in pumps:
            await anyio.to_thread.run_sync(pump.join, PUMP_JOIN_SECONDS, abandon_on_cancel=True)
        context.usage.add_cpu(usage.ru_utime + usage.ru_stime)
        # Linux reports ru_maxrss in KiB, macOS in bytes.
        context.usage.add_memory_peak(usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024)
        code = int(process.returncode)
        if code != 0:
            detail = stderr.last_line() or stdout.last_line()
            raise ShellCommandError(_describe_exit(argv0, code) + (f": {detail}" if detail else ""))
        return {
            "returncode": code,
            "stdout": stdout.text(),
            "stderr": stderr.text(),
        }
