"""``trinity up``/``down``/``status`` take their state folder from the configuration."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRINITY = ROOT / ".venv" / "bin" / "trinity"


def _trinity(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRINITY_")}
    return subprocess.run(
        [str(TRINITY), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_status_and_down_use_state_dir_from_the_config(tmp_path: Path) -> None:
    (tmp_path / "trinity.config.yml").write_text("state_dir: ./stack-state\n")

    status = _trinity("status", cwd=tmp_path)
    down = _trinity("down", cwd=tmp_path)

    assert status.returncode == 1
    assert status.stdout.strip() == f"trinity is not running (state folder {tmp_path / 'stack-state'})"
    assert down.returncode == 0
    assert down.stdout.strip() == f"nothing is running for {tmp_path / 'stack-state'}"


def test_the_flag_wins_over_the_config(tmp_path: Path) -> None:
    (tmp_path / "trinity.config.yml").write_text("state_dir: ./stack-state\n")

    status = _trinity("status", "--state-dir", "elsewhere", cwd=tmp_path)

    assert status.stdout.strip() == f"trinity is not running (state folder {tmp_path / 'elsewhere'})"


def test_a_broken_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "trinity.config.yml").write_text("state_dir: [1, 2]\n")

    status = _trinity("status", cwd=tmp_path)

    assert status.returncode == 1
    lines = status.stderr.strip().splitlines()
    assert len(lines) == 1, status.stderr
    assert lines[0].startswith("error: ")
    assert "state_dir" in lines[0]
