"""The alerts contract: the events the analytics raise, and the resource they are about.

The analytics decide what to alert on (:mod:`analytics.alerts`), the analytics flows emit these
events (:mod:`flows.analytics.alerts`) and ``trinity deploy`` installs automations that react to
them (:mod:`deployments.alerts`); all three take the names from here.
"""

from __future__ import annotations

SLO_BREACHED = "trinity.slo.breached"
SLO_FORECAST = "trinity.slo.forecast"
NEW_FAILURE_FAMILY = "trinity.failure.new_family"
ANOMALY = "trinity.anomaly"
ALERT_EVENTS = (SLO_BREACHED, SLO_FORECAST, NEW_FAILURE_FAMILY, ANOMALY)

WORKFLOW_RESOURCE_PREFIX = "trinity.workflow."


def workflow_resource_id(workflow: str) -> str:
    """The id of the Prefect resource a workflow's alert events are about."""
    return f"{WORKFLOW_RESOURCE_PREFIX}{workflow}"
