"""Pair each workflow with the specification it implements, among loaded documents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from specs.models import Document, Specification, Workflow
from specs.versions import VersionError, best_match


@dataclass(frozen=True)
class Pairing:
    """Workflows with their specifications, and one message per workflow left without one."""

    pairs: list[tuple[Workflow, Specification]]
    missing: list[str]


def specification_for(workflow: Workflow, specifications: Iterable[Specification]) -> Specification | None:
    """The highest-versioned specification with the workflow's spec name inside its version range."""
    candidates = {spec.version: spec for spec in specifications if spec.name == workflow.spec.name}
    try:
        chosen = best_match(candidates, workflow.spec.version)
    except VersionError:
        return None
    return candidates[chosen] if chosen is not None else None


def pair_documents(documents: Iterable[Document]) -> Pairing:
    """Pair every workflow in ``documents`` with its specification (also from ``documents``)."""
    documents = list(documents)
    specifications = [doc for doc in documents if isinstance(doc, Specification)]
    pairs: list[tuple[Workflow, Specification]] = []
    missing: list[str] = []
    for workflow in (doc for doc in documents if isinstance(doc, Workflow)):
        specification = specification_for(workflow, specifications)
        if specification is None:
            missing.append(
                f"workflow '{workflow.name}' {workflow.version}: no specification "
                f"'{workflow.spec.name}' matching '{workflow.spec.version}' in the given files"
            )
        else:
            pairs.append((workflow, specification))
    return Pairing(pairs=pairs, missing=missing)
