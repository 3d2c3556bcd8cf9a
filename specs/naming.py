"""How Trinity's workflows and its own flows are named in Prefect.

Each workflow is its own Prefect flow, named after the workflow (:func:`flow_name_for`), with one
deployment named :data:`DEPLOYMENT_NAME` (``hello/trinity`` for a workflow ``hello``). Every run of
a workflow -- deployed, started from a file with ``trinity run``, or a child run of a ``workflow``
task -- carries the tags :func:`run_tags`: ``trinity`` and ``workflow:<name>``, which is how the
harvest tells workflow runs apart from everything else on the server.

Older versions ran every workflow as a deployment ``trinity-workflow/<name>`` of one flow
``trinity-workflow`` (:data:`LEGACY_FLOW_NAME`); deploying replaces such a deployment.
"""

from __future__ import annotations

from collections.abc import Iterable

DEPLOYMENT_NAME = "trinity"
TRINITY_TAG = "trinity"
WORKFLOW_TAG_PREFIX = "workflow:"
ANALYTICS_TAG = "trinity-analytics"
LEGACY_FLOW_NAME = "trinity-workflow"
HARVEST_FLOW = "trinity-analytics-harvest"
PERFORMANCE_FLOW = "trinity-performance-report"
INSIGHTS_FLOW = "trinity-insights-report"
# Trinity's own flows: a workflow of one of these names would share its flow and deployment.
RESERVED_FLOW_NAMES = frozenset({LEGACY_FLOW_NAME, HARVEST_FLOW, PERFORMANCE_FLOW, INSIGHTS_FLOW})


def flow_name_for(workflow: str) -> str:
    """The Prefect flow of a workflow: its own name (workflow names are valid flow names)."""
    return workflow


def deployment_full_name(workflow: str) -> str:
    """``<flow>/<deployment>`` of a workflow's deployment, as ``prefect deployment run`` takes it."""
    return f"{flow_name_for(workflow)}/{DEPLOYMENT_NAME}"


def legacy_deployment_full_name(workflow: str) -> str:
    """Where older versions deployed a workflow: ``trinity-workflow/<name>``."""
    return f"{LEGACY_FLOW_NAME}/{workflow}"


def workflow_tag(workflow: str) -> str:
    """The tag naming a workflow on its runs and deployment."""
    return f"{WORKFLOW_TAG_PREFIX}{workflow}"


def run_tags(workflow: str) -> list[str]:
    """The tags every run of a workflow carries."""
    return [TRINITY_TAG, workflow_tag(workflow)]


def workflow_from_tags(tags: Iterable[str] | None) -> str | None:
    """The workflow name in a ``workflow:<name>`` tag, if any."""
    for tag in tags or ():
        if tag.startswith(WORKFLOW_TAG_PREFIX) and len(tag) > len(WORKFLOW_TAG_PREFIX):
            return tag[len(WORKFLOW_TAG_PREFIX) :]
    return None


def reserved_name_problem(workflow: str) -> str | None:
    """Why a workflow cannot have this name (it is one of Trinity's own flows), or None."""
    if workflow in RESERVED_FLOW_NAMES:
        return f"workflow name '{workflow}' is reserved: Trinity's own Prefect flow has it"
    return None
