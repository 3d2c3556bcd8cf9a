"""The secrets of one flow run, opened when it starts and closed when it ends.

Opening resolves every secret parameter's reference (:mod:`blocks.run_secrets`) and reads the
``Secret`` blocks the workflow's ``${{ secrets.NAME }}`` expressions name. A secret parameter that
arrives in clear (a run started from Prefect's UI or ``prefect deployment run``) is moved into a
block of its own first, and the flow run's parameters in Prefect are rewritten to the reference.
Every value is held for redaction (:func:`trinity.core.redaction.hold_secrets`) from the moment it
is known until the run ends; closing releases them and deletes the blocks made for the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun

from blocks.run_secrets import (
    SecretNotFoundError,
    delete_secrets,
    is_run_secret,
    read_secret,
    stash_secret_parameters,
)
from flows.compiler import CompiledWorkflow
from specs.secrets import referenced_block, secret_parameters
from trinity.core.redaction import hold_secrets, release_secrets, secret_texts

__all__ = ["RunSecrets", "SecretNotFoundError", "open_run_secrets"]


@dataclass
class RunSecrets:
    """What a run holds: resolved parameters, ``secrets.NAME`` values, blocks to delete."""

    params: dict[str, Any]
    named: dict[str, Any] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)
    owned: list[str] = field(default_factory=list)

    def hold(self, value: Any) -> None:
        texts = secret_texts(value)
        hold_secrets(texts)
        self.held += texts

    async def close(self, *, keep_blocks: bool = False) -> None:
        """Release the values and delete the blocks made for this run (unless ``keep_blocks``: a
        rerun of the run will read them, and delete them when it ends)."""
        held, owned = self.held, self.owned
        self.held, self.owned = [], []
        release_secrets(held)
        if not keep_blocks:
            await delete_secrets(owned)


def resolvable_block(value: Any) -> str | None:
    """The per-run ``Secret`` block ``value`` refers to, if it refers to one."""
    block = referenced_block(value)
    return block if block is not None and is_run_secret(block) else None


async def _move_into_blocks(secrets: RunSecrets, clear: set[str], flow_run: FlowRun | None) -> dict[str, Any]:
    """Parameters given in clear, stored in blocks of their own; Prefect's record rewritten."""
    stashed, made = await stash_secret_parameters(secrets.params, clear)
    secrets.owned += made
    if flow_run is not None:
        carried = {**(flow_run.parameters or {}), **{name: stashed[name] for name in clear}}
        async with get_client() as client:
            await client.update_flow_run(flow_run.id, parameters=carried)
    return stashed


async def open_run_secrets(secrets: RunSecrets, compiled: CompiledWorkflow, flow_run: FlowRun | None) -> None:
    """Resolve the secrets of a run whose parameters ``secrets`` holds (raises
    :class:`blocks.run_secrets.SecretNotFoundError`); the caller closes ``secrets`` when the run
    ends, also when this raised part way."""
    params = dict(secrets.params)
    names = secret_parameters(compiled.parameters_schema) & set(params)
    # Only a reference to a block made for a run is resolved; anything else (another block's name
    # typed into Prefect's run form included) is a value given in clear.
    clear = {name for name in names if params[name] is not None and resolvable_block(params[name]) is None}
    for name in clear:
        secrets.hold(params[name])
    carried = await _move_into_blocks(secrets, clear, flow_run) if clear else dict(params)
    for name in sorted(names):
        block = resolvable_block(carried[name])
        if block is None:
            continue
        if block not in secrets.owned:
            secrets.owned.append(block)
        value = await read_secret(block)
        secrets.hold(value)
        secrets.params[name] = value
    for name in sorted(compiled.secrets):
        value = await read_secret(name)
        secrets.hold(value)
        secrets.named[name] = value
