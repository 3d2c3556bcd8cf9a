"""Pins every behaviour of Prefect's private surface that ``flows.worker.prefect_compat`` relies on.

Each test fails when the installed Prefect stops behaving as the worker assumes: a Prefect upgrade
starts here. Flow runs go to a real Prefect server; nothing of Prefect is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
import uuid
import warnings
from typing import Any

import prefect
import pytest
from prefect._flow_run_suspension import (
    FlowRunSuspensionRequest,
    mark_flow_run_suspension_requested,
    register_flow_run_suspension_request,
)
from prefect._internal.concurrency.cancellation import CancelledError as PrefectCancelledError
from prefect.client.attribution import get_attribution_headers
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import FlowRun, State
from prefect.events.worker import EventsWorker
from prefect.exceptions import Pause
from prefect.flow_engine import (
    AsyncFlowRunEngine,
    BaseFlowRunEngine,
    FlowRunEngine,
    run_generator_flow_async,
    run_generator_flow_sync,
)
from prefect.flow_runs import asuspend_flow_run
from prefect.states import Completed, Paused, Running, Suspended
from prefect.utilities.timeout import timeout
from prefect.workers.base import BaseWorker

from flows.worker import prefect_compat
from flows.worker.prefect_compat import (
    SUPPORTED_PREFECT,
    ExecutorFlowRunEngine,
    RunCancelled,
    SuspensionNotice,
    ThreadInterrupt,
    UnsupportedPrefectError,
    attribution_environment,
    check_prefect_version,
    run_async_flow_run,
)
from flows.worker.suspension import SuspensionWatch
from tests.flows.worker.compat_flows import (
    CANCELLED_HOOKS,
    INTERRUPTS,
    SEEN,
    RecordingWatcher,
    async_ticker,
    converting_flow,
    final_state,
    run_in_a_thread,
    state_names,
    sync_ticker,
    watched,
)
from tests.flows.worker.support import REPO, ClaimProbe, RefusingClaimProbe, pending_deployment_run
from tests.support.servers import PrefectServer

# -- the version check -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [prefect.__version__, "3.8.8", "3.8.12", "3.8.9rc1"])
def test_versions_of_the_supported_line_pass(version: str) -> None:
    check_prefect_version(version)


@pytest.mark.parametrize("version", ["3.9.0", "3.8.7", "3.7.12", "4.0.0", "2.20.3", "3.8", "nightly"])
def test_other_versions_fail_with_one_line_naming_both(version: str) -> None:
    with pytest.raises(UnsupportedPrefectError) as raised:
        check_prefect_version(version)
    message = str(raised.value)
    assert "\n" not in message
    assert f"Prefect {version} is installed" in message
    assert f"supports Prefect {SUPPORTED_PREFECT}" in message


def test_the_supported_range_is_the_one_pyproject_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [dep for dep in project["dependencies"] if re.match(r"prefect\s*[<>=!~]", dep)]
    assert pins == [f"prefect{SUPPORTED_PREFECT}"]


_REFUSAL = (
    f"The Trinity worker supports Prefect {SUPPORTED_PREFECT} (it relies on internals of that release "
    "line), but Prefect 3.9.2 is installed; install a supported one: "
    f"pip install 'prefect{SUPPORTED_PREFECT}'"
)


def _as_if_prefect_3_9_2(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter whose Prefect reports version 3.9.2."""
    script = f"import prefect\nprefect.__version__ = '3.9.2'\n{code}\n"
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_prefect_loading_the_worker_on_another_version_prints_the_one_line() -> None:
    # Prefect imports the worker module when it loads collections (server, workers, blocks).
    done = _as_if_prefect_3_9_2(
        "from prefect.plugins import load_prefect_collections\n"
        "print('result:', type(load_prefect_collections()['trinity']).__name__)"
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "'trinity'" in line]
    assert lines == [f"Warning!  Failed to load collection 'trinity': UnsupportedPrefectError: {_REFUSAL}"]
    assert "result: UnsupportedPrefectError" in done.stdout


def test_trinity_worker_on_another_version_exits_with_the_one_line() -> None:
    done = _as_if_prefect_3_9_2("from trinity.cli import app\napp(['worker'])")
    assert (done.returncode, done.stderr) == (1, f"error: {_REFUSAL}\n")


# -- shapes of what is called or overridden ---------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "name", "parameters"),
    [
        (BaseFlowRunEngine, "setup_flow_run_suspension_request", ["self"]),
        (BaseFlowRunEngine, "_get_flow_run_suspension_request", ["self"]),
        (BaseFlowRunEngine, "cancel_all_tasks", ["self"]),
        (BaseFlowRunEngine, "is_running", ["self"]),
        (FlowRunEngine, "start", ["self"]),
        (FlowRunEngine, "run_context", ["self"]),
        (FlowRunEngine, "call_flow_fn", ["self"]),
        (FlowRunEngine, "handle_cancellation", ["self", "exc"]),
        (AsyncFlowRunEngine, "start", ["self"]),
        (AsyncFlowRunEngine, "run_context", ["self"]),
        (AsyncFlowRunEngine, "call_flow_fn", ["self"]),
        (AsyncFlowRunEngine, "handle_cancellation", ["self", "exc"]),
        (FlowRunSuspensionRequest, "mark_requested", ["self", "state"]),
        (FlowRunSuspensionRequest, "is_requested", ["self"]),
        (FlowRunSuspensionRequest, "raise_if_requested", ["self"]),
        (BaseWorker, "_get_scheduled_flow_runs", ["self"]),
        (BaseWorker, "_propose_pending_state", ["self", "flow_run"]),
        (BaseWorker, "_submit_run", ["self", "flow_run"]),
    ],
)
def test_engine_and_worker_methods_have_the_expected_parameters(
    owner: type, name: str, parameters: list[str]
) -> None:
    assert list(inspect.signature(getattr(owner, name)).parameters) == parameters


def test_async_steps_are_coroutines_and_engines_take_a_flow_run_and_parameters() -> None:
    assert inspect.iscoroutinefunction(AsyncFlowRunEngine.handle_cancellation)
    assert inspect.iscoroutinefunction(AsyncFlowRunEngine.call_flow_fn)
    assert inspect.iscoroutinefunction(BaseWorker._get_scheduled_flow_runs)
    assert inspect.iscoroutinefunction(BaseWorker._propose_pending_state)
    assert inspect.iscoroutinefunction(BaseWorker._submit_run)
    assert not inspect.iscoroutinefunction(FlowRunEngine.handle_cancellation)
    for engine in (FlowRunEngine, AsyncFlowRunEngine):
        assert {"flow", "flow_run", "parameters"} <= set(inspect.signature(engine).parameters)
    for runner in (run_generator_flow_sync, run_generator_flow_async):
        assert list(inspect.signature(runner).parameters)[:3] == ["flow", "flow_run", "parameters"]
    params = list(inspect.signature(register_flow_run_suspension_request).parameters)
    assert params == ["flow_run_id", "suspension_request"]


# -- suspension: the registry and the notice ---------------------------------------------------------


def test_the_engine_registers_its_request_for_in_process_suspension_and_hands_it_to_the_watcher() -> None:
    flow_run = FlowRun(name="probe", flow_id=uuid.uuid4(), deployment_id=uuid.uuid4())
    engine = ExecutorFlowRunEngine(flow=sync_ticker, flow_run=flow_run, parameters={})
    watcher = RecordingWatcher()
    engine.suspension_watcher = watcher
    suspended = Suspended()
    with engine.setup_flow_run_suspension_request() as request:
        assert [flow_run_id for flow_run_id, _ in watcher.watched] == [flow_run.id]
        # suspend_flow_run in this process finds the run through Prefect's registry.
        assert mark_flow_run_suspension_requested(flow_run.id, suspended) is True
        assert watcher.watched[0][1].is_marked()
        with pytest.raises(Pause) as paused:
            request.raise_if_requested()
        assert paused.value.state is suspended
    assert mark_flow_run_suspension_requested(flow_run.id, suspended) is False


def test_a_notice_is_marked_by_a_suspended_state_only_and_once() -> None:
    notice = SuspensionNotice(FlowRunSuspensionRequest())
    assert [notice.mark(state) for state in (None, Running(), Paused(), Completed())] == [False] * 4
    assert not notice.is_marked()
    assert notice.mark(Suspended()) is True
    assert notice.mark(Suspended()) is False
    assert notice.is_marked()


# -- cancelling a sync flow's thread -----------------------------------------------------------------


def test_run_cancelled_passes_prefects_timeout_scope_and_its_own_cancel_error_does_not() -> None:
    outcomes: list[str] = []

    def in_thread() -> None:
        for exc in (RunCancelled(), PrefectCancelledError()):
            try:
                with timeout(30):
                    raise exc
            except BaseException as caught:
                outcomes.append(type(caught).__name__)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(timeout=60)
    assert outcomes == ["RunCancelled", "TimeoutError"]


def test_an_interrupt_reaches_only_the_entered_thread() -> None:
    interrupt = ThreadInterrupt()
    assert interrupt.interrupt() is False
    entered, caught = threading.Event(), []

    def busy() -> None:
        interrupt.enter()
        try:
            entered.set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                pass
        except RunCancelled:
            caught.append(threading.current_thread().name)
        finally:
            interrupt.leave()

    thread = threading.Thread(target=busy, name="busy-flow-run")
    thread.start()
    assert entered.wait(30)
    assert interrupt.interrupt() is True
    thread.join(timeout=30)
    assert caught == ["busy-flow-run"]
    assert interrupt.interrupt() is False


# -- runs through the engine against a real server ---------------------------------------------------


@pytest.mark.anyio
async def test_a_sync_flow_run_completes_off_the_main_thread_with_no_sigterm_handler_or_observer(
    prefect_api: PrefectServer,
) -> None:
    key = uuid.uuid4().hex
    flow_run = await pending_deployment_run("compat-sync-ticker", {"key": key, "seconds": 0.3})
    watcher = RecordingWatcher()
    before = signal.getsignal(signal.SIGTERM)
    with watched(key):
        state = await run_in_a_thread(sync_ticker, flow_run, {"key": key, "seconds": 0.3}, watcher=watcher)
    assert final_state(state).is_completed(), state
    assert [flow_run_id for flow_run_id, _ in watcher.watched] == [flow_run.id]
    # Prefect's own per-run suspension observer is a thread running `observer_thread`.
    assert not [name for name in SEEN[key]["threads"] if "observer_thread" in name]
    # Off the main thread the engine cannot install its SIGTERM handler; executors count on that.
    assert SEEN[key]["sigterm"] is before


@pytest.mark.anyio
async def test_an_async_flow_run_completes_in_a_loop_off_the_main_thread(prefect_api: PrefectServer) -> None:
    key = uuid.uuid4().hex
    flow_run = await pending_deployment_run("compat-async-ticker", {"key": key, "seconds": 0.3})
    watcher = RecordingWatcher()
    before = signal.getsignal(signal.SIGTERM)
    run = run_async_flow_run(
        async_ticker, flow_run, {"key": key, "seconds": 0.3}, cancel_requested=lambda: False, watcher=watcher
    )
    with watched(key):
        state = await asyncio.to_thread(asyncio.run, run)
    assert final_state(state).is_completed(), state
    assert [flow_run_id for flow_run_id, _ in watcher.watched] == [flow_run.id]
    assert not [name for name in SEEN[key]["threads"] if "observer_thread" in name]
    assert SEEN[key]["sigterm"] is before


@pytest.mark.anyio
async def test_interrupting_a_sync_flow_run_ends_it_cancelled_with_its_hook(
    prefect_api: PrefectServer,
) -> None:
    key = uuid.uuid4().hex
    flow_run = await pending_deployment_run("compat-sync-ticker", {"key": key, "seconds": 60})
    interrupt = ThreadInterrupt()
    with watched(key) as running:
        finished = run_in_a_thread(sync_ticker, flow_run, {"key": key, "seconds": 60}, interrupt=interrupt)
        assert await asyncio.to_thread(running.wait, 60)
        assert interrupt.interrupt()
        state = await asyncio.wait_for(finished, 60)
    assert final_state(state).is_cancelled(), state
    assert (await state_names(flow_run.id))[-2:] == ["Cancelling", "Cancelled"]
    assert str(flow_run.id) in CANCELLED_HOOKS


@pytest.mark.anyio
async def test_a_cancelled_run_ends_cancelled_whatever_error_the_cancellation_surfaces_as(
    prefect_api: PrefectServer,
) -> None:
    key = uuid.uuid4().hex
    flow_run = await pending_deployment_run("compat-converting-flow", {"key": key})
    interrupt = INTERRUPTS[key] = ThreadInterrupt()
    try:
        state = await asyncio.wait_for(
            run_in_a_thread(converting_flow, flow_run, {"key": key}, interrupt=interrupt), 60
        )
    finally:
        INTERRUPTS.pop(key, None)
    assert final_state(state).is_cancelled(), state
    assert str(flow_run.id) in CANCELLED_HOOKS


@pytest.mark.anyio
async def test_cancelling_an_async_flow_run_ends_it_cancelled_with_its_hook(
    prefect_api: PrefectServer,
) -> None:
    key = uuid.uuid4().hex
    flow_run = await pending_deployment_run("compat-async-ticker", {"key": key, "seconds": 60})

    async def cancel_once_running(running: threading.Event) -> State | None:
        requested = False
        run = asyncio.ensure_future(
            run_async_flow_run(
                async_ticker,
                flow_run,
                {"key": key, "seconds": 60},
                cancel_requested=lambda: requested,
                watcher=None,
            )
        )
        assert await asyncio.to_thread(running.wait, 60)
        requested = True
        run.cancel()
        return await run

    with watched(key) as running:
        state = await asyncio.to_thread(asyncio.run, cancel_once_running(running))
    assert final_state(state).is_cancelled(), state
    assert (await state_names(flow_run.id))[-2:] == ["Cancelling", "Cancelled"]
    assert str(flow_run.id) in CANCELLED_HOOKS


@pytest.mark.anyio
async def test_a_run_suspended_from_outside_stops_at_its_next_task_through_the_shared_watch(
    prefect_api: PrefectServer,
) -> None:
    key = uuid.uuid4().hex
    flow_run = await pending_deployment_run("compat-sync-ticker", {"key": key, "seconds": 60})
    async with get_client() as client:
        watch = SuspensionWatch(client, poll_seconds=0.5)
        watching = asyncio.ensure_future(watch.run())
        try:
            with watched(key) as running:
                finished = run_in_a_thread(sync_ticker, flow_run, {"key": key, "seconds": 60}, watcher=watch)
                assert await asyncio.to_thread(running.wait, 60)
                await asuspend_flow_run(flow_run_id=flow_run.id)
                with pytest.raises(Pause):
                    await asyncio.wait_for(finished, 60)
        finally:
            # Awaited, so its websocket is closed before the test's event loop moves on.
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    assert (await state_names(flow_run.id))[-1] == "Suspended"


# -- the worker's claim step and attribution ---------------------------------------------------------


@pytest.mark.anyio
async def test_the_worker_claim_step_goes_through_the_override_with_the_state_it_reads(
    prefect_api: PrefectServer,
) -> None:
    pool = f"compat-{uuid.uuid4().hex[:6]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=pool, type=ClaimProbe.type))
    parameters = {"key": "-", "seconds": 0}
    runs = [
        await pending_deployment_run("compat-sync-ticker", parameters, pool=pool, pending=False)
        for _ in range(2)
    ]
    worker = ClaimProbe(work_pool_name=pool, work_queues=["default"], prefetch_seconds=7, limit=3)
    assert worker.free_slots is None

    async def claim_once() -> tuple[Any, ...]:
        async with worker:
            claimed = await worker._get_scheduled_flow_runs()
            return (claimed, worker.free_slots, worker.slot_limit, worker.worker_logger is worker._logger)

    # In a loop of its own, collected below: Prefect 3.8's worker teardown closes its worker-channel
    # websocket inside a cancelled scope, which can leave the transport for the garbage collector
    # (a ResourceWarning that would otherwise land in whichever test runs next).
    outcome = await asyncio.to_thread(asyncio.run, claim_once())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert outcome == ([], 3, 3, True)
    assert (worker.work_pool_name, worker.work_queue_names, worker.prefetch_seconds) == (pool, ["default"], 7)
    assert [sorted(offered) for offered in worker.offered] == [sorted(run.id for run in runs)]


def test_each_poll_of_the_base_worker_claims_through_the_overridden_step() -> None:
    source = inspect.getsource(BaseWorker.get_and_submit_flow_runs)
    assert "await self._get_scheduled_flow_runs()" in source


def test_each_submission_proposes_pending_once_through_the_overridden_step() -> None:
    submit = inspect.getsource(BaseWorker._submit_run)
    assert submit.count("await self._propose_pending_state(flow_run)") == 1
    assert "self._submit_run," in inspect.getsource(BaseWorker._submit_scheduled_flow_runs)


@pytest.mark.anyio
async def test_the_base_worker_claims_through_the_claim_hook_and_reports_each_submission_ended(
    prefect_api: PrefectServer,
) -> None:
    pool = f"compat-{uuid.uuid4().hex[:6]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=pool, type=RefusingClaimProbe.type))
    run = await pending_deployment_run(
        "compat-sync-ticker", {"key": "-", "seconds": 0}, pool=pool, pending=False
    )
    worker = RefusingClaimProbe(work_pool_name=pool, limit=2)

    async def poll_once() -> list[Any]:
        async with worker:  # leaving waits for the submissions started by the poll
            return await worker.get_and_submit_flow_runs()

    # In a loop of its own, as above.
    await asyncio.to_thread(asyncio.run, poll_once())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert (worker.asked, worker.ended) == ([run.id], [run.id])
    async with get_client() as client:
        state = (await client.read_flow_run(run.id)).state
    assert state is not None
    assert state.is_scheduled()  # refused by the hook: never proposed Pending


def test_the_attribution_environment_names_the_worker_in_api_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in attribution_environment("executor-of-w1").items():
        monkeypatch.setenv(name, value)
    assert get_attribution_headers()["X-Prefect-Worker-Name"] == "executor-of-w1"


def test_events_worker_registry_is_a_locked_dict_the_flush_reads_without_starting_a_worker() -> None:
    assert isinstance(EventsWorker._instance_lock, type(threading.Lock()))
    with EventsWorker._instance_lock:
        had = dict(EventsWorker._instances)
    assert isinstance(had, dict)
    if not had:
        prefect_compat.deliver_pending_events(timeout=1)
        # Nothing to deliver: no worker was started just to be stopped.
        assert EventsWorker._instances == {}
