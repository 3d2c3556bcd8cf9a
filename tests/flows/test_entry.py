"""Deployment entrypoints resolve to a flow built from the stored definition."""

from __future__ import annotations

import pytest
from prefect.flows import load_flow_from_entrypoint

import flows.entry
from blocks.workflow_definition import definition_block_name, register_block_types, save_definition
from flows.entry import block_name_from_entrypoint, entrypoint_for
from tests.flows.factories import specification, workflow

pytestmark = pytest.mark.anyio


async def test_entrypoint_loads_the_stored_workflow_as_a_flow(prefect_api: object) -> None:
    spec = specification({"type": "object", "properties": {"day": {"type": "string", "default": "today"}}})
    wf = workflow([{"id": "a", "uses": "noop"}], name="entry.test_wf", version="2.0.0")
    await register_block_types()
    block_name = await save_definition(workflow=wf, specification=spec)
    entrypoint = entrypoint_for(block_name)

    # Prefect imports entrypoints in a worker thread; do the same (no event loop there).
    import anyio.to_thread

    flow = await anyio.to_thread.run_sync(load_flow_from_entrypoint, entrypoint)

    assert flow.name == "entry.test_wf"  # each workflow is its own flow
    assert flow.version == "2.0.0"
    assert list(flow.parameters.properties) == ["day"]
    assert (
        block_name_from_entrypoint(entrypoint)
        == block_name
        == definition_block_name("entry.test_wf", "2.0.0")
    )
    state = await flow(return_state=True)
    assert state.is_completed(), state.message


def test_unknown_attributes_are_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        _ = flows.entry.something_else
    assert block_name_from_entrypoint("flows.other.wf_x") is None
    assert block_name_from_entrypoint("path/file.py:flow") is None
