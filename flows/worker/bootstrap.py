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


def executor_main(conn: Connection, options: ExecutorOptions) -> None:
    """Run an executor process until the worker stops it (the ``multiprocessing`` target)."""
    # Ctrl-C in a terminal reaches the whole process group; the worker decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(options.env)
    if "prefect" in sys.modules:
        # Something imported Prefect before the settings arrived: read them again.
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    if options.working_dir:
        os.chdir(options.working_dir)

    from flows.worker.executor import Executor

    Executor(conn, options).serve()
