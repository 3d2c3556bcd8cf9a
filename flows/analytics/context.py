"""What the analysis knows about each workflow besides its history: document and specification.

Two sources, both optional: the API's ``workflows``/``specifications`` tables, and the
``TrinityWorkflow`` block documents that ``trinity deploy`` stores in Prefect. For each workflow
the version its latest run in the window ran is used when a source has it, else the highest
version known.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import pandas as pd
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from analytics import WorkflowContext
from blocks.workflow_definition import BLOCK_TYPE_SLUG
from flows.analytics.database import Tables
from specs.versions import Version, VersionError, best_match

_BLOCK_PAGE = 200


@dataclass(frozen=True)
class Definition:
    """One stored version of a workflow with its specification (documents as dicts)."""

    name: str
    version: str
    workflow: Mapping[str, Any]
    specification: Mapping[str, Any] | None


def latest_versions(runs: pd.DataFrame) -> dict[str, str]:
    """Workflow -> the version its most recent run (by reference time) ran."""
    if runs.empty:
        return {}
    reference = runs["expected_start_time"].fillna(runs["start_time"]).fillna(runs["end_time"])
    ordered = runs.assign(_reference=reference).sort_values("_reference", kind="stable")
    last = ordered.groupby("workflow", observed=True)["workflow_version"].last()
    return {str(name): str(version) for name, version in last.items()}


def _version_key(text: str) -> tuple[int, Any]:
    try:
        return (1, Version.parse(text))
    except (VersionError, ValueError):
        return (0, text)


def choose(definitions: Iterable[Definition], wanted: Mapping[str, str]) -> dict[str, WorkflowContext]:
    """One context per wanted workflow: its wanted version when stored, else the highest."""
    by_name: dict[str, dict[str, Definition]] = {}
    for definition in definitions:
        # The first source to offer a version wins (the database is read before Prefect).
        by_name.setdefault(definition.name, {}).setdefault(definition.version, definition)
    context: dict[str, WorkflowContext] = {}
    for name, version in wanted.items():
        versions = by_name.get(name)
        if not versions:
            continue
        chosen = versions.get(version) or versions[max(versions, key=_version_key)]
        context[name] = WorkflowContext(document=dict(chosen.workflow), specification=chosen.specification)
    return context


def database_definitions(connection: sa.Connection, tables: Tables, names: Iterable[str]) -> list[Definition]:
    """Stored workflows (and their specifications) from the API's tables."""
    workflows, specifications = tables.workflows, tables.specifications
    wanted = sorted(set(names))
    if not wanted:
        return []
    rows = connection.execute(
        sa.select(
            workflows.c.name,
            workflows.c.version,
            workflows.c.definition,
            workflows.c.spec_id,
            workflows.c.spec_name,
            workflows.c.spec_range,
        ).where(workflows.c.name.in_(wanted))
    ).all()
    specs_by_id: dict[uuid.UUID, tuple[str, str, Mapping[str, Any]]] = {}
    spec_names = sorted({row.spec_name for row in rows})
    for spec_id, spec_name, spec_version, document in connection.execute(
        sa.select(
            specifications.c.id,
            specifications.c.name,
            specifications.c.version,
            specifications.c.schema,
        ).where(specifications.c.name.in_(spec_names))
    ):
        specs_by_id[spec_id] = (spec_name, spec_version, document)
    found: list[Definition] = []
    for row in rows:
        if not isinstance(row.definition, Mapping):
            continue
        spec = specs_by_id[row.spec_id][2] if row.spec_id in specs_by_id else None
        if spec is None:
            spec = _spec_in_range(specs_by_id.values(), row.spec_name, row.spec_range)
        found.append(Definition(row.name, row.version, row.definition, spec))
    return found


def _spec_in_range(
    specs: Iterable[tuple[str, str, Mapping[str, Any]]], name: str, version_range: str
) -> Mapping[str, Any] | None:
    candidates = {version: document for spec_name, version, document in specs if spec_name == name}
    try:
        chosen = best_match(candidates, version_range)
    except VersionError:
        return None
    return candidates[chosen] if chosen is not None else None


async def prefect_definitions(names: Iterable[str]) -> list[Definition]:
    """Definitions stored in Prefect by ``trinity deploy`` (``TrinityWorkflow`` block documents)."""
    wanted = set(names)
    found: list[Definition] = []
    async with get_client() as client:
        offset = 0
        while True:
            try:
                page = await client.read_block_documents_by_type(
                    BLOCK_TYPE_SLUG, offset=offset, limit=_BLOCK_PAGE
                )
            except ObjectNotFound:  # the block type was never registered: nothing deployed yet
                return found
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code == 404:  # the same, as this endpoint reports it
                    return found
                raise
            for document in page:
                data = document.data
                if data.get("workflow_name") in wanted and isinstance(data.get("workflow"), Mapping):
                    spec = data.get("specification")
                    found.append(
                        Definition(
                            name=str(data["workflow_name"]),
                            version=str(data.get("workflow_version", "")),
                            workflow=data["workflow"],
                            specification=spec if isinstance(spec, Mapping) else None,
                        )
                    )
            if len(page) < _BLOCK_PAGE:
                return found
            offset += _BLOCK_PAGE


@dataclass
class ContextSource:
    """Every stored definition of the workflows in the history, loaded once per report pass."""

    definitions: list[Definition]

    def for_runs(self, runs: pd.DataFrame) -> dict[str, WorkflowContext]:
        """Contexts for the workflows in ``runs`` (the version each one ran last)."""
        return choose(self.definitions, latest_versions(runs))


def workflow_names(connection: sa.Connection, tables: Tables) -> list[str]:
    """Every workflow name in ``execution_logs``."""
    logs = tables.execution_logs
    names = connection.execute(sa.select(logs.c.workflow_name).distinct()).scalars()
    return sorted(str(name) for name in names)


async def load_context_source(engine: sa.Engine, tables: Tables, *, from_prefect: bool) -> ContextSource:
    """Definitions from the database and, when ``from_prefect``, from Prefect's block documents."""

    def from_database() -> tuple[list[str], list[Definition]]:
        with engine.connect() as connection:
            names = workflow_names(connection, tables)
            return names, database_definitions(connection, tables, names)

    names, definitions = await anyio.to_thread.run_sync(from_database)
    if from_prefect and names:
        definitions += await prefect_definitions(names)
    return ContextSource(definitions)
