"""An equivalent ``prefect.yaml`` for deployed workflows (for teams that manage deployments with
``prefect deploy``). Each entrypoint loads its definition from the ``TrinityWorkflow`` block that
``trinity deploy`` stored, so the blocks must exist before ``prefect deploy`` reads this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import prefect
import yaml

from deployments.schedules import schedule_yaml
from deployments.service import DeploymentSpec
from flows.entry import PULL_STEPS


def deployment_entry(spec: DeploymentSpec) -> dict[str, Any]:
    """One ``deployments:`` entry."""
    entry: dict[str, Any] = {
        "name": spec.name,
        "version": spec.version,
        "description": spec.description,
        "tags": spec.tags,
        "entrypoint": spec.entrypoint,
        "pull": PULL_STEPS,
        "parameters": {},
        "work_pool": {"name": spec.work_pool, "work_queue_name": None, "job_variables": spec.job_variables},
        "schedules": [schedule_yaml(spec.workflow.schedule)] if spec.workflow.schedule else [],
        "paused": spec.paused,
        "enforce_parameter_schema": True,
        "parameter_openapi_schema": spec.parameter_openapi_schema,
    }
    if spec.concurrency_limit is not None:
        entry["concurrency_limit"] = {
            "limit": spec.concurrency_limit,
            "collision_strategy": spec.collision_strategy.value,
        }
    return entry


def render_prefect_yaml(specs: Sequence[DeploymentSpec]) -> str:
    """The text of a ``prefect.yaml`` describing these deployments."""
    document = {
        "name": "trinity",
        "prefect-version": prefect.__version__,
        "build": None,
        "push": None,
        "pull": None,
        "deployments": [deployment_entry(spec) for spec in specs],
    }
    header = "# Deployments of Trinity workflows (written by `trinity deploy --write-prefect-yaml`).\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def write_prefect_yaml(path: str | Path, specs: Sequence[DeploymentSpec]) -> Path:
    """Write the file; returns its path."""
    target = Path(path)
    target.write_text(render_prefect_yaml(specs), encoding="utf-8")
    return target
