"""The TrinityWorkflow block: naming, and storing definitions in a real Prefect server."""

from __future__ import annotations

import re

import pytest

from blocks.workflow_definition import (
    DefinitionNotFoundError,
    block_name_from_attribute,
    definition_block_name,
    entrypoint_attribute,
    list_definitions,
    load_definition,
    load_definition_sync,
    register_block_types,
    save_definition,
)
from tests.flows.factories import specification, workflow

pytestmark = pytest.mark.anyio


def test_block_names_are_valid_unique_and_reversible_through_the_entrypoint() -> None:
    names = {
        definition_block_name(name, version)
        for name, version in [("a.b", "1.0.0"), ("a-b", "1.0.0"), ("a_b", "1.0.0"), ("a.b", "1.0.0-rc.1")]
    }

    assert len(names) == 4
    for name in names:
        assert re.fullmatch(r"[a-z0-9-]+", name)
        assert entrypoint_attribute(name).isidentifier()
        assert block_name_from_attribute(entrypoint_attribute(name)) == name
    assert block_name_from_attribute("__path__") is None


async def test_definition_round_trip(prefect_api: object) -> None:
    spec = specification({"type": "object", "properties": {"x": {"type": "integer", "default": 1}}})
    wf = workflow(
        [{"id": "a", "uses": "noop", "if": "${{ params.x > 0 }}"}], name="stored.wf", version="1.2.3"
    )
    await register_block_types()

    name = await save_definition(workflow=wf, specification=spec)
    loaded = await load_definition(name)

    assert loaded.workflow_model() == wf
    assert loaded.specification_model() == spec
    assert (loaded.workflow_name, loaded.workflow_version) == ("stored.wf", "1.2.3")
    import anyio.to_thread

    synced = await anyio.to_thread.run_sync(load_definition_sync, name)
    assert synced.workflow_model() == wf


async def test_missing_definitions_and_versions_listing(prefect_api: object) -> None:
    await register_block_types()
    spec = specification()
    for version in ("1.0.0", "1.1.0"):
        await save_definition(
            workflow=workflow([{"id": "a", "uses": "noop"}], name="listed", version=version),
            specification=spec,
        )

    listed = await list_definitions("listed")

    assert sorted(d.workflow_version for d in listed) == ["1.0.0", "1.1.0"]
    assert await list_definitions("never-stored") == []
    with pytest.raises(DefinitionNotFoundError):
        await load_definition(definition_block_name("never-stored", "1.0.0"))
