"""Worker options, exit descriptions, recommended settings and the CLI's errors (no server needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from flows.worker.pool import describe_exit
from flows.worker.tuning import SERVER_SETTINGS, server_environment
from flows.worker.worker import WorkerOptions
from tests.flows.worker.support import VENV_BIN


def test_options_come_from_the_environment_then_from_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRINITY_WORKER_PROCESSES", "3")
    monkeypatch.setenv("TRINITY_WORKER_CONCURRENCY", "7")
    options = WorkerOptions.from_env(concurrency=9, poll_seconds=None)
    assert (options.processes, options.concurrency, options.poll_seconds) == (3, 9, 1.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"processes": 0}, "processes must be at least 1, got 0"),
        ({"concurrency": -2}, "concurrency must be at least 1, got -2"),
        ({"poll_seconds": 0.0}, "poll seconds must be at least 0.05, got 0"),
        ({"shutdown_grace_seconds": -1.0}, "shutdown grace seconds must not be negative, got -1"),
    ],
)
def test_out_of_range_options_are_refused_by_name(overrides: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkerOptions.from_env(**overrides)


def test_a_malformed_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRINITY_WORKER_PROCESSES", "two")
    with pytest.raises(ValueError, match="TRINITY_WORKER_PROCESSES must be a number, got 'two'"):
        WorkerOptions.from_env()


@pytest.mark.parametrize(
    ("code", "text"),
    [(None, "exit code unknown"), (0, "exit code 0"), (3, "exit code 3"), (-9, "killed by SIGKILL")],
)
def test_exit_descriptions(code: int | None, text: str) -> None:
    assert describe_exit(code) == text


def test_server_settings_leave_what_the_operator_set() -> None:
    key = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"
    chosen = server_environment({key: "7"})
    assert key not in chosen
    assert set(chosen) == set(SERVER_SETTINGS) - {key}


def _trinity_worker(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "TRINITY_"))}
    env["PREFECT_HOME"] = str(tmp_path)  # an empty profile: no API URL from anywhere
    return subprocess.run(
        [str(VENV_BIN / "trinity"), "worker", *args],
        env=env,
        cwd=tmp_path,  # no trinity.config.yml, no running `trinity up`
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    result = _trinity_worker(["--processes", "0"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: processes must be at least 1, got 0"


def test_cli_without_a_prefect_api_says_so_in_one_line(tmp_path: Path) -> None:
    result = _trinity_worker(["--pool", "nowhere"], tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: no Prefect API to serve: set PREFECT_API_URL")
