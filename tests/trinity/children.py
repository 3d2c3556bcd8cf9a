"""Small programs that the supervisor and ``trinity up`` tests run as real child processes.

``python -m tests.trinity.children PROGRAM [ARGS]``; :func:`argv` builds that command line and
:func:`env` an environment in which it (and whatever it starts) finds this package.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from trinity.supervisor import ChildSpec, Supervisor, http_ok

ROOT = Path(__file__).resolve().parents[2]
# Not __name__, which is "__main__" in the child processes themselves.
MODULE = "tests.trinity.children"
LONG_SECONDS = 600


def argv(program: str, *args: str) -> list[str]:
    """The command line that runs ``program`` of this module with ``args``."""
    return [sys.executable, "-m", MODULE, program, *args]


def env() -> dict[str, str]:
    """This process's environment, plus the repository on the import path."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def sleep() -> None:
    """Do nothing for a long time."""
    time.sleep(LONG_SECONDS)


def bad_config() -> None:
    """Fail at start the way a misconfigured service does."""
    print("bad config: no secret")
    sys.exit(3)


def failed_step() -> None:
    """Print a line, then fail with a message (a set-up step that went wrong)."""
    print("ok")
    sys.exit("no such workflow")


def flaky(marker: str) -> None:
    """The first time (no ``marker`` file yet): make the file and run; every time after: exit 1 at
    once, as a service with a broken configuration keeps doing."""
    path = Path(marker)
    if path.exists():
        sys.exit(1)
    path.write_text("started once")
    time.sleep(LONG_SECONDS)


def spawn(pid_file: str = "") -> None:
    """Start a grandchild that sleeps; write its pid to ``pid_file`` (else print it); then sleep."""
    grandchild = subprocess.Popen(argv("sleep"), env=env())
    if pid_file:
        Path(pid_file).write_text(str(grandchild.pid))
    else:
        print(grandchild.pid, flush=True)
    time.sleep(LONG_SECONDS)


def fake_up(state_dir: str, port: str) -> None:
    """A stand-in for ``trinity up``: a real supervisor with a web server and a process that starts
    a grandchild, plus the pid and status files; SIGTERM stops it the way ``trinity up`` stops."""
    state, web_port = Path(state_dir), int(port)
    supervisor = Supervisor(state_dir=state, log_dir=state / "logs")
    (state / "up.pid").write_text(str(os.getpid()))

    def stop(signum: int, frame: FrameType | None) -> None:
        supervisor.stop_all()
        (state / "up.pid").unlink()
        (state / "status.json").unlink()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    supervisor.start(
        ChildSpec(
            name="web",
            argv=[sys.executable, "-m", "http.server", str(web_port), "--bind", "127.0.0.1"],
            env=env(),
            health=lambda since: http_ok(f"http://127.0.0.1:{web_port}/"),
            port=web_port,
        )
    )
    grandchild_pid = state / "grandchild.pid"
    supervisor.start(
        ChildSpec(
            name="sleeper",
            argv=argv("spawn", str(grandchild_pid)),
            env=env(),
            health=lambda since: grandchild_pid.exists() and grandchild_pid.read_text() != "",
        )
    )
    supervisor.write_status(state / "status.json", {"prefect_ui": f"http://127.0.0.1:{web_port}"})
    print("ready", flush=True)
    time.sleep(LONG_SECONDS)


PROGRAMS: dict[str, Callable[..., None]] = {
    "sleep": sleep,
    "bad-config": bad_config,
    "failed-step": failed_step,
    "spawn": spawn,
    "flaky": flaky,
    "fake-up": fake_up,
}

if __name__ == "__main__":
    PROGRAMS[sys.argv[1]](*sys.argv[2:])
