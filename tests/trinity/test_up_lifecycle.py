"""``trinity up`` around its supervisor: a second ``up``, a supervisor killed with SIGKILL, stops
asked for during set-up, and the worker's health check against a real Prefect server.

A small stand-in for ``trinity up`` (a real :class:`Supervisor` with cheap real children, the pid
file and the status file) keeps these tests to seconds; the full stack is exercised by
``test_up_browser.py``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import free_port, start_prefect_server
from tests.trinity import children
from trinity.stack import bring_up
from trinity.stack_config import StackConfig, child_specs, load_secrets, stack_env
from trinity.stack_setup import StackError, run_step, worker_heartbeat
from trinity.supervisor import StopRequestedError, Supervisor, http_ok, port_in_use, reap_orphans

TRINITY = [sys.executable, "-m", "trinity.cli"]


def pid_alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except OSError:
        return False


def wait_until(condition: object, timeout: float = 30.0) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


@dataclass
class FakeUp:
    state: Path
    port: int
    process: subprocess.Popen[bytes]
    pids: list[int]

    def kill_supervisor(self) -> None:
        self.process.kill()
        self.process.wait()
        # What a killed `trinity up` leaves behind: children in their own sessions, still running.
        assert [pid for pid in self.pids if pid_alive(pid)] == self.pids


@pytest.fixture
def fake_up(tmp_path: Path) -> Iterator[FakeUp]:
    state = tmp_path / "state"
    state.mkdir()
    port = free_port()
    out = tmp_path / "fake_up.out"
    with out.open("wb") as handle:
        process = subprocess.Popen(
            children.argv("fake-up", str(state), str(port)),
            env=children.env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_until(lambda: "ready" in out.read_text() or process.poll() is not None, 60)
        assert process.poll() is None, out.read_text()
        status = (state / "status.json").read_text()
        pids = [child["pid"] for child in json.loads(status)["children"]]
        pids.append(int((state / "grandchild.pid").read_text()))
        yield FakeUp(state=state, port=port, process=process, pids=pids)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reap_orphans(state)


def test_down_stops_the_orphans_of_a_killed_up(fake_up: FakeUp) -> None:
    fake_up.kill_supervisor()
    down = subprocess.run(
        [*TRINITY, "down", "--state-dir", str(fake_up.state)], capture_output=True, text=True, timeout=120
    )
    assert down.returncode == 0, down.stdout + down.stderr
    assert "web (process group" in down.stdout
    assert "sleeper (process group" in down.stdout
    assert "left running by a trinity up that was killed" in down.stdout
    assert wait_until(lambda: not any(pid_alive(pid) for pid in fake_up.pids), 10)
    assert not port_in_use("127.0.0.1", fake_up.port)
    assert not (fake_up.state / "children.json").exists()
    again = subprocess.run(
        [*TRINITY, "down", "--state-dir", str(fake_up.state)], capture_output=True, text=True
    )
    assert again.returncode == 0
    assert "nothing is running" in again.stdout


def test_up_stops_the_orphans_of_a_killed_up_before_checking_ports(fake_up: FakeUp) -> None:
    fake_up.kill_supervisor()
    said: list[str] = []
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        api_port = blocker.getsockname()[1]
        # The orphaned web server holds the Prefect port; the API port is truly taken, so the
        # run stops at the port check -- after the clean-up, which the error message proves.
        config = StackConfig(state_dir=fake_up.state, prefect_port=fake_up.port, api_port=api_port)
        with pytest.raises(StackError, match=f"port {api_port} on 127.0.0.1 is already in use"):
            bring_up(config, say=said.append, stop_requested=lambda: False)
    assert any(line.startswith("stopped web (process group") for line in said), said
    assert not any(pid_alive(pid) for pid in fake_up.pids)
    assert not (fake_up.state / "up.pid").exists()


def test_orphans_are_found_by_their_token_not_just_their_pid(fake_up: FakeUp) -> None:
    fake_up.kill_supervisor()
    record = fake_up.state / "children.json"
    # A record whose token and command lines match nothing of ours: a pid reused by a stranger.
    text = record.read_text()
    data = json.loads(text)
    data["token"] = "not-ours"
    for child in data["children"]:
        child["argv"] = ["something", "else"]
    record.write_text(json.dumps(data))
    assert reap_orphans(fake_up.state) == []
    assert [pid for pid in fake_up.pids if pid_alive(pid)] == fake_up.pids
    record.write_text(text)
    assert len(reap_orphans(fake_up.state)) == 2
    assert wait_until(lambda: not any(pid_alive(pid) for pid in fake_up.pids), 10)


def test_second_up_shows_the_running_stack_and_succeeds(fake_up: FakeUp) -> None:
    argv = [*TRINITY, "up", "--state-dir", str(fake_up.state), "--prefect-port", str(fake_up.port)]
    second = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"trinity up: pid {fake_up.process.pid}" in second.stdout
    assert f"http://127.0.0.1:{fake_up.port}" in second.stdout
    assert "web" in second.stdout
    assert "sleeper" in second.stdout
    assert "already up" in second.stdout
    # The running one is untouched.
    assert http_ok(f"http://127.0.0.1:{fake_up.port}/")
    down = subprocess.run(
        [*TRINITY, "down", "--state-dir", str(fake_up.state)], capture_output=True, text=True
    )
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"stopped trinity up (pid {fake_up.process.pid})" in down.stdout
    assert fake_up.process.wait(timeout=30) == 0
    assert wait_until(lambda: not any(pid_alive(pid) for pid in fake_up.pids), 10)


def run_step_as(
    tmp_path: Path,
    program: str,
    *,
    timeout: float,
    stop_requested: Callable[[], bool] = lambda: False,
    tick: Callable[[float], None] | None = None,
) -> str:
    """A set-up step running one of the test children, logged to ``setup.log`` in ``tmp_path``."""
    return run_step(
        children.argv(program),
        children.env(),
        tmp_path / "setup.log",
        timeout=timeout,
        stop_requested=stop_requested,
        tick=None if tick is None else lambda: tick(time.monotonic()),
    )


def assert_grandchild_stopped(tmp_path: Path) -> None:
    """The grandchild that the ``spawn`` step printed the pid of is gone."""
    grandchild = int((tmp_path / "setup.log").read_text().split("\n")[1])
    assert wait_until(lambda: not pid_alive(grandchild), 10)


def test_a_stop_during_a_step_kills_the_step_and_everything_it_started(tmp_path: Path) -> None:
    started = time.monotonic()
    ticks: list[float] = []

    def stop_requested() -> bool:
        return time.monotonic() - started > 3

    with pytest.raises(StopRequestedError):
        run_step_as(tmp_path, "spawn", timeout=600, stop_requested=stop_requested, tick=ticks.append)
    assert time.monotonic() - started < 30
    assert ticks
    assert_grandchild_stopped(tmp_path)


def test_a_step_that_outlives_its_timeout_is_killed(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="did not finish within 2s"):
        run_step_as(tmp_path, "spawn", timeout=2)
    assert_grandchild_stopped(tmp_path)


def test_a_failed_step_names_its_last_line(tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"exit 1.*no such workflow"):
        run_step_as(tmp_path, "failed-step", timeout=60)
    assert "no such workflow" in (tmp_path / "setup.log").read_text()


def test_worker_is_healthy_only_once_it_heartbeats_in_prefect(tmp_path: Path) -> None:
    port = free_port()
    config = StackConfig(state_dir=tmp_path / "state", prefect_port=port, worker_processes=1)
    stack_secrets = load_secrets(config.state_dir)
    auth = stack_secrets["prefect_auth_string"]
    # Closed, as `trinity up` starts it: the worker and the health check pass the auth string.
    server = start_prefect_server(
        tmp_path / "prefect", port=port, extra_env={"PREFECT_SERVER_API_AUTH_STRING": auth}
    )
    try:
        env = stack_env(config, stack_secrets)
        spec = child_specs(config, env)[2]
        assert spec.name == "trinity-worker"
        assert not spec.health(time.time())
        supervisor = Supervisor(state_dir=config.state_dir, log_dir=config.log_dir)
        try:
            child = supervisor.start(spec)
            assert child.healthy
            name = spec.argv[list(spec.argv).index("--name") + 1]
            assert worker_heartbeat(
                config.prefect_api_url, config.pool, name, time.time() - 120, auth_string=auth
            )
            # Without the auth string Prefect answers 401: no heartbeat is seen.
            assert not worker_heartbeat(config.prefect_api_url, config.pool, name, time.time() - 120)
            # Another worker's heartbeat does not count.
            assert not worker_heartbeat(
                config.prefect_api_url, config.pool, "someone-else", 0, auth_string=auth
            )

            # Restarted, the worker is judged on heartbeats of the new process only: the old
            # process's heartbeat (same worker name) does not make it healthy.
            first_start = child.started_wall
            assert child.process is not None
            child.process.kill()
            child.process.wait()
            assert wait_until(lambda: bool(supervisor.check()) and child.restarts == 1, 30)
            assert child.started_wall > first_start
            assert spec.health(first_start)  # the old heartbeat is there...
            assert not child.healthy
            assert not spec.health(child.started_wall)  # ...and is not the new process's
            assert wait_until(lambda: bool(supervisor.check()) or child.healthy, 120)
            assert child.healthy
            assert spec.health(child.started_wall)
        finally:
            supervisor.stop_all()
    finally:
        server.stop()


def test_two_ups_started_at_once_make_one_stack_and_the_other_says_so_in_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    argv = [
        *TRINITY, "up", "--state-dir", str(state), "--prefect-port", str(free_port()),
        "--api-port", str(free_port()), "--no-demo",
    ]  # fmt: skip
    outputs = [(tmp_path / f"up{i}.out", tmp_path / f"up{i}.err") for i in range(2)]
    ups = []
    for out_path, err_path in outputs:
        with out_path.open("w") as out_file, err_path.open("w") as err_file:
            ups.append(subprocess.Popen(argv, stdout=out_file, stderr=err_file, start_new_session=True))
    try:
        assert wait_until(lambda: any(up.poll() is not None for up in ups), 90)
        [loser] = [up for up in ups if up.poll() is not None]
        [winner] = [up for up in ups if up is not loser]
        out, err = (path.read_text() for path in outputs[ups.index(loser)])
        assert loser.returncode == 1, out + err
        assert err.strip().splitlines() == [
            f"error: another trinity up (pid {winner.pid}) is starting the stack for {state.resolve()}; "
            "this one stops (`trinity status` shows it, `trinity down` stops it)"
        ]
        assert winner.poll() is None  # the winner goes on
        assert (state / "up.lock").read_text() == str(winner.pid)
    finally:
        down = subprocess.run(
            [*TRINITY, "down", "--state-dir", str(state)], capture_output=True, text=True, timeout=120
        )
        for up in ups:
            if up.poll() is None:
                up.wait(timeout=60)
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"stopped trinity up (pid {winner.pid})" in down.stdout
    assert winner.returncode == 0
    assert not (state / "children.json").exists()


# A process that publishes delivery counts the way an executor does: 3 lines kept while the API was
# away, of which 2 were sent late, in a buffer of 2 lines (so 1 dropped), and 4 events dropped.
PUBLISHER = """
import sys, time
from flows.worker import delivery
delivery.BUFFER.capacity = 2
delivery.BUFFER.keep([{"message": str(i)} for i in range(3)])
delivery.BUFFER.delivered(len(delivery.BUFFER.take(1)))
delivery.BUFFER.count_dropped(events=4)
delivery.publish()
print("published", flush=True)
time.sleep(600)
"""


def test_status_shows_the_workers_log_delivery_figures(fake_up: FakeUp, tmp_path: Path) -> None:
    folder = fake_up.state / "delivery"
    env = {**children.env(), "TRINITY_DELIVERY_STATUS_DIR": str(folder)}
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert publisher.stdout is not None
        assert publisher.stdout.readline().strip() == "published"
        # An executor that is gone no longer counts.
        (folder / "executor-999999999.json").write_text(json.dumps({"logs_waiting": 50}))
        status = [*TRINITY, "status", "--state-dir", str(fake_up.state)]
        text = subprocess.run(status, capture_output=True, text=True, timeout=60)
        as_json = subprocess.run([*status, "--json"], capture_output=True, text=True, timeout=60)
    finally:
        publisher.kill()
        publisher.wait()
        if publisher.stdout is not None:
            publisher.stdout.close()
    assert text.returncode == 0, text.stdout + text.stderr
    assert (
        "worker log delivery: 1 line(s) buffered now, 1 delivered late, 1 dropped; events dropped 4"
        in text.stdout
    ), text.stdout
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["running"] is True
    assert document["delivery"] == {
        "logs_waiting": 1,
        "logs_delivered_late": 1,
        "logs_dropped": 1,
        "events_dropped": 4,
    }
    assert [child["name"] for child in document["children"]] == ["web", "sleeper"]


def test_status_json_says_not_running_and_exits_1(tmp_path: Path) -> None:
    result = subprocess.run(
        [*TRINITY, "status", "--state-dir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"running": False, "state_dir": str(tmp_path.resolve())}
