"""The executor process: many flow runs at once in one long-lived Python process.

The worker starts a few of these and hands each claimed flow run to one of them. An executor
imports Prefect once, keeps one API client (one connection pool) for all its runs, loads each
deployment's flow once per deployment version, and runs every flow run with Prefect's own
engine (:mod:`flows.worker.runs`): async flows as tasks on one event loop, sync flows each in
a thread of its own.

Threads: the main thread only reads the worker's pipe; the event loop runs in a second thread.
Keeping the loop off the main thread means Prefect's engine does not install its SIGTERM
handler here. SIGTERM and SIGINT are left to the worker (:mod:`flows.worker.bootstrap`): it
stops its executors through their pipes, runs in progress first, within its grace period.
One thread sends the heartbeats of every run held (:mod:`flows.worker.heartbeat`).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import os
import threading
from collections import OrderedDict
from multiprocessing.connection import Connection
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, State
from prefect.client.schemas.responses import OrchestrationResult
from prefect.context import AsyncClientContext, SyncClientContext
from prefect.exceptions import Abort, Pause
from prefect.flows import Flow, load_flow_from_flow_run
from prefect.logging.loggers import flow_run_logger, get_logger
from prefect.states import Cancelled, Crashed, Failed
from prefect.utilities.engine import propose_state

from flows.entry import check_pull_steps
from flows.worker import delivery
from flows.worker.claims import hand_back
from flows.worker.heartbeat import HeartbeatSender, deliver_queued_heartbeats
from flows.worker.protocol import (
    CancelRun,
    ExecutorOptions,
    Ready,
    RunAccepted,
    RunFinished,
    RunStuck,
    StartRun,
    Stop,
)
from flows.worker.runs import (
    RunCancelled,
    RunControl,
    run_async_flow,
    run_sync_flow,
    uncancel_current_task,
)
from flows.worker.suspension import SuspensionWatch, current_watch
from trinity.core.redaction import redact_held
from trinity.core.signing import DefinitionRefusedError

logger = get_logger("trinity.worker.executor")

# Seconds the runs still going after the shutdown grace get to record their Crashed state.
_CRASH_REPORT_SECONDS = 10.0


class FlowCache:
    """Flows loaded from deployments, one per deployment version, least recently used dropped."""

    def __init__(self, client: PrefectClient, size: int = 128) -> None:
        self._client = client
        self._size = size
        self._flows: OrderedDict[str, Flow[..., Any]] = OrderedDict()
        # Loading may run pull steps and change the working directory: one load at a time.
        self._lock = asyncio.Lock()

    async def get(self, flow_run: FlowRun, key: str | None) -> Flow[..., Any]:
        """The flow of ``flow_run``'s deployment; ``key`` names the deployment version."""
        if key is not None and key in self._flows:
            self._flows.move_to_end(key)
            return self._flows[key]
        async with self._lock:
            if key is not None and key in self._flows:
                return self._flows[key]
            if flow_run.deployment_id is not None:
                deployment = await self._client.read_deployment(flow_run.deployment_id)
                check_pull_steps(deployment)
            flow = await load_flow_from_flow_run(flow_run, use_placeholder_flow=False)
            if key is not None:
                self._flows[key] = flow
                while len(self._flows) > self._size:
                    self._flows.popitem(last=False)
            return flow


class Executor:
    """Runs the flow runs the worker sends, until told to stop."""

    def __init__(self, conn: Connection, options: ExecutorOptions) -> None:
        self._conn = conn
        self._options = options
        self._send_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_ready = threading.Event()
        self._runs: dict[str, RunControl] = {}
        self._reported: set[str] = set()
        self._grace = math.inf
        self._stop_requested: asyncio.Event | None = None
        self._client: PrefectClient | None = None
        self._flows: FlowCache | None = None
        self._context = contextvars.Context()
        self._heartbeats = HeartbeatSender()

    def serve(self) -> None:
        """Read the worker's messages until it says stop (or goes away), then wait for the loop."""
        thread = threading.Thread(target=self._run_loop, name="trinity-executor-loop", daemon=True)
        thread.start()
        self._loop_ready.wait()
        if self._stop_requested is None or self._loop is None:
            raise SystemExit(1)
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                # The worker is gone: finish the runs in progress, then exit.
                message = Stop(grace_seconds=math.inf)
            self._loop.call_soon_threadsafe(self._dispatch, message)
            if isinstance(message, Stop):
                break
        thread.join()

    def _run_loop(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException:
            logger.exception("Executor %s failed", self._options.index)
        finally:
            self._loop_ready.set()

    async def _main(self) -> None:
        # Every run shares these two clients: the engine finds them in the context instead of
        # opening clients per run. Opening one costs a connection pool and, for each sync
        # client Prefect opens to look up the server's default result storage (twice a run),
        # loading the CA bundle: a quarter of an executor's CPU before they were shared.
        delivery.install()  # log lines wait in a bounded buffer while Prefect is away
        with SyncClientContext():
            await self._serve_runs()

    async def _serve_runs(self) -> None:
        async with AsyncClientContext() as client_context:
            self._client = client_context.client
            self._flows = FlowCache(self._client)
            watch = SuspensionWatch(self._client)
            current_watch.set(watch)
            watcher = asyncio.create_task(watch.run())
            # Runs start from callbacks posted by the reader thread, which carry that thread's
            # context; each run gets a copy of this one instead.
            self._context = contextvars.copy_context()
            self._stop_requested = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            self._loop_ready.set()
            self._heartbeats.start()
            self._send(Ready(pid=os.getpid()))
            try:
                await self._stop_requested.wait()
                await self._drain()
            finally:
                watcher.cancel()
                self._heartbeats.stop()

    def _send(self, message: object) -> None:
        with self._send_lock:
            try:
                self._conn.send(message)
            except (OSError, ValueError):
                logger.debug("Worker pipe closed; dropped %r", message)

    def _dispatch(self, message: object) -> None:
        if isinstance(message, StartRun):
            control = RunControl(flow_run_id=UUID(message.flow_run_id))
            self._runs[message.flow_run_id] = control
            control.task = asyncio.get_running_loop().create_task(
                self._execute(message, control), context=self._context.copy()
            )
        elif isinstance(message, CancelRun):
            self._cancel(message)
        elif isinstance(message, Stop):
            self._grace = message.grace_seconds
            assert self._stop_requested is not None
            self._stop_requested.set()

    def _cancel(self, message: CancelRun) -> None:
        control = self._runs.get(message.flow_run_id)
        if control is None or control.cancel_requested:
            return
        control.request_cancel(message.reason)
        loop = asyncio.get_running_loop()
        loop.call_later(self._options.cancel_grace_seconds, self._check_stopped, control)

    def _check_stopped(self, control: RunControl) -> None:
        key = str(control.flow_run_id)
        if key in self._runs and key not in self._reported:
            asyncio.get_running_loop().create_task(self._give_up(control))

    async def _give_up(self, control: RunControl) -> None:
        """A cancelled run would not stop: record it Cancelled and ask to be replaced."""
        key = str(control.flow_run_id)
        message = f"{control.reason} The run did not stop within {self._options.cancel_grace_seconds:g}s."
        state = await self._settle_cancelled(control.flow_run_id, message)
        self._report(key, state, detail="did not stop after cancellation")
        self._send(RunStuck(flow_run_id=key))

    async def _execute(self, start: StartRun, control: RunControl) -> None:
        key = start.flow_run_id
        self._send(RunAccepted(flow_run_id=key))
        state: State | None = None
        detail: str | None = None
        abandoned = False
        try:
            state, detail = await self._run(start, control)
        except (asyncio.CancelledError, RunCancelled):
            uncancel_current_task()
            if control.cancel_requested:
                state = await self._settle_cancelled(control.flow_run_id, control.reason)
            else:
                abandoned = True
        except (Abort, Pause) as exc:
            # Orchestration said no (the run was cancelled, paused or taken elsewhere).
            detail = f"orchestration: {exc}"
        except DefinitionRefusedError as exc:
            # Refused before the flow was built: no task ran. A failure of the run, not a crash
            # of the executor, and one line says why.
            detail = str(exc)
            state = await self._end(control.flow_run_id, Failed(message=detail), detail)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if control.cancel_requested:
                # The cancellation, surfacing as another error from code it interrupted.
                state = await self._settle_cancelled(control.flow_run_id, control.reason)
            else:
                state = await self._crash(control.flow_run_id, exc)
        finally:
            self._runs.pop(key, None)
            self._heartbeats.discard(key)
        if key not in self._reported:
            if state is None:
                state = await self._read_state(control.flow_run_id)
            self._report(key, state, detail, abandoned=abandoned)

    async def _run(self, start: StartRun, control: RunControl) -> tuple[State | None, str | None]:
        assert self._client is not None
        assert self._flows is not None
        # Read afresh: a run cancelled while it was being handed over must not start (Prefect
        # accepts Running after Cancelled), and the engine wants the current record anyway.
        flow_run = await self._client.read_flow_run(control.flow_run_id)
        current = flow_run.state
        if current is not None and current.is_cancelling():
            message = "Flow run was cancelled before it started."
            return await self._settle_cancelled(flow_run.id, message), None
        if current is None or not current.is_pending():
            # Only a run a worker has moved to Pending is to be started.
            return current, "not pending"
        self._heartbeats.add(flow_run)
        flow = await self._flows.get(flow_run, start.deployment_version_key)
        if self._stop_requested is not None and self._stop_requested.is_set():
            # The worker is stopping: a run that has not started goes back to the pool, its
            # heartbeats ended and sent first (one arriving after the hand-back would get the
            # handed-back run marked Crashed).
            self._heartbeats.discard(flow_run.id)
            await asyncio.to_thread(deliver_queued_heartbeats)
            return await hand_back(self._client, flow_run.id), "handed back"
        if flow.isasync:
            state = await run_async_flow(flow, flow_run, control)
        else:
            state = await self._run_in_thread(flow, flow_run, control)
        if state is not None and state.is_cancelling():
            # Cancelled just as it started: the engine stopped, the run is ours to settle.
            state = await self._settle_cancelled(flow_run.id, "Flow run was cancelled.")
        return state, None

    async def _run_in_thread(
        self, flow: Flow[..., Any], flow_run: FlowRun, control: RunControl
    ) -> State | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[State | None] = loop.create_future()
        context = contextvars.copy_context()

        def deliver(result: State | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def target() -> None:
            try:
                result = context.run(run_sync_flow, flow, flow_run, control)
            except BaseException as exc:
                loop.call_soon_threadsafe(deliver, None, exc)
            else:
                loop.call_soon_threadsafe(deliver, result, None)

        name = f"flow-run-{flow_run.id}"
        threading.Thread(target=target, name=name, daemon=True).start()
        return await future

    def _report(self, key: str, state: State | None, detail: str | None, *, abandoned: bool = False) -> None:
        self._reported.add(key)
        self._runs.pop(key, None)
        self._send(
            RunFinished(
                flow_run_id=key,
                state_type=state.type.value if state is not None else None,
                state_name=state.name if state is not None else None,
                detail=redact_held(detail) if detail else detail,  # the worker logs it
                abandoned=abandoned,
            )
        )
        # Reports are only looked up while a run is in progress; keep the set small.
        if len(self._reported) > 10_000:
            self._reported = {k for k in self._reported if k in self._runs}

    async def _read_state(self, flow_run_id: UUID) -> State | None:
        assert self._client is not None
        try:
            return (await self._client.read_flow_run(flow_run_id)).state
        except Exception:
            logger.debug("Could not read flow run %s", flow_run_id, exc_info=True)
            return None

    async def _settle_cancelled(self, flow_run_id: UUID, message: str) -> State | None:
        """Make a cancelled run end Cancelled, unless it already finished some other way."""
        assert self._client is not None
        state = await self._read_state(flow_run_id)
        if state is not None and state.is_final() and not state.is_crashed():
            return state
        try:
            result: OrchestrationResult[Any] = await self._client.set_flow_run_state(
                flow_run_id, Cancelled(message=message), force=True
            )
        except Exception:
            logger.exception("Could not mark flow run %s Cancelled", flow_run_id)
            return state
        return result.state or state

    async def _crash(self, flow_run_id: UUID, exc: BaseException) -> State | None:
        """Record that the executor could not run the flow run (it never reached the engine)."""
        reason = redact_held(f"{type(exc).__name__}: {exc}")
        message = f"The Trinity executor could not run this flow run: {reason}"
        return await self._end(flow_run_id, Crashed(message=message), message, exc_info=exc)

    async def _end(
        self, flow_run_id: UUID, state: State, message: str, *, exc_info: BaseException | None = None
    ) -> State | None:
        """Log ``message`` in the flow run's log and propose ``state`` for a run that never started."""
        assert self._client is not None
        try:
            flow_run = await self._client.read_flow_run(flow_run_id)
            flow_run_logger(flow_run).error(message, exc_info=exc_info)
            return await propose_state(self._client, state, flow_run_id=flow_run_id)
        except Abort:
            return await self._read_state(flow_run_id)
        except Exception:
            logger.exception("Could not mark flow run %s %s", flow_run_id, state.name)
            return None

    async def _drain(self) -> None:
        """Let the runs in progress finish within the grace period; crash the rest."""
        tasks = {control.task for control in self._runs.values() if control.task is not None}
        if not tasks:
            return
        timeout = None if math.isinf(self._grace) else self._grace
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            logger.warning("Stopping %d flow run(s) still running after %gs", len(pending), self._grace)
            for task in pending:
                # Not a cancel request: the engine records these runs Crashed.
                task.cancel()
            await asyncio.wait(pending, timeout=_CRASH_REPORT_SECONDS)
