"""Per-run Secret blocks against a real Prefect server."""

from __future__ import annotations

import pytest

from blocks.run_secrets import read_secret, stashed_for_run
from specs.secrets import secret_reference
from tests.security.secret_records import block_exists

pytestmark = pytest.mark.anyio


async def _start_run_that_fails(made: list[str]) -> None:
    async with stashed_for_run({"password": "pw-12345", "day": "mon"}, {"password"}) as (carried, blocks):
        made += blocks
        assert carried == {"password": secret_reference(blocks[0]), "day": "mon"}
        assert await read_secret(blocks[0]) == "pw-12345"
        raise RuntimeError("no run")


async def test_blocks_are_deleted_when_their_run_is_not_created(prefect_api: object) -> None:
    made: list[str] = []
    with pytest.raises(RuntimeError, match="no run"):
        await _start_run_that_fails(made)

    assert len(made) == 1
    assert not await block_exists(made[0])
