"""Deleting the ``Secret`` blocks made for runs that no run will read any more.

A run's blocks are deleted by its final-state hook, in the process that ran it. Some are left
behind: a run cancelled or deleted while still scheduled, a run whose process died with no rerun to
follow, a run whose creation failed after its blocks were stored. The sweep (every analytics
harvest runs it) deletes a block made for a run once it is older than :data:`SWEEP_GRACE` -- the
API stores a run's blocks moments before it creates the flow run -- and no flow run that may still
read it refers to it: one not final yet, or one that crashed within the look-back of the reruns
(:data:`flows.worker.reruns.LOOKBACK`; its rerun, once created, carries the same references).
"""

from __future__ import annotations

import datetime as dt

from prefect.blocks.system import Secret
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import TERMINAL_STATES, BlockDocument, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound

from blocks.run_secrets import is_run_secret
from flows.worker.reruns import LOOKBACK
from specs.secrets import referenced_block

__all__ = ["SWEEP_GRACE", "sweep_run_secrets"]

SWEEP_GRACE = dt.timedelta(hours=1)
_PAGE = 200  # Prefect's server refuses larger pages by default
# Runs that end while the pages are read shift the later ones back; overlapping pages keep a
# shifted run from being missed (it may still read its blocks).
_OVERLAP = 50
_NOT_FINAL = [state_type for state_type in StateType if state_type not in TERMINAL_STATES]


async def sweep_run_secrets(
    *, grace: dt.timedelta = SWEEP_GRACE, now: dt.datetime | None = None
) -> list[str]:
    """Delete the per-run ``Secret`` blocks older than ``grace`` that no run may still read; the
    names of the blocks deleted."""
    now = now or dt.datetime.now(dt.UTC)
    async with get_client() as client:
        old = [
            block
            for block in await _run_secret_blocks(client)
            if block.created is not None and block.created <= now - grace
        ]
        if not old:
            return []
        wanted = await _referenced_blocks(client, now)
        swept: list[str] = []
        for block in old:
            if block.name is None or block.name in wanted:
                continue
            try:
                await client.delete_block_document(block.id)
            except ObjectNotFound:  # deleted meanwhile by its run's final-state hook
                continue
            swept.append(block.name)
    return swept


async def _run_secret_blocks(client: PrefectClient) -> list[BlockDocument]:
    slug = Secret.get_block_type_slug()
    found: list[BlockDocument] = []
    offset = 0
    while True:
        page = await client.read_block_documents_by_type(
            slug, offset=offset, limit=_PAGE, include_secrets=False
        )
        found += [block for block in page if block.name is not None and is_run_secret(block.name)]
        if len(page) < _PAGE:
            return found
        offset += _PAGE


async def _referenced_blocks(client: PrefectClient, now: dt.datetime) -> set[str]:
    """The blocks referred to by runs not final yet, or crashed recently enough to be rerun."""
    filters = [
        FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=_NOT_FINAL))),
        FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED])),
            end_time=FlowRunFilterEndTime(after_=now - LOOKBACK),
        ),
    ]
    found: set[str] = set()
    for flow_run_filter in filters:
        offset = 0
        while True:
            page = await client.read_flow_runs(
                flow_run_filter=flow_run_filter, sort=FlowRunSort.ID_DESC, limit=_PAGE, offset=offset
            )
            for run in page:
                blocks = (referenced_block(value) for value in (run.parameters or {}).values())
                found.update(block for block in blocks if block is not None)
            if len(page) < _PAGE:
                break
            offset += _PAGE - _OVERLAP
    return found
