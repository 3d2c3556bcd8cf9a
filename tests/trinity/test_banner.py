"""The banner of ``trinity up``: its commands work when pasted into a fresh shell."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.servers import free_port
from tests.support.shell import commands_in, run_in_clean_shell
from trinity.banner import banner_commands
from trinity.commands.up_impl import EXAMPLES_DIR
from trinity.stack_config import StackConfig, ready_banner

SECRETS = {"admin_api_key": "trn_banner_test", "prefect_auth_string": "trinity:banner-test"}


def config(tmp_path: Path) -> StackConfig:
    return StackConfig(
        state_dir=tmp_path / "state",
        prefect_port=free_port(),
        api_port=free_port(),
        examples=[EXAMPLES_DIR],
        demo_params=["day=2026-01-02"],
    )


def test_banner_prints_every_command_with_a_prompt(tmp_path: Path) -> None:
    stack = config(tmp_path)

    printed = commands_in(ready_banner(stack, SECRETS, "1234"))

    assert printed == [command.line for command in banner_commands(stack, SECRETS, "1234")]
    assert any(" validate " in line for line in printed)
    # Prefect is closed: its CLI needs the stack's auth string.
    assert any(
        " deployment run " in line and "PREFECT_API_AUTH_STRING=trinity:banner-test " in line
        for line in printed
    )
    assert any(line.startswith("curl ") and line.endswith("/workflows/1234/execute") for line in printed)


def test_banner_commands_work_in_a_clean_shell(tmp_path: Path) -> None:
    stack = config(tmp_path)
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    needs_stack = {c.line: c.needs_stack for c in banner_commands(stack, SECRETS)}

    printed = commands_in(ready_banner(stack, SECRETS))

    assert len(printed) == len(needs_stack) >= 4
    for line in printed:
        result = run_in_clean_shell(line, home=home, cwd=elsewhere)
        output = result.stdout + result.stderr
        assert result.returncode != 127, f"{line}\n{output}"
        assert "command not found" not in output, f"{line}\n{output}"
        if not needs_stack[line]:  # no stack runs here: those that need one fail to connect
            assert result.returncode == 0, f"{line}\n{output}"


def test_banner_says_how_to_put_the_commands_on_the_path(tmp_path: Path) -> None:
    banner = ready_banner(config(tmp_path), SECRETS)
    found = re.search(r"without their path: (source \S+)$", banner, re.MULTILINE)
    assert found is not None, banner
    home = tmp_path / "home"
    home.mkdir()

    result = run_in_clean_shell(
        f"{found.group(1)} && trinity --help && prefect version", home=home, cwd=tmp_path
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "validate" in result.stdout
    assert "Version:" in result.stdout
