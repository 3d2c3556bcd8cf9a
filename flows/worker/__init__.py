"""The Trinity worker: a Prefect worker type that runs flow runs in long-lived executor processes.

* :mod:`flows.worker.worker` -- ``TrinityWorker`` (Prefect worker type ``trinity``) and its options;
* :mod:`flows.worker.pool` -- the executor processes as the worker sees them (start, hand over,
  replace, report crashes);
* :mod:`flows.worker.executor` -- inside an executor process: many flow runs on one event loop;
* :mod:`flows.worker.runs` -- one flow run through Prefect's engine, cancellable on its own;
* :mod:`flows.worker.cancellation`, :mod:`flows.worker.suspension` -- watching Prefect's event
  stream for runs being cancelled or suspended;
* :mod:`flows.worker.heartbeat` -- flow-run heartbeats, so a run whose process died is found;
* :mod:`flows.worker.reruns` -- rerunning crashed runs as their workflow's ``on_crash`` says;
* :mod:`flows.worker.claims` -- claiming runs, and giving them back when the worker stops;
* :mod:`flows.worker.delivery` -- log lines kept in a bounded buffer while Prefect is away;
* :mod:`flows.worker.tuning` -- Prefect settings that lower CPU per run, with their trade-offs;
* :mod:`flows.worker.prefect_compat` -- the only module that touches Prefect's private surface,
  checked against the installed Prefect's version at import.

Nothing is imported here: Prefect imports :mod:`flows.worker.worker` when it loads collections.
"""
