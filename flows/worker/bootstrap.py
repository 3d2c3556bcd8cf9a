"""Entry point of an executor process.

Kept free of Prefect imports: the worker's Prefect settings reach the child as environment
variables, and they must be in ``os.environ`` before Prefect reads its settings.
"""

from __future__ import annotations

import os
import signal
import sys
from multiprocessing.connection import Connection

from flows.worker.protocol import ExecutorOptions


def _leave_to_the_worker(signum: int, frame: object) -> None:
    """Signal handler: do nothing; the worker stops its executors through their pipes."""


def executor_main(conn: Connection, options: ExecutorOptions) -> None:
    """Run an executor process until the worker stops it (the ``multiprocessing`` target)."""
    # Ctrl-C in a terminal, and SIGTERM from a supervisor that stops the whole process group
    # (`trinity up`, systemd), reach the executors too; the worker decides when they stop, so
    # its grace period holds. A handler, not SIG_IGN: an ignored signal would stay ignored in
    # the programs `shell` tasks start, and cancelling those relies on SIGTERM.
    signal.signal(signal.SIGINT, _leave_to_the_worker)
    signal.signal(signal.SIGTERM, _leave_to_the_worker)
    os.environ.update(options.env)
    if "prefect" in sys.modules:
        # Something imported Prefect before the settings arrived: read them again.
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    if options.working_dir:
        os.chdir(options.working_dir)

    from flows.worker.executor import Executor

    Executor(conn, options).serve()
