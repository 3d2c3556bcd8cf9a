"""Secret values kept in Prefect ``Secret`` blocks, so flow runs carry references, never values.

Whoever starts a run (the API, ``trinity run``, the executor for a run started in clear from
Prefect's UI) stores each secret parameter's value in a ``Secret`` block made for that run
(:func:`stash_secret_parameters`) and hands Prefect ``trinity-secret:<block name>`` instead
(:func:`specs.secrets.secret_reference`). The executor reads the blocks when the run starts
(:func:`read_secret`) and deletes the per-run ones when it ends (:func:`delete_secrets`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from prefect.blocks.system import Secret
from prefect.exceptions import ObjectNotFound

from specs.secrets import secret_reference

RUN_SECRET_PREFIX = "trinity-run-secret-"


class SecretNotFoundError(Exception):
    """Prefect has no ``Secret`` block of that name."""


def is_run_secret(block_name: str) -> bool:
    """Whether a block was made for one run (and is deleted when it ends)."""
    return block_name.startswith(RUN_SECRET_PREFIX)


async def stash_secret(value: Any) -> str:
    """Store ``value`` in a new per-run ``Secret`` block; its name."""
    name = f"{RUN_SECRET_PREFIX}{uuid.uuid4().hex}"
    await Secret(value=value).asave(name=name)
    return name


async def stash_secret_parameters(
    params: Mapping[str, Any], secrets: Collection[str]
) -> tuple[dict[str, Any], list[str]]:
    """``params`` with the value of each parameter named in ``secrets`` moved into a block of its
    own and replaced by a reference; and the names of the blocks made. A value that looks like a
    reference is stored as given too: whoever starts a run must not make it read another block."""
    result = dict(params)
    made: list[str] = []
    try:
        for name in sorted(secrets):
            value = result.get(name)
            if value is None:
                continue
            block = await stash_secret(value)
            made.append(block)
            result[name] = secret_reference(block)
    except BaseException:
        await delete_secrets(made)
        raise
    return result, made


@asynccontextmanager
async def stashed_for_run(
    params: Mapping[str, Any], secrets: Collection[str]
) -> AsyncIterator[tuple[dict[str, Any], list[str]]]:
    """:func:`stash_secret_parameters` for a run created in the body: when the body raises (no run
    was created to delete them), the blocks made are deleted."""
    carried, made = await stash_secret_parameters(params, secrets)
    try:
        yield carried, made
    except BaseException:
        await delete_secrets(made)
        raise


async def read_secret(block_name: str) -> Any:
    """The value of the ``Secret`` block ``block_name``."""
    try:
        block: Secret[Any] = await Secret.aload(block_name)
    except (ValueError, ObjectNotFound) as exc:
        raise SecretNotFoundError(f"Prefect has no Secret block '{block_name}'") from exc
    return block.get()


async def delete_secrets(block_names: Iterable[str]) -> None:
    """Delete these ``Secret`` blocks (those already gone are skipped)."""
    for name in block_names:
        try:
            await Secret.adelete(name)
        except (ValueError, ObjectNotFound):
            continue
