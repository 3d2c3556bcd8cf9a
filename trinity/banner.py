"""The commands ``trinity up`` prints once the stack is ready, to be pasted into any shell.

``scripts/up`` installs Trinity into ``.venv/``, which a new shell does not have on its PATH. So every
command the banner prints names its program by its absolute path in this installation and every
file and folder absolutely: pasted into any shell, in any folder, it works. The banner also says how
to put ``trinity`` and ``prefect`` on the PATH (``source .venv/bin/activate``).
"""

from __future__ import annotations

import json
import shlex
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from specs.errors import SpecError
from specs.naming import deployment_full_name
from specs.parameters import parse_cli_params

if TYPE_CHECKING:
    from trinity.stack_config import StackConfig

PROMPT = "$ "


@dataclass(frozen=True)
class BannerCommand:
    """One command the banner prints; ``needs_stack``: it talks to the running stack."""

    what: str
    line: str
    needs_stack: bool


def program(name: str) -> str:
    """The absolute path of one of this installation's commands (``trinity``, ``prefect``)."""
    return str(Path(sysconfig.get_path("scripts")) / name)


def activate_script() -> Path | None:
    """The ``activate`` script of the virtual environment Trinity runs from, if it runs from one."""
    if sys.prefix == sys.base_prefix:
        return None
    script = Path(sysconfig.get_path("scripts")) / "activate"
    return script if script.exists() else None


def banner_commands(
    config: StackConfig, stack_secrets: dict[str, str], workflow_id: str | None = None
) -> list[BannerCommand]:
    """The commands of the banner, in the order it prints them."""
    trinity, prefect = shlex.quote(program("trinity")), shlex.quote(program("prefect"))
    state = shlex.quote(str(config.state_dir))
    demo = config.demo_workflow or "regional-report"
    params = config.demo_params
    cli_params = " ".join(f"--param {shlex.quote(p)}" for p in params)
    try:
        body = json.dumps({"parameters": parse_cli_params(params)})
    except SpecError:  # the demo run reported it already; the command still shows the shape
        body = json.dumps({"parameters": {}})
    examples = " ".join(shlex.quote(str(Path(p).resolve())) for p in config.examples)
    key = stack_secrets["admin_api_key"]
    auth = shlex.quote(stack_secrets["prefect_auth_string"])
    execute = f"{config.api_url}/workflows/{workflow_id or '<id>'}/execute"
    commands = [
        BannerCommand(
            "run it with Prefect's CLI",
            f"PREFECT_API_URL={config.prefect_api_url} PREFECT_API_AUTH_STRING={auth} "
            f"{prefect} deployment run {shlex.quote(deployment_full_name(demo))} {cli_params}".rstrip(),
            needs_stack=True,
        ),
        BannerCommand(
            "run it through the REST API",
            f"curl -sS --fail-with-body -X POST -H 'X-API-Key: {key}' -H 'Content-Type: application/json' "
            f"-d {shlex.quote(body)} {execute}",
            needs_stack=True,
        ),
    ]
    if examples:
        commands.append(BannerCommand("check workflow files", f"{trinity} validate {examples}", False))
    commands += [
        BannerCommand("what runs", f"{trinity} status --state-dir {state}", needs_stack=True),
        BannerCommand("stop everything (or Ctrl-C here)", f"{trinity} down --state-dir {state}", False),
    ]
    return commands


def command_lines(
    config: StackConfig, stack_secrets: dict[str, str], workflow_id: str | None = None
) -> list[str]:
    """The banner's part with the commands: each one under what it does, with a prompt."""
    lines: list[str] = []
    for command in banner_commands(config, stack_secrets, workflow_id):
        lines += [f"  {command.what}:", f"    {PROMPT}{command.line}"]
    activate = activate_script()
    if activate is not None:
        lines += [
            "",
            f"To type `trinity` and `prefect` without their path: source {shlex.quote(str(activate))}",
        ]
    return lines
