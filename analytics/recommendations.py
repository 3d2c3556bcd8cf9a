"""Recommendations: every rule's proposals turned into document diffs a user can apply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from analytics.config import AnalysisConfig
from analytics.proposals import SEVERITY_ORDER, Proposal
from analytics.report_model import Recommendation, RetryProfile, WorkflowBottlenecks, observed_id
from analytics.rules_failures import failure_proposals
from analytics.rules_performance import cache_proposals, parallelism_proposal, timeout_proposals
from analytics.workflow_doc import DocInfo
from analytics.yaml_diff import REMOVE, apply_edits, unified_yaml_diff


def collect_proposals(
    *,
    docs: Mapping[str, DocInfo],
    tasks_by_workflow: Mapping[str, pd.DataFrame],
    profiles: list[RetryProfile],
    bottlenecks: list[WorkflowBottlenecks],
    config: AnalysisConfig,
) -> list[Proposal]:
    """Run every rule for every workflow that has a document."""
    parallel = {b.workflow: b.parallelism for b in bottlenecks}
    out: list[Proposal] = []
    for workflow in sorted(docs):
        tasks = tasks_by_workflow.get(workflow)
        if tasks is None or tasks.empty:
            continue
        doc = docs[workflow]
        own = [p for p in profiles if p.workflow == workflow]
        out += failure_proposals(workflow, doc, own, tasks, config=config)
        out += timeout_proposals(workflow, doc, tasks, config=config)
        out += cache_proposals(workflow, doc, tasks, config=config)
        proposal = parallelism_proposal(workflow, parallel.get(workflow), config=config)
        if proposal is not None:
            out.append(proposal)
    out.sort(key=lambda p: (SEVERITY_ORDER.get(p.severity, 9), p.workflow, p.kind, p.task_id or ""))
    return out


def to_recommendations(
    proposals: list[Proposal], documents: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Recommendation], dict[str, str]]:
    """Recommendations with one diff each, and one combined diff per workflow (all edits applied)."""
    recs: list[Recommendation] = []
    combined_edits: dict[str, list[Any]] = {}
    for p in proposals:
        before = documents[p.workflow]
        after = apply_edits(before, p.edits)
        recs.append(
            Recommendation(
                id=observed_id(p.kind, p.workflow, p.task_id),
                workflow=p.workflow,
                task_id=p.task_id,
                kind=p.kind,
                title=p.title,
                evidence=p.evidence,
                expected_effect=p.expected_effect,
                yaml_diff=unified_yaml_diff(before, after, name=p.workflow),
                severity=p.severity,
                changes={e.describe(): (None if e.value is REMOVE else e.value) for e in p.edits},
            )
        )
        combined_edits.setdefault(p.workflow, []).extend(p.edits)
    combined = {
        wf: unified_yaml_diff(documents[wf], apply_edits(documents[wf], edits), name=wf)
        for wf, edits in sorted(combined_edits.items())
    }
    return recs, combined
