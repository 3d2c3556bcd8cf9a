"""The worker's side of its executor processes: start them, hand them runs, replace the dead.

Each executor is a ``multiprocessing`` child (``spawn``: a clean interpreter, safe next to the
worker's threads) joined to the worker by a pipe. A thread per executor reads the pipe; when it
closes, the executor is gone, and every run it had is reported Crashed through Prefect's
orchestration (a run that already finished is left alone), re-run if its flow-level retries
allow, and a new executor takes the dead one's place.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import multiprocessing
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.exceptions import Abort, ObjectNotFound
from prefect.logging.loggers import get_logger
from prefect.states import AwaitingRetry, Crashed
from prefect.utilities.engine import propose_state

from flows.worker import protocol
from flows.worker.bootstrap import executor_main

logger = get_logger("trinity.worker.pool")

HOSTNAME = socket.gethostname()


class PoolUnavailableError(RuntimeError):
    """No executor process could take a run (they keep failing to start, or the pool is closing)."""


@dataclass(eq=False)
class ExecutorProcess:
    """One executor process as the worker sees it."""

    index: int
    process: BaseProcess
    conn: Connection
    started_at: float
    pid: int | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    runs: dict[str, Assignment] = field(default_factory=dict)
    retiring: bool = False

    @property
    def alive(self) -> bool:
        return not self.exited.is_set()

    def send(self, message: object) -> None:
        """Send a message; a dead executor's pipe fails quietly (its exit is handled elsewhere)."""
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(message)


@dataclass(eq=False)
class Assignment:
    """A flow run handed to an executor."""

    flow_run_id: UUID
    executor: ExecutorProcess
    accepted: asyncio.Future[None]
    finished: asyncio.Future[protocol.RunFinished]

    @property
    def infrastructure_pid(self) -> str:
        """Where the run executes, as Prefect records it on the flow run: ``host:pid``."""
        return f"{HOSTNAME}:{self.executor.pid or self.executor.process.pid}"


class ExecutorPool:
    """A fixed number of executor processes, each running up to ``concurrency`` flow runs."""

    def __init__(
        self,
        *,
        processes: int,
        concurrency: int,
        env: dict[str, str],
        working_dir: str | None = None,
        cancel_grace_seconds: float = 30.0,
        start_timeout_seconds: float = 120.0,
        on_slot_freed: Callable[[], None] | None = None,
    ) -> None:
        if processes < 1 or concurrency < 1:
            raise ValueError("processes and concurrency must be at least 1")
        self.processes = processes
        self.concurrency = concurrency
        self._env = env
        self._working_dir = working_dir
        self._cancel_grace = cancel_grace_seconds
        self._start_timeout = start_timeout_seconds
        self._context = multiprocessing.get_context("spawn")
        self._on_slot_freed = on_slot_freed
        self._executors: dict[int, ExecutorProcess] = {}
        self._assignments: dict[str, Assignment] = {}
        self._failures: dict[int, int] = {}
        self._changed = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: PrefectClient | None = None

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the executors and wait until at least one is ready."""
        self._loop = asyncio.get_running_loop()
        self._client = get_client()
        await self._client.__aenter__()
        for index in range(self.processes):
            self._spawn(index)
        try:
            await asyncio.wait_for(self._any_ready(), timeout=self._start_timeout)
        except (TimeoutError, PoolUnavailableError):
            await self.close(grace_seconds=0)
            raise PoolUnavailableError("no executor process became ready") from None

    async def close(self, *, grace_seconds: float) -> None:
        """Let runs in progress finish for ``grace_seconds``, stop the executors, crash the rest."""
        self._closing = True
        self._changed.set()
        executors = [e for e in self._executors.values() if e.alive]
        for executor in executors:
            executor.send(protocol.Stop(grace_seconds=grace_seconds))
        waits = [asyncio.ensure_future(e.exited.wait()) for e in executors]
        if waits:
            # The executor needs the grace period plus a moment to record what it stopped.
            _, pending = await asyncio.wait(waits, timeout=grace_seconds + 15)
            for executor in executors:
                if executor.alive:
                    logger.warning("Executor %s did not stop; killing it", executor.process.pid)
                    executor.process.kill()
            if pending:
                await asyncio.wait(pending, timeout=10)
        if self._background:
            await asyncio.wait(set(self._background), timeout=30)
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None

    # -- runs ---------------------------------------------------------------------------------

    async def submit(self, flow_run_id: UUID, start: protocol.StartRun) -> Assignment:
        """Hand a claimed flow run to the least busy executor; return once it has taken it."""
        executor = await asyncio.wait_for(self._choose(), timeout=self._start_timeout)
        loop = asyncio.get_running_loop()
        assignment = Assignment(
            flow_run_id=flow_run_id,
            executor=executor,
            accepted=loop.create_future(),
            finished=loop.create_future(),
        )
        key = str(flow_run_id)
        executor.runs[key] = assignment
        self._assignments[key] = assignment
        executor.send(start)
        # Resolved by RunAccepted, or by the executor's exit if it dies first.
        await asyncio.shield(assignment.accepted)
        return assignment

    def cancel(self, flow_run_id: UUID, reason: str) -> bool:
        """Ask the executor running ``flow_run_id`` to cancel it; False if no executor has it."""
        assignment = self._assignments.get(str(flow_run_id))
        if assignment is None or not assignment.executor.alive:
            return False
        assignment.executor.send(protocol.CancelRun(flow_run_id=str(flow_run_id), reason=reason))
        return True

    def assigned_flow_run_ids(self) -> set[UUID]:
        """Flow runs currently held by an executor."""
        return {a.flow_run_id for a in self._assignments.values()}

    # -- executors ----------------------------------------------------------------------------

    def _spawn(self, index: int) -> None:
        options = protocol.ExecutorOptions(
            index=index,
            concurrency=self.concurrency,
            env=self._env,
            working_dir=self._working_dir,
            cancel_grace_seconds=self._cancel_grace,
        )
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=executor_main,
            args=(child_conn, options),
            name=f"trinity-executor-{index}",
        )
        process.start()
        # Our copy of the child's end must go, or its death would never read as end-of-file.
        child_conn.close()
        executor = ExecutorProcess(
            index=index, process=process, conn=parent_conn, started_at=time.monotonic()
        )
        self._executors[index] = executor
        reader = threading.Thread(
            target=self._read, args=(executor,), name=f"trinity-executor-{index}-reader", daemon=True
        )
        reader.start()
        logger.debug("Started executor %s (pid %s)", index, process.pid)

    def _read(self, executor: ExecutorProcess) -> None:
        """Reader thread: forward messages to the event loop; report the executor's exit."""
        assert self._loop is not None
        while True:
            try:
                message = executor.conn.recv()
            except (EOFError, OSError):
                break
            if not self._call_soon(self._on_message, executor, message):
                return
        executor.process.join()
        self._call_soon(self._on_exit, executor)

    def _call_soon(self, callback: Callable[..., None], *args: Any) -> bool:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the worker is gone
            return False
        return True

    def _on_message(self, executor: ExecutorProcess, message: object) -> None:
        if isinstance(message, protocol.Ready):
            executor.pid = message.pid
            executor.ready.set()
            self._failures.pop(executor.index, None)
            self._changed.set()
        elif isinstance(message, protocol.RunAccepted):
            assignment = executor.runs.get(message.flow_run_id)
            if assignment is not None and not assignment.accepted.done():
                assignment.accepted.set_result(None)
        elif isinstance(message, protocol.RunFinished):
            self._on_finished(executor, message)
        elif isinstance(message, protocol.RunStuck):
            logger.warning(
                "Executor %s has a cancelled flow run that will not stop (%s); replacing the executor",
                executor.pid,
                message.flow_run_id,
            )
            executor.retiring = True
            self._retire_if_idle(executor)

    def _on_finished(self, executor: ExecutorProcess, message: protocol.RunFinished) -> None:
        assignment = executor.runs.pop(message.flow_run_id, None)
        self._assignments.pop(message.flow_run_id, None)
        if assignment is None:
            return
        if message.abandoned:
            reason = "The flow run was stopped because its Trinity executor shut down."
            self._in_background(self._crash(assignment, reason, message))
        else:
            if message.state_type == "CRASHED":
                self._in_background(self._retry_if_allowed(assignment.flow_run_id))
            self._resolve(assignment, message)
        self._retire_if_idle(executor)

    def _on_exit(self, executor: ExecutorProcess) -> None:
        executor.exited.set()
        executor.ready.set()  # release anyone waiting for it to start
        code = executor.process.exitcode
        if self._executors.get(executor.index) is executor:
            del self._executors[executor.index]
        lost = list(executor.runs.values())
        executor.runs.clear()
        for assignment in lost:
            self._assignments.pop(str(assignment.flow_run_id), None)
            reason = (
                "The Trinity executor process running this flow run exited unexpectedly "
                f"({describe_exit(code)})."
            )
            self._in_background(self._crash(assignment, reason, None))
        if lost or not (executor.retiring or self._closing):
            logger.warning(
                "Executor %s exited (%s) with %d run(s)", executor.process.pid, describe_exit(code), len(lost)
            )
        self._changed.set()
        if not self._closing:
            self._replace(executor)

    def _replace(self, executor: ExecutorProcess) -> None:
        failures = self._failures.get(executor.index, 0)
        died_young = not executor.retiring and time.monotonic() - executor.started_at < 10
        self._failures[executor.index] = failures + 1 if died_young else 0
        delay = min(30.0, 2.0**failures) if died_young else 0.0
        assert self._loop is not None
        self._loop.call_later(delay, self._respawn, executor.index)

    def _respawn(self, index: int) -> None:
        if not self._closing and index not in self._executors:
            self._spawn(index)

    def _retire_if_idle(self, executor: ExecutorProcess) -> None:
        if executor.retiring and not executor.runs and executor.alive:
            executor.send(protocol.Stop(grace_seconds=0))
            assert self._loop is not None
            self._loop.call_later(15, _kill_if_alive, executor)

    async def _choose(self) -> ExecutorProcess:
        while True:
            if self._closing:
                raise PoolUnavailableError("the worker is shutting down")
            ready = [e for e in self._executors.values() if e.alive and e.ready.is_set() and not e.retiring]
            if ready:
                return min(ready, key=lambda e: len(e.runs))
            self._changed.clear()
            await self._changed.wait()

    async def _any_ready(self) -> None:
        while not any(e.ready.is_set() and e.alive for e in self._executors.values()):
            self._changed.clear()
            await self._changed.wait()

    # -- outcomes -----------------------------------------------------------------------------

    def _resolve(self, assignment: Assignment, message: protocol.RunFinished) -> None:
        if not assignment.accepted.done():
            assignment.accepted.set_result(None)
        if not assignment.finished.done():
            assignment.finished.set_result(message)
        if self._on_slot_freed is not None:
            self._on_slot_freed()

    def _in_background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _crash(self, assignment: Assignment, reason: str, message: protocol.RunFinished | None) -> None:
        """Report a run its executor could not finish as Crashed, then maybe re-run it."""
        assert self._client is not None
        state_type = "CRASHED"
        try:
            state = await propose_state(
                self._client, Crashed(message=reason), flow_run_id=assignment.flow_run_id
            )
            state_type = state.type.value
            logger.info("Reported flow run %s as crashed: %s", assignment.flow_run_id, reason)
        except Abort:
            state_type = message.state_type if message and message.state_type else "UNKNOWN"
        except ObjectNotFound:
            state_type = "UNKNOWN"
        except Exception:
            logger.exception("Could not report flow run %s as crashed", assignment.flow_run_id)
        await self._retry_if_allowed(assignment.flow_run_id)
        self._resolve(
            assignment,
            protocol.RunFinished(
                flow_run_id=str(assignment.flow_run_id), state_type=state_type, detail=reason
            ),
        )

    async def _retry_if_allowed(self, flow_run_id: UUID) -> None:
        """Schedule a crashed run again when its flow-level retries are not used up."""
        assert self._client is not None
        try:
            flow_run = await self._client.read_flow_run(flow_run_id)
            state = flow_run.state
            policy = flow_run.empirical_policy
            retries = policy.retries or 0
            if state is None or not state.is_crashed() or flow_run.deployment_id is None:
                return
            if retries < 1 or flow_run.run_count > retries:
                return
            delay = float(policy.retry_delay or 0)
            when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delay)
            message = f"Crashed; retry {max(flow_run.run_count, 1)} of {retries} (flow-level retries)."
            await propose_state(
                self._client, AwaitingRetry(scheduled_time=when, message=message), flow_run_id=flow_run_id
            )
            logger.info("Scheduled crashed flow run %s to run again", flow_run_id)
        except Abort:
            return
        except Exception:
            logger.exception("Could not schedule crashed flow run %s again", flow_run_id)


def describe_exit(code: int | None) -> str:
    """Say how a process ended: ``exit code 1``, ``killed by SIGKILL``."""
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _kill_if_alive(executor: ExecutorProcess) -> None:
    if executor.alive and executor.process.is_alive():
        executor.process.kill()
