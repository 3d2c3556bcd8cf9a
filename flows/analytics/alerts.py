"""A report's alerts as Prefect events, which Prefect automations turn into notifications.

Each :class:`~analytics.learning_model.Alert` becomes one event: its name is the alert's
(``trinity.slo.breached``, ``trinity.slo.forecast``, ``trinity.failure.new_family``,
``trinity.anomaly``, see :mod:`trinity.core.alerts`), its resource the workflow
(``trinity.workflow.<name>``), its related
resource the workflow's deployment when there is one (role ``deployment``), its payload the
finding. :mod:`deployments.alerts` installs the automations that react to them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.events.worker import EventsWorker
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL

from specs.naming import deployment_full_name
from trinity.core.alerts import workflow_resource_id

if TYPE_CHECKING:
    from analytics.learning_model import Alert

logger = logging.getLogger("trinity.analytics.alerts")


def workflow_resource(workflow: str) -> dict[str, str]:
    """The resource of a workflow's events."""
    return {"prefect.resource.id": workflow_resource_id(workflow), "prefect.resource.name": workflow}


async def _deployments(workflows: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """Workflow -> its deployment as a related resource (none for a workflow never deployed)."""
    related: dict[str, list[dict[str, str]]] = {}
    async with get_client() as client:
        for workflow in sorted(set(workflows)):
            try:
                deployment = await client.read_deployment_by_name(deployment_full_name(workflow))
            except ObjectNotFound:
                continue
            related[workflow] = [
                {
                    "prefect.resource.id": f"prefect.deployment.{deployment.id}",
                    "prefect.resource.role": "deployment",
                    "prefect.resource.name": deployment.name,
                }
            ]
    return related


async def emit_alerts(alerts: list[Alert]) -> int:
    """Emit one Prefect event per alert; returns how many were handed to Prefect's events worker."""
    if not alerts:
        return 0
    related = await _deployments(alert.workflow for alert in alerts)
    sent = 0
    for alert in alerts:
        event = emit_event(
            event=alert.event,
            resource=workflow_resource(alert.workflow),
            related=related.get(alert.workflow),
            payload=alert.payload,
        )
        sent += event is not None
    return sent


async def emit_report_alerts(report: Any) -> int:
    """Emit a report's alerts from a command (``trinity report``) and deliver them before it exits.

    Without a Prefect API nothing is sent (Prefect would otherwise start a throwaway server of its
    own to send them to); a failure to send is logged in one line and does not fail the report.
    """
    if not report.alerts:
        return 0
    if not PREFECT_API_URL.value():
        logger.warning(
            "no Prefect API configured: %d alert(s) of this report were not sent", len(report.alerts)
        )
        return 0
    try:
        sent = await emit_alerts(report.alerts)
        # Called from a running loop, Prefect hands back an awaitable to wait on.
        drained = EventsWorker.drain_all(timeout=30, at_exit=False)
        if inspect.isawaitable(drained):
            await drained
    except Exception as exc:  # the report itself is written: alerts are best effort here
        logger.warning("could not send %d alert(s) to Prefect: %s", len(report.alerts), exc)
        return 0
    return sent
