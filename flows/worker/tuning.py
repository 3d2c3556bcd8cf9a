"""Prefect settings that lower the CPU spent per flow run, each with what it costs.

Two groups: defaults for the Trinity worker's executor processes (applied by the worker, only
where the operator has not set the setting in the environment or the active Prefect profile),
and settings for the Prefect *server*, which Trinity cannot apply from a worker: whoever starts
the server passes them (``server_environment()``), as the throughput benchmark does.
Measured effects are in ``bench/bench_throughput.py``'s report and the worker's docs. Imports
no Prefect at module level: a launcher reads these before Prefect reads its settings.
"""

from __future__ import annotations

import os

# setting -> (value, trade-off)
EXECUTOR_DEFAULTS: dict[str, tuple[str, str]] = {
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": (
        "WARNING",
        "Every run's log lines still go to the Prefect API (the UI shows them all); the worker's "
        "terminal shows warnings and errors only. Rendering a dozen INFO lines per run for a "
        "terminal is a visible share of an executor's CPU at hundreds of runs a minute.",
    ),
    "PREFECT_EVENTS_WORKER_MAX_QUEUE_SIZE": (
        "100000",
        "Events (task-run records, heartbeats) wait in memory while the Prefect API is away and "
        "are sent when it is back; Prefect's default queue is unbounded. Beyond 100,000 waiting "
        "events new ones are dropped, counted and reported (flows.worker.delivery) instead of "
        "growing the executor without limit.",
    ),
}

SERVER_SETTINGS: dict[str, tuple[str, str]] = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": (
        "100",
        "Task runs reach the database from events; the default writes each event (three per "
        "task run) in a transaction of its own. Batches of up to 100 cut the server's CPU per "
        "10-task run by about a third. Cost: with little traffic a task run shows up in the UI "
        "up to the flush interval later, and a server crash loses the unflushed batch (events "
        "in the default in-memory broker are lost in a crash anyway).",
    ),
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": (
        "1",
        "Flush a partial task-run batch every second (default 5) so the batching above delays "
        "the UI by at most a second. Prefect reads it as whole seconds; 1 is the minimum.",
    ),
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": (
        "200",
        "Store events 200 at a time instead of 20: fewer, larger inserts. Cost: the same delay "
        "and crash window as above, for the event feed.",
    ),
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": (
        "1",
        "Flush a partial event batch every second (default 5).",
    ),
    # Live run events (SSE, GraphQL subscriptions, `trinity run --watch`) read the logs websocket.
    "PREFECT_SERVER_LOGS_STREAM_PUBLISHING_ENABLED": (
        "true",
        "Publish each stored log line to the server's message stream. Cost: one message per line.",
    ),
    "PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED": (
        "true",
        "Serve that stream on /api/logs/out, so live run events include log lines as they arrive.",
    ),
}


# Status codes the worker and its executors retry like 503, beyond Prefect's own (429, 502, 503):
# while its database restarts, Prefect's server answers some requests 500 (a connection refused
# that it does not classify as retryable); not retried, that 500 strands a claimed run in Pending
# or crashes a starting one. A retried state proposal is harmless: orchestration answers a repeat
# with the state already set.
RETRY_EXTRA_CODES = {500}


def executor_environment(*, worker_name: str) -> dict[str, str]:
    """Environment variables for an executor: the current Prefect settings, then our defaults."""
    from prefect.settings import get_current_settings

    from flows.worker.prefect_compat import attribution_environment

    env = {
        key: str(value)
        for key, value in get_current_settings().to_environment_variables(exclude_unset=True).items()
        if value is not None
    }
    for key, (value, _trade_off) in EXECUTOR_DEFAULTS.items():
        if key not in env and key not in os.environ:
            env[key] = value
    # Attribution headers on the executor's API requests name the worker, as for process runs.
    env.update(attribution_environment(worker_name))
    return env


def server_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The recommended Prefect server settings that ``environ`` (default: ours) does not set."""
    environ = dict(os.environ) if environ is None else environ
    return {key: value for key, (value, _trade_off) in SERVER_SETTINGS.items() if key not in environ}
