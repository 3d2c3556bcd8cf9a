"""What ``trinity deploy`` does (its options are in :mod:`trinity.commands.run_commands`).

Validates the files, then makes one Prefect deployment per workflow (and, unless told not to, the
analytics flows' deployments), printing each deployment's full name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from deployments.analytics import deploy_analytics_flows, schedule_options
from deployments.pairing import pair_documents
from deployments.prefect_yaml import write_prefect_yaml
from deployments.service import DeploymentError, DeploymentRef, deploy_workflow, deployment_spec
from trinity.commands.common import fail
from trinity.commands.documents import load_documents
from trinity.commands.prefect_calls import call_prefect, prefect_api_url
from trinity.core.config import load_settings
from trinity.core.settings import ConfigError


def deploy(
    paths: Sequence[Path], *, pool: str, paused: bool, prefect_yaml: Path | None, analytics: bool
) -> None:
    """Deploy every workflow in ``paths`` on ``pool``; also write ``prefect_yaml`` when given."""
    pairing = pair_documents(load_documents(paths))
    if pairing.missing:
        fail(*(f"error: {line}" for line in pairing.missing))
    if not pairing.pairs:
        fail("error: no workflow in the given files")
    analytics_options = _analytics_options() if analytics else None

    async def deploy_all() -> list[DeploymentRef]:
        refs = [
            await deploy_workflow(workflow=workflow, specification=spec, work_pool=pool, paused=paused)
            for workflow, spec in pairing.pairs
        ]
        if analytics_options is not None:
            refs += await deploy_analytics_flows(work_pool=pool, **analytics_options)
        return refs

    try:
        refs = call_prefect(prefect_api_url(), deploy_all)
    except DeploymentError as exc:
        fail(f"error: {exc}")
    for ref in refs:
        typer.echo(ref.full_name)
    if prefect_yaml is not None:
        specs = [
            deployment_spec(workflow=workflow, specification=spec, work_pool=pool, paused=paused)
            for workflow, spec in pairing.pairs
        ]
        typer.echo(f"wrote {write_prefect_yaml(prefect_yaml, specs)}")


def _analytics_options() -> dict[str, Any]:
    """The analytics deployments' schedules from the configuration (read before deploying anything)."""
    try:
        return schedule_options(load_settings().analytics)
    except ConfigError as exc:
        fail(f"error: {exc}")
