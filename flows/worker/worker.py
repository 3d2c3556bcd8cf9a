"""The Trinity worker: a Prefect worker type that runs flow runs in long-lived executor processes.

It is an ordinary Prefect worker (``BaseWorker``): it polls its work pool, claims each run by
proposing Pending -- Prefect's orchestration lets exactly one worker win that proposal, so
several workers on several hosts can share a pool -- heartbeats, and answers cancellation of
runs that have not started. Where a ``process`` worker starts a Python process per flow run
(about 1.7 s of importing Prefect each), this one hands the run to one of a few executor
processes that stay up and run many flow runs at once (:mod:`flows.worker.executor`).

Registered with Prefect as worker type ``trinity`` through the ``prefect.collections`` entry
point, so ``prefect worker start --type trinity`` works too; this module is imported whenever
Prefect loads collections, so it imports only what Prefect's worker module already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio
import anyio.abc
from prefect.exceptions import InfrastructureNotAvailable, InfrastructureNotFound, ObjectNotFound
from prefect.settings import get_current_settings
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorkerResult
from pydantic import PrivateAttr

from flows.worker.heartbeat import PREFECT_HEARTBEAT_VARIABLE, deliver_queued_heartbeats
from flows.worker.prefect_compat import SlotAwareWorker

if TYPE_CHECKING:
    from prefect.client.schemas.objects import Flow as APIFlow
    from prefect.client.schemas.objects import FlowRun, WorkPool
    from prefect.client.schemas.responses import DeploymentResponse, WorkerFlowRunResponse

    from flows.worker.claims import LateClaims
    from flows.worker.heartbeat import HeartbeatSender
    from flows.worker.pool import ExecutorPool

WORKER_TYPE = "trinity"


@dataclass(frozen=True)
class WorkerOptions:
    """How a Trinity worker runs its flow runs. Defaults come from ``TRINITY_WORKER_*`` variables."""

    processes: int = 2
    concurrency: int = 16
    # How often an idle worker asks for new runs; a worker with free slots asks again as soon as
    # a run finishes, so this is the pick-up latency when the pool has been empty.
    poll_seconds: float = 1.0
    # A busy worker (fewer than a quarter of its slots free) polls at most this often, unless a
    # quarter of its slots free up first: each poll costs the server about as much as a state
    # change, so one poll should claim several runs.
    claim_wait_seconds: float = 2.0
    # On shutdown, runs in progress get this long to finish before their executors are stopped.
    shutdown_grace_seconds: float = 30.0
    # A cancelled run that has not stopped after this long gets its executor replaced.
    cancel_grace_seconds: float = 30.0

    @classmethod
    def from_env(cls, **overrides: Any) -> WorkerOptions:
        """Options from ``TRINITY_WORKER_PROCESSES`` etc., then ``overrides`` that are not None."""
        values: dict[str, Any] = {}
        for name, kind in (
            ("processes", int),
            ("concurrency", int),
            ("poll_seconds", float),
            ("claim_wait_seconds", float),
            ("shutdown_grace_seconds", float),
            ("cancel_grace_seconds", float),
        ):
            variable = f"TRINITY_WORKER_{name.upper()}"
            raw = os.environ.get(variable)
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise ValueError(f"{variable} must be a number, got {raw!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        options = cls(**values)
        options.check()
        return options

    def check(self) -> None:
        """Raise ValueError, naming the option, for a value out of range."""
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1, got {self.processes}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.poll_seconds < 0.05:
            raise ValueError(f"poll seconds must be at least 0.05, got {self.poll_seconds:g}")
        for name in ("claim_wait_seconds", "shutdown_grace_seconds", "cancel_grace_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name.replace('_', ' ')} must not be negative, got {getattr(self, name):g}"
                )


class TrinityJobConfiguration(BaseJobConfiguration):
    """Job configuration of a Trinity run. Its executor process is shared, so per-run ``env``
    job variables cannot be applied; they are reported in the run's logs."""

    _job_env: dict[str, str] = PrivateAttr(default_factory=dict)
    _deployment: DeploymentResponse | None = PrivateAttr(default=None)

    def prepare_for_flow_run(
        self,
        flow_run: FlowRun,
        deployment: DeploymentResponse | None = None,
        flow: APIFlow | None = None,
        work_pool: WorkPool | None = None,
        worker_name: str | None = None,
        worker_id: UUID | None = None,
    ) -> None:
        # Before the base class merges in the worker's own environment. The heartbeat frequency
        # every Trinity deployment sets is met here by the executors' own heartbeats.
        self._job_env = {
            k: v for k, v in self.env.items() if v is not None and k != PREFECT_HEARTBEAT_VARIABLE
        }
        self._deployment = deployment
        super().prepare_for_flow_run(flow_run, deployment, flow, work_pool, worker_name, worker_id=worker_id)

    @property
    def job_env(self) -> dict[str, str]:
        """Environment variables the deployment or flow run asked for."""
        return dict(self._job_env)

    @property
    def deployment(self) -> DeploymentResponse | None:
        """The flow run's deployment, as read when the run was claimed."""
        return self._deployment


class TrinityVariables(BaseVariables):
    """Job variables of the Trinity work-pool type (the base set: name, env, labels, command)."""


class TrinityWorkerResult(BaseWorkerResult):
    """Outcome of one flow run on a Trinity worker."""


class TrinityWorker(SlotAwareWorker[TrinityJobConfiguration, TrinityVariables, TrinityWorkerResult]):
    """Runs flow runs concurrently in a few long-lived executor processes."""

    type = WORKER_TYPE
    job_configuration = TrinityJobConfiguration
    job_configuration_variables = TrinityVariables
    _description = (
        "Runs flow runs concurrently inside a few long-lived executor processes: no Python "
        "start-up per run, crash isolation per process."
    )

    def __init__(
        self,
        work_pool_name: str,
        work_queues: list[str] | None = None,
        name: str | None = None,
        prefetch_seconds: float | None = None,
        create_pool_if_not_found: bool = True,
        limit: int | None = None,
        heartbeat_interval_seconds: int | None = None,
        *,
        base_job_template: dict[str, Any] | None = None,
        options: WorkerOptions | None = None,
    ) -> None:
        options = options or WorkerOptions.from_env()
        if limit is not None:
            # `prefect worker start --limit N` sets the total; spread it over the processes.
            options = dataclasses.replace(options, concurrency=max(1, math.ceil(limit / options.processes)))
        self.options = options
        super().__init__(
            work_pool_name=work_pool_name,
            work_queues=work_queues,
            name=name,
            prefetch_seconds=prefetch_seconds,
            create_pool_if_not_found=create_pool_if_not_found,
            limit=limit if limit is not None else options.processes * options.concurrency,
            heartbeat_interval_seconds=heartbeat_interval_seconds,
            base_job_template=base_job_template,
        )
        self._pool: ExecutorPool | None = None
        self._services: list[asyncio.Task[None]] = []
        self._poll_wanted = asyncio.Event()
        self._run_once = False
        self._warned_env: set[UUID] = set()
        self._stopping = False
        self._heartbeats: HeartbeatSender | None = None
        self._late_claims: LateClaims | None = None

    @property
    def pool(self) -> ExecutorPool:
        """The executor processes (available inside ``async with worker``)."""
        if self._pool is None:
            raise RuntimeError("The worker is not started; use it as an async context manager.")
        return self._pool

    async def start(
        self, run_once: bool = False, with_healthcheck: bool = False, printer: Any = print
    ) -> None:
        """Start polling and running flow runs (see ``BaseWorker.start``)."""
        self._run_once = run_once
        await super().start(run_once=run_once, with_healthcheck=with_healthcheck, printer=printer)

    @property
    def heartbeats(self) -> HeartbeatSender:
        """Heartbeats of the runs claimed and not yet taken by an executor."""
        if self._heartbeats is None:
            raise RuntimeError("The worker is not started; use it as an async context manager.")
        return self._heartbeats

    @property
    def late_claims(self) -> LateClaims:
        """Claims this worker gave up on, watched so that one landing late is undone."""
        if self._late_claims is None:
            raise RuntimeError("The worker is not started; use it as an async context manager.")
        return self._late_claims

    async def __aenter__(self) -> TrinityWorker:
        from flows.worker.claims import LateClaims
        from flows.worker.heartbeat import HeartbeatSender
        from flows.worker.pool import ExecutorPool
        from flows.worker.tuning import executor_environment

        self._pool = ExecutorPool(
            processes=self.options.processes,
            concurrency=self.options.concurrency,
            env=executor_environment(worker_name=self.name),
            cancel_grace_seconds=self.options.cancel_grace_seconds,
            on_slot_freed=self._poll_wanted.set,
        )
        await self._pool.start()
        self._heartbeats = HeartbeatSender().start()
        try:
            await super().__aenter__()
        except BaseException:
            self._heartbeats.stop()
            await self._pool.close(grace_seconds=0)
            raise
        self._late_claims = LateClaims(self.client, worker_name=self.name)
        self._services = [
            asyncio.ensure_future(self._late_claims.run()),
            asyncio.ensure_future(self._poll_when_free()),
            asyncio.ensure_future(self._watch()),
            asyncio.ensure_future(self._rerun_crashed()),
        ]
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        for task in self._services:
            task.cancel()
        await asyncio.gather(*self._services, return_exceptions=True)
        try:
            await super().__aexit__(*exc_info)
        finally:
            if self._pool is not None:
                await self._pool.close(grace_seconds=self.options.shutdown_grace_seconds)
            if self._heartbeats is not None:
                self._heartbeats.stop()

    async def stop_gracefully(self) -> None:
        """Stop claiming runs; give the runs in progress the grace period; hand back the rest.

        Runs that were claimed but not started (waiting for an executor, or handed to one that
        had not begun them) go back to the pool ``Scheduled``; runs still going when the grace
        period ends are stopped and recorded ``Crashed`` (and rerun if their workflow says so).
        """
        if self._stopping:
            return
        self._stopping = True
        grace = self.options.shutdown_grace_seconds
        held = len(self.pool.assigned_flow_run_ids())
        self._logger.warning(
            "Worker %r stopping: claiming no new runs; the %d run(s) it holds get up to %gs to finish, "
            "those not yet started go back to the pool",
            self.name,
            held,
            grace,
        )
        # The runs the executors will hand back must get no heartbeat from here after that.
        self.heartbeats.clear()
        await asyncio.to_thread(deliver_queued_heartbeats)
        await self.pool.close(grace_seconds=grace)
        self._logger.warning("Worker %r stopped: every run it held has left it", self.name)

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        """Claim and start scheduled runs, unless the worker is stopping."""
        if self._stopping:
            return []
        return await super().get_and_submit_flow_runs()

    async def run(
        self,
        flow_run: FlowRun,
        configuration: TrinityJobConfiguration,
        task_status: anyio.abc.TaskStatus[Any] | None = None,
    ) -> TrinityWorkerResult:
        """Hand the claimed flow run to an executor and wait until it leaves it."""
        from flows.worker.claims import hand_back
        from flows.worker.pool import PoolUnavailableError
        from flows.worker.protocol import StartRun

        deployment = configuration.deployment
        if configuration.job_env:
            self._warn_env_ignored(flow_run, configuration)
        start = StartRun(
            flow_run_id=str(flow_run.id),
            deployment_id=str(deployment.id) if deployment else None,
            # No update time, no version to tell apart: the flow is loaded afresh.
            deployment_version_key=f"{deployment.id}:{deployment.updated.isoformat()}"
            if deployment and deployment.updated
            else None,
        )
        try:
            assignment = await self.pool.submit(flow_run.id, start)
        except PoolUnavailableError:
            if not self._stopping:
                raise
            # Claimed while the worker was stopping, never started: back to the pool, its
            # heartbeats ended and sent first.
            self.heartbeats.discard(flow_run.id)
            await asyncio.to_thread(deliver_queued_heartbeats)
            await hand_back(self.client, flow_run.id, worker_name=self.name)
            if task_status is not None:
                task_status.started("")
            return TrinityWorkerResult(status_code=0, identifier="")
        if task_status is not None:
            task_status.started(assignment.infrastructure_pid)
        outcome = await assignment.finished
        self.worker_logger.debug("Flow run %s left its executor: %s", flow_run.id, outcome)
        # Crashes are reported by the pool itself (it knows how the executor ended); a non-zero
        # code here would make the base class report them a second time.
        return TrinityWorkerResult(status_code=0, identifier=assignment.infrastructure_pid)

    async def claim_run(self, flow_run: FlowRun) -> bool:
        """Claim the run (:func:`flows.worker.claims.claim`); once claimed, its heartbeats start:
        should this process die before an executor has the run, the run is found (and marked
        Crashed) instead of staying Pending."""
        from flows.worker.claims import claim

        claimed = await claim(self.client, flow_run, late=self.late_claims)
        if claimed:
            self.heartbeats.add(flow_run)
        return claimed

    def submission_ended(self, flow_run: FlowRun) -> None:
        """The run's executor has it (and sends its heartbeats from now on), or it was not started."""
        self.heartbeats.discard(flow_run.id)

    async def kill_infrastructure(
        self,
        infrastructure_pid: str,
        configuration: TrinityJobConfiguration,
        grace_seconds: int = 30,
    ) -> None:
        """Stop a flow run that is cancelled before it started (called by ``BaseWorker``)."""
        from flows.worker.pool import HOSTNAME

        host, _, _ = infrastructure_pid.rpartition(":")
        if host and host != HOSTNAME:
            raise InfrastructureNotAvailable(f"The flow run is on host {host!r}, not on {HOSTNAME!r}.")
        flow_run_id = configuration.labels.get("prefect.io/flow-run-id")
        if not flow_run_id or not self.pool.cancel(UUID(flow_run_id), "Flow run was cancelled."):
            raise InfrastructureNotFound(f"No executor of this worker holds flow run {flow_run_id}.")

    async def scheduled_flow_runs(self) -> list[WorkerFlowRunResponse]:
        """Ask only for as many runs as there are free slots, and not at all when full.

        The base class asks for every scheduled run (up to the server's page size) on each
        poll and then claims what fits; with a backlog that is a page of runs serialized by
        the server for nothing, on every poll of every worker.
        """
        from prefect.client.schemas.responses import WorkerFlowRunResponse

        free = self.free_slots if self.free_slots is not None else 100
        if free < 1:
            return []
        scheduled_before = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
            seconds=int(self.prefetch_seconds)
        )
        body: dict[str, Any] = {"scheduled_before": scheduled_before.isoformat(), "limit": free}
        if self.work_queue_names:
            body["work_queue_names"] = self.work_queue_names
        try:
            response = await self.client.request(
                "POST",
                "/work_pools/{name}/get_scheduled_flow_runs",
                path_params={"name": self.work_pool_name},
                json=body,
            )
        except ObjectNotFound:
            return []
        return WorkerFlowRunResponse.model_validate_list(response.json())

    async def _poll_when_free(self) -> None:
        """Poll every ``poll_seconds`` while a quarter of the slots or more are free, and as soon
        as that many free up; with fewer free, at most every ``claim_wait_seconds``."""
        loop = asyncio.get_running_loop()
        batch = max(1, math.ceil((self.slot_limit or 1) / 4))
        last_poll = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poll_wanted.wait(), timeout=self.options.poll_seconds)
            self._poll_wanted.clear()
            if self._run_once or not self.is_setup:
                continue
            free = self.free_slots if self.free_slots is not None else batch
            waited = loop.time() - last_poll
            if free < 1 or (free < batch and waited < self.options.claim_wait_seconds):
                continue
            last_poll = loop.time()
            try:
                await self.get_and_submit_flow_runs()
            except Exception:
                self.worker_logger.warning("Polling for flow runs failed", exc_info=True)
                await asyncio.sleep(self.options.poll_seconds)

    async def _watch(self) -> None:
        from flows.worker.cancellation import CancellationWatcher

        watcher = CancellationWatcher(
            held=self.pool.assigned_flow_run_ids,
            on_cancelling=lambda flow_run_id: self.pool.cancel(flow_run_id, "Flow run was cancelled."),
            poll_seconds=get_current_settings().worker.cancellation_poll_seconds,
        )
        await watcher.run()

    async def _rerun_crashed(self) -> None:
        from flows.worker.reruns import CrashWatcher

        await CrashWatcher(poll_seconds=get_current_settings().worker.cancellation_poll_seconds).run()

    def _warn_env_ignored(self, flow_run: FlowRun, configuration: TrinityJobConfiguration) -> None:
        deployment_id = flow_run.deployment_id
        if deployment_id is None or deployment_id in self._warned_env:
            return
        self._warned_env.add(deployment_id)
        self.get_flow_run_logger(flow_run).warning(
            "The Trinity worker runs flow runs in shared processes and does not apply the 'env' "
            "job variables %s; set them in the worker's environment instead.",
            sorted(configuration.job_env),
        )
