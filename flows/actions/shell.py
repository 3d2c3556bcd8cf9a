"""``shell``: run a program from an argv list (never through a shell).

stdout and stderr stream into the run's logs line by line while the program runs, and are kept
(up to :data:`MAX_CAPTURE_BYTES` each) for the output ``{returncode, stdout, stderr}``. A non-zero
exit fails the task.

The child runs in its own session. A timeout or a cancelled run stops the whole tree: SIGTERM to
the child's process group and to every descendant (also those that started sessions of their
own), then, after :data:`STOP_GRACE_SECONDS`, SIGKILL to whatever is left -- so a program that
ignores SIGTERM is gone a few seconds later all the same, and the task ends only once it is.

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
import time
from typing import IO, Any

import anyio
import anyio.to_thread
import psutil

from flows.actions.base import ActionContext, ActionError, ActionTimeoutError
from specs.actions import ShellInputs
from trinity.core.redaction import redact_urls

MAX_CAPTURE_BYTES = 1024 * 1024
MAX_LOGGED_LINES = 5_000
# Output pumps may outlive the child when a grandchild keeps the pipe open; wait this long for them.
PUMP_JOIN_SECONDS = 2.0
# Between SIGTERM and SIGKILL when a task is stopped (timeout, cancelled run). Shorter than the
# worker's cancellation grace (30 s), so a cancelled run settles as Cancelled within it.
STOP_GRACE_SECONDS = 10.0


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
            text = redact_urls(line.decode("utf-8", "replace").rstrip("\r\n"))
            self.logger.log(level, "%s: %s", self.name, text)
        elif self.lines == MAX_LOGGED_LINES + 1:
            self.logger.warning("%s: further lines are not logged (kept in the output)", self.name)

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    def last_line(self) -> str:
        lines = self.text().strip().splitlines()
        return redact_urls(lines[-1][:500]) if lines else ""


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


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _signal_tree(pid: int, descendants: list[psutil.Process], signum: int) -> None:
    groups = {pid}
    for process in descendants:
        with contextlib.suppress(psutil.Error, OSError):
            groups.add(os.getpgid(process.pid))
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signum)
    for process in descendants:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signum)


def stop_tree(
    process: subprocess.Popen[bytes], reaper: threading.Thread, grace: float = STOP_GRACE_SECONDS
) -> str:
    """SIGTERM the child's tree; SIGKILL what is left after ``grace`` seconds. Blocks until it is
    gone; returns how it went ("SIGTERM", or "SIGKILL: SIGTERM ignored for {grace}s")."""
    # Found first: once the child is gone its descendants belong to init and cannot be found.
    descendants = _descendants(process.pid)
    _signal_tree(process.pid, descendants, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        # The reaper thread waits for the child; psutil only looks at the others.
        if not reaper.is_alive() and all(_gone(p) for p in descendants):
            return "SIGTERM"
        time.sleep(0.05)
    _signal_tree(process.pid, [*descendants, *_descendants(process.pid)], signal.SIGKILL)
    reaper.join(timeout=5)
    return f"SIGKILL: SIGTERM ignored for {grace:g}s"


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
            how = await anyio.to_thread.run_sync(stop_tree, process, reaper)
            limit = f"{inputs.timeout_seconds:g}s"
            raise ActionTimeoutError(f"'{argv0}' timed out after {limit} and was killed ({how})") from None
        except BaseException:
            # Cancelled (task timeout, run cancelled, worker stopping): the task ends once the
            # program's tree is gone, whatever cancels us meanwhile.
            with anyio.CancelScope(shield=True):
                how = await anyio.to_thread.run_sync(stop_tree, process, reaper)
            context.logger.warning("Task stopped: '%s' and its child processes were killed (%s)", argv0, how)
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
