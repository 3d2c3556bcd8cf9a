"""The ``TrinityWorkflow`` block: a workflow's definition as it ran, stored in Prefect.

A deployment's run needs the workflow document and its specification. Keeping them in a block
document means a worker only talks to Prefect: the REST layer can be down and runs still start.
One block document per workflow name and version (versions are immutable), named by
:func:`definition_block_name`; the deployment's entrypoint carries that name (see ``flows.entry``).
Runs started from a file in-process store their definition under the same name
(``flows.local_run``), so the analytics find every run's document in one place.

Each stored definition carries its signature (:mod:`trinity.core.signing`); what runs one loads
it with :func:`runnable_definition` (or :func:`verify_definition`), which refuses a definition
changed outside Trinity.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, ClassVar

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from pydantic import Field

from blocks.sinks import register_sink_block_types
from specs.models import Specification, Workflow
from trinity.core.config import configured_definition_key, load_settings
from trinity.core.signing import DefinitionChangedError, check_definition, sign_definition

BLOCK_TYPE_SLUG = "trinity-workflow"
ENTRYPOINT_PREFIX = "wf_"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_PAGE = 200


class DefinitionNotFoundError(LookupError):
    """No stored definition matches."""


class TrinityWorkflow(Block):
    """A Trinity workflow and its specification, as deployed (documents in their JSON form)."""

    _block_type_name: ClassVar[str] = "Trinity Workflow"
    _block_type_slug: ClassVar[str] = BLOCK_TYPE_SLUG
    _description: ClassVar[str] = (
        "A Trinity workflow version: its task DAG and the specification it implements. "
        "Written by `trinity deploy` and `trinity run FILE`; read when a deployed run starts "
        "and by the analytics."
    )

    workflow_name: str = Field(description="The workflow's name.")
    workflow_version: str = Field(description="The workflow's version (immutable).")
    workflow: dict[str, Any] = Field(description="The workflow document.")
    specification: dict[str, Any] = Field(description="The specification document it implements.")
    signature: str = Field(
        default="",
        description="HMAC-SHA256 of the above under Trinity's definition key; workers run nothing "
        "whose signature does not match.",
    )

    @classmethod
    def from_documents(
        cls, workflow: Workflow, specification: Specification, *, key: str | None = None
    ) -> TrinityWorkflow:
        """Build the block from validated documents, signed with ``key`` (unsigned without one)."""
        block = cls(
            workflow_name=workflow.name,
            workflow_version=workflow.version,
            workflow=workflow.model_dump(mode="json", by_alias=True, exclude_none=True),
            specification=specification.model_dump(mode="json", by_alias=True, exclude_none=True),
        )
        if key is not None:
            block.signature = sign_definition(key, **block._signed_fields())
        return block

    def _signed_fields(self) -> dict[str, Any]:
        values = (self.workflow_name, self.workflow_version, self.workflow, self.specification)
        return dict(zip(("name", "version", "workflow", "specification"), values, strict=True))

    def verify(self, key: str, *, block_name: str) -> TrinityWorkflow:
        """This definition, once its signature under ``key`` and its block name are checked
        (:class:`trinity.core.signing.DefinitionChangedError` otherwise)."""
        check_definition(key, self.signature, label=block_name, **self._signed_fields())
        if definition_block_name(self.workflow_name, self.workflow_version) != block_name:
            # Another workflow's (or version's) signed definition, copied under this block's name.
            raise DefinitionChangedError(
                f"definition {block_name} (workflow {self.workflow_name} {self.workflow_version}) "
                "was changed outside Trinity (it holds another workflow version's definition); "
                "not running it: deploy the workflow again from Trinity"
            )
        return self

    def workflow_model(self) -> Workflow:
        """The stored workflow document, validated again."""
        return Workflow.model_validate(self.workflow)

    def specification_model(self) -> Specification:
        """The stored specification document, validated again."""
        return Specification.model_validate(self.specification)


def definition_block_name(name: str, version: str) -> str:
    """The block document name for one workflow version.

    Block names allow only ``[a-z0-9-]`` while workflow names and versions also use ``.`` ``_``
    ``+``, so the readable slug is followed by a hash of the exact ``name@version``.
    """
    slug = _NOT_SLUG.sub("-", name.lower()).strip("-")[:60] or "workflow"
    digest = hashlib.sha256(f"{name}@{version}".encode()).hexdigest()[:12]
    return f"{slug}-{digest}"


def entrypoint_attribute(block_name: str) -> str:
    """The ``flows.entry`` attribute that loads the flow of a stored definition."""
    return ENTRYPOINT_PREFIX + block_name.replace("-", "_")


def block_name_from_attribute(attribute: str) -> str | None:
    """Reverse :func:`entrypoint_attribute` (None when ``attribute`` is not one)."""
    if not attribute.startswith(ENTRYPOINT_PREFIX):
        return None
    name = attribute[len(ENTRYPOINT_PREFIX) :].replace("_", "-")
    return name if re.fullmatch(r"[a-z0-9-]+", name) else None


async def register_block_types() -> None:
    """Register Trinity's block types and schemas with Prefect (idempotent): the workflow
    definition and the sinks."""
    await TrinityWorkflow.aregister_type_and_schema()
    await register_sink_block_types()


async def save_definition(*, workflow: Workflow, specification: Specification, key: str | None = None) -> str:
    """Store a workflow version's definition, signed with ``key`` (default: the configured one);
    returns the block document name.

    With no key at all the definition is stored unsigned: kept for the analytics, never run.
    """
    key = key or load_settings().security.definition_key
    name = definition_block_name(workflow.name, workflow.version)
    block = TrinityWorkflow.from_documents(workflow, specification, key=key)
    await block.asave(name, overwrite=True)
    return name


async def load_definition(block_name: str) -> TrinityWorkflow:
    """Load a stored definition by block document name (DefinitionNotFoundError when absent)."""
    try:
        return await TrinityWorkflow.aload(block_name)
    except ValueError as exc:
        raise DefinitionNotFoundError(f"no stored workflow definition '{block_name}'") from exc


async def runnable_definition(block_name: str) -> TrinityWorkflow:
    """A stored definition to run: loaded, and its signature checked under the configured key.

    Raises :class:`trinity.core.signing.DefinitionRefusedError` (no key, or changed outside Trinity).
    """
    key = configured_definition_key()
    return (await load_definition(block_name)).verify(key, block_name=block_name)


def verify_definition(definition: TrinityWorkflow, block_name: str) -> TrinityWorkflow:
    """``definition`` (stored as ``block_name``), its signature checked under the configured key."""
    return definition.verify(configured_definition_key(), block_name=block_name)


def load_definition_sync(block_name: str) -> TrinityWorkflow:
    """Load a stored definition with the synchronous client (for import-time loading)."""
    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name=block_name, block_type_slug=BLOCK_TYPE_SLUG)
        except ObjectNotFound as exc:
            raise DefinitionNotFoundError(f"no stored workflow definition '{block_name}'") from exc
    return TrinityWorkflow._from_block_document(document)


async def list_definitions(workflow_name: str) -> list[TrinityWorkflow]:
    """Every stored version of one workflow (in no particular order)."""
    found: list[TrinityWorkflow] = []
    async with get_client() as client:
        offset = 0
        while True:
            try:
                page = await client.read_block_documents_by_type(BLOCK_TYPE_SLUG, offset=offset, limit=_PAGE)
            except ObjectNotFound:
                return []
            for document in page:
                if document.data.get("workflow_name") == workflow_name:
                    found.append(TrinityWorkflow._from_block_document(document))
            if len(page) < _PAGE:
                return found
            offset += _PAGE
