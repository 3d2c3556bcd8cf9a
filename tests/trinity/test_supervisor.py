"""The supervisor with real child processes: health, restart after death, clean stop."""

from __future__ import annotations

import itertools
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.servers import free_port
from tests.trinity import children
from trinity.supervisor import Child, ChildSpec, StopRequestedError, Supervisor, SupervisorError, http_ok


def http_server_spec(port: int, *, name: str = "web") -> ChildSpec:
    return ChildSpec(
        name=name,
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        env=dict(os.environ),
        health=lambda since: http_ok(f"http://127.0.0.1:{port}/"),
        url=f"http://127.0.0.1:{port}/",
        port=port,
        start_timeout=30,
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its /proc status tells the truth.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_start_waits_until_healthy_and_stop_leaves_nothing(tmp_path: Path) -> None:
    supervisor = Supervisor(state_dir=tmp_path, log_dir=tmp_path / "logs")
    port = free_port()
    child = supervisor.start(http_server_spec(port))
    assert child.healthy
    assert http_ok(f"http://127.0.0.1:{port}/")
    pid = child.pid
    assert pid is not None
    supervisor.stop_all()
    assert not pid_alive(pid)
    assert not http_ok(f"http://127.0.0.1:{port}/")
    assert (tmp_path / "logs" / "web.log").exists()


def test_dead_child_is_reported_and_restarted(tmp_path: Path) -> None:
    supervisor = Supervisor(state_dir=tmp_path, log_dir=tmp_path / "logs")
    port = free_port()
    child = supervisor.start(http_server_spec(port))
    first_pid = child.pid
    events = kill_and_check_until_restarted(supervisor, child, timeout=20)
    try:
        assert any("exited with code" in line for line in events), events
        assert any("restarted" in line for line in events), events
        assert child.pid != first_pid
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not http_ok(f"http://127.0.0.1:{port}/"):
            time.sleep(0.2)
        assert http_ok(f"http://127.0.0.1:{port}/")
        status = supervisor.status()
        assert status["children"][0]["restarts"] == 1  # type: ignore[index]
    finally:
        supervisor.stop_all()


def test_port_in_use_gives_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        supervisor = Supervisor(state_dir=tmp_path, log_dir=tmp_path / "logs")
        with pytest.raises(SupervisorError, match=f"port {port} is already in use"):
            supervisor.start(http_server_spec(port))
        assert supervisor.children == []


def test_child_that_dies_while_starting_names_its_log(tmp_path: Path) -> None:
    supervisor = Supervisor(state_dir=tmp_path, log_dir=tmp_path / "logs")
    spec = ChildSpec(
        name="broken",
        argv=children.argv("bad-config"),
        env=children.env(),
        health=lambda since: False,
        start_timeout=30,
    )
    with pytest.raises(SupervisorError, match=r"broken exited with code 3(.|\n)*bad config: no secret"):
        supervisor.start(spec)


def kill_and_check_until_restarted(supervisor: Supervisor, child: Child, *, timeout: float) -> list[str]:
    """SIGKILL the child, then run the supervisor's checks until it restarted it; the lines they said."""
    assert child.process is not None
    child.process.kill()
    child.process.wait()
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.restarts == 0:
        lines += supervisor.check()
        time.sleep(0.05)
    return lines


def sleeper_spec(name: str, health: Callable[[], bool]) -> ChildSpec:
    return ChildSpec(
        name=name,
        argv=children.argv("sleep"),
        env=children.env(),
        health=lambda since: health(),
        start_timeout=60,
    )


def test_a_stop_while_a_child_starts_ends_the_wait(tmp_path: Path) -> None:
    started = time.monotonic()
    supervisor = Supervisor(
        state_dir=tmp_path, log_dir=tmp_path / "logs", stop_requested=lambda: time.monotonic() - started > 2
    )
    try:
        with pytest.raises(StopRequestedError, match="never-healthy was starting"):
            supervisor.start(sleeper_spec("never-healthy", lambda: False))
        assert time.monotonic() - started < 20
    finally:
        supervisor.stop_all()
    pid = supervisor.children[0].pid
    assert pid is not None
    assert not pid_alive(pid)
    assert not (tmp_path / "children.json").exists()


def test_children_started_earlier_are_restarted_while_a_later_one_starts(tmp_path: Path) -> None:
    reported: list[str] = []
    supervisor = Supervisor(state_dir=tmp_path, log_dir=tmp_path / "logs", report=reported.append)
    try:
        first = supervisor.start(sleeper_spec("first", lambda: True))
        assert first.process is not None
        first.process.kill()
        first.process.wait()
        ready_at = time.monotonic() + 5
        supervisor.start(sleeper_spec("second", lambda: time.monotonic() > ready_at))
        assert first.restarts == 1, reported
        assert first.alive()
        assert any(line.startswith("first restarted") for line in reported), reported
    finally:
        supervisor.stop_all()


def test_a_child_that_keeps_exiting_is_restarted_with_doubling_waits_one_line_each(tmp_path: Path) -> None:
    supervisor = Supervisor(state_dir=tmp_path, log_dir=tmp_path / "logs")
    marker = tmp_path / "started"
    spec = ChildSpec(
        name="flaky",
        argv=children.argv("flaky", str(marker)),
        env=children.env(),
        # Healthy: the process that wrote the marker, i.e. the first one only.
        health=lambda since: marker.exists() and marker.stat().st_mtime >= since,
        start_timeout=30,
    )
    try:
        child = supervisor.start(spec)
        assert child.process is not None
        child.process.kill()  # from now on every start exits at once
        lines: list[str] = []
        spawned: list[float] = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and child.restarts < 3:
            happened = supervisor.check()
            spawned += [time.monotonic() for line in happened if "restarted" in line]
            lines += happened
            time.sleep(0.05)
    finally:
        supervisor.stop_all()
    assert child.restarts == 3, lines
    assert len(lines) == 3  # one line per restart, nothing else
    assert lines[0].startswith("flaky restarted (pid ")
    assert "restart #1) 1s after it exited with code -9" in lines[0]
    assert "restart #2) 2s after it exited with code 1" in lines[1]
    assert "2 quick exits in a row, so the next restart waits 4s" in lines[1]
    gaps = [later - earlier for earlier, later in itertools.pairwise(spawned)]
    # Waits of 2 s, then 4 s between restarts, never a tight loop (the process's own start and exit
    # add to each; never less).
    assert len(gaps) == 2
    assert gaps[0] >= 1.9, gaps
    assert gaps[1] >= 3.8, gaps


def test_a_child_that_stayed_up_a_while_is_restarted_after_the_shortest_wait(tmp_path: Path) -> None:
    supervisor = Supervisor(state_dir=tmp_path, log_dir=tmp_path / "logs")
    try:
        child = supervisor.start(sleeper_spec("steady", lambda: True))
        child.crashes = 5  # quick exits long ago
        child.started_at -= 120  # it has been up for two minutes since
        lines = kill_and_check_until_restarted(supervisor, child, timeout=10)
        assert lines == [line for line in lines if "1s after it exited with code -9 after 12" in line], lines
        assert child.crashes == 1
    finally:
        supervisor.stop_all()


def test_health_is_asked_about_the_current_process_only(tmp_path: Path) -> None:
    asked: list[float] = []

    def health(since: float) -> bool:
        asked.append(since)
        return True

    supervisor = Supervisor(state_dir=tmp_path, log_dir=tmp_path / "logs")
    spec = ChildSpec(name="asked", argv=children.argv("sleep"), env=children.env(), health=health)
    try:
        before = time.time()
        child = supervisor.start(spec)
        first_start = child.started_wall
        assert before <= first_start
        assert asked[-1] == first_start
        assert child.process is not None
        child.process.kill()
        child.process.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (child.restarts and child.healthy):
            supervisor.check()
            time.sleep(0.05)
        assert child.healthy
        assert child.started_wall > first_start
        assert asked[-1] == child.started_wall  # judged against the restarted process's start
    finally:
        supervisor.stop_all()
