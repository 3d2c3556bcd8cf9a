"""Alerts compiled from a specification: Prefect automations, installed with the deployment.

For each workflow, named ``trinity:<workflow>:<what>``:

* ``running-too-long`` (when the spec sets ``duration_p95_seconds``) -- proactive: a run of the
  workflow's deployment that went Running and has not finished (Completed, Failed, Cancelled,
  Crashed) within ``duration_p95_seconds`` times ``alerts.running_multiple`` (at least the 10 s
  Prefect allows);
* ``slo-breached``, ``slo-forecast`` (when the spec sets any success metric),
  ``new-failure-family`` and ``anomaly`` -- reactive: one of the events the analytics emit
  (:mod:`flows.analytics.alerts`) about this workflow.

Each one notifies through ``alerts.notify_block`` when it names a Prefect notification block
(``<block type slug>/<block name>`` or its id); without one, it fires (and shows in the Prefect
UI) with nothing to do until an action is added there. Installing is idempotent: automations are
found by name, updated in place when they differ (keeping actions added in the UI and whether
they were switched off), created when missing, and Trinity's automations of the workflow that no
longer apply are deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.events.actions import DoNothing, SendNotification
from prefect.events.filters import AutomationFilter, AutomationFilterName
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectNotFound
from prefect.logging.loggers import get_logger

from specs.models import Specification, Workflow
from trinity.core.alerts import ANOMALY, NEW_FAILURE_FAMILY, SLO_BREACHED, SLO_FORECAST, workflow_resource_id
from trinity.core.config import load_settings

logger = get_logger("trinity.deployments.alerts")

PREFIX = "trinity:"
RUNNING_TOO_LONG = "running-too-long"
# Trinity's own notification action is told apart from actions added in the UI by its subject.
SUBJECT_MARK = "[trinity]"
_MIN_PROACTIVE = timedelta(seconds=10)
_READ_LIMIT = 200  # a workflow has five automations at most; duplicates are cleaned up
_ENDS = ("Completed", "Failed", "Cancelled", "Crashed")
_SLO_METRICS = ("duration_p95_seconds", "success_rate_min", "max_queue_wait_seconds")
_REACTIVE: dict[str, tuple[str, str, str]] = {
    # what -> (event, subject, body)
    "slo-breached": (
        SLO_BREACHED,
        "{{ event.resource.name }} breaches {{ event.payload.metric }}",
        "{{ event.resource.name }} breaches {{ event.payload.metric }}: {{ event.payload.observed }} "
        "against a target of {{ event.payload.target }} ({{ event.payload.basis }}), window "
        "{{ event.payload.window_start }} to {{ event.payload.window_end }}.",
    ),
    "slo-forecast": (
        SLO_FORECAST,
        "{{ event.resource.name }} {{ event.payload.metric }} heads for a breach",
        "At this rate {{ event.resource.name }} {{ event.payload.metric }} reaches "
        "{{ event.payload.target }} around {{ event.payload.breach_expected_at }} (between "
        "{{ event.payload.low }} and {{ event.payload.high }}); now {{ event.payload.current }}.",
    ),
    "new-failure-family": (
        NEW_FAILURE_FAMILY,
        "New kind of failure in {{ event.resource.name }}",
        "{{ event.payload.count }} failure(s) in {{ event.payload.tasks | join(', ') }}: "
        "{{ event.payload.signature }}\nExample: {{ event.payload.example }}",
    ),
    "anomaly": (
        ANOMALY,
        "{{ event.resource.name }}/{{ event.payload.task }} ran unlike itself",
        "Flow run {{ event.payload.flow_run_id }} ({{ event.payload.task_run_name }}), score "
        "{{ event.payload.score }}:{% for f in event.payload.features %} {{ f.name }} {{ f.value }} "
        "(baseline {{ f.baseline }});{% endfor %}",
    ),
}


def automation_name(workflow: str, what: str) -> str:
    """``trinity:<workflow>:<what>``."""
    return f"{PREFIX}{workflow}:{what}"


def _notify(block_id: UUID | None, subject: str, body: str) -> list[Any]:
    if block_id is None:
        return []
    return [SendNotification(block_document_id=block_id, subject=f"{SUBJECT_MARK} {subject}", body=body)]


def running_too_long(
    workflow: str, deployment_id: UUID, target_seconds: float, multiple: float, block_id: UUID | None
) -> AutomationCore:
    """The proactive automation: a run of the deployment Running past its duration target."""
    limit = max(timedelta(seconds=target_seconds * multiple), _MIN_PROACTIVE)
    seconds = f"{limit.total_seconds():g}"
    return AutomationCore(
        name=automation_name(workflow, RUNNING_TOO_LONG),
        description=(
            f"Installed by Trinity from the spec of {workflow}: a run of its deployment has been Running "
            f"for more than {seconds} s (duration_p95_seconds {target_seconds:g} x {multiple:g})."
        ),
        tags=["trinity", f"workflow:{workflow}"],
        trigger=EventTrigger(
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification(
                {
                    "prefect.resource.role": "deployment",
                    "prefect.resource.id": f"prefect.deployment.{deployment_id}",
                }
            ),
            after={"prefect.flow-run.Running"},
            expect={f"prefect.flow-run.{state}" for state in _ENDS},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=limit,
        ),
        actions=_notify(
            block_id,
            f"{workflow}: a run is Running longer than {seconds} s",
            f"Flow run {{{{ event.resource.name }}}} ({{{{ event.resource.id }}}}) of {workflow} has been "
            f"Running for more than {seconds} s; the spec's duration_p95_seconds is {target_seconds:g}.",
        ),
    )


def reactive(workflow: str, what: str, block_id: UUID | None) -> AutomationCore:
    """A reactive automation on one kind of analytics event about the workflow."""
    event, subject, body = _REACTIVE[what]
    return AutomationCore(
        name=automation_name(workflow, what),
        description=f"Installed by Trinity: fires on every {event} event about {workflow}.",
        tags=["trinity", f"workflow:{workflow}"],
        trigger=EventTrigger(
            match=ResourceSpecification({"prefect.resource.id": workflow_resource_id(workflow)}),
            expect={event},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=_notify(block_id, subject, body),
    )


def alert_automations(
    *,
    workflow: str,
    success_metrics: Mapping[str, Any],
    deployment_id: UUID,
    block_id: UUID | None,
    running_multiple: float,
) -> list[AutomationCore]:
    """The automations a workflow's success metrics compile to (pure; see the module docs)."""
    out: list[AutomationCore] = []
    target = success_metrics.get("duration_p95_seconds")
    if isinstance(target, int | float) and not isinstance(target, bool) and target > 0:
        out.append(running_too_long(workflow, deployment_id, float(target), running_multiple, block_id))
    kinds = ["new-failure-family", "anomaly"]
    if any(metric in success_metrics for metric in _SLO_METRICS):
        kinds = ["slo-breached", "slo-forecast", *kinds]
    out += [reactive(workflow, what, block_id) for what in kinds]
    return out


def _config_error(message: str) -> Exception:
    # deployments.service installs these automations from deploy_workflow; importing it at the top
    # of this module would be an import cycle.
    from deployments.service import DeploymentError

    return DeploymentError(f"alerts.notify_block: {message}")


async def notify_block_id(client: PrefectClient, reference: str) -> UUID:
    """The id of the notification block ``reference`` names (``<type slug>/<name>`` or an id)."""
    try:
        document = await client.read_block_document(UUID(reference), include_secrets=False)
    except ValueError:
        slug, _, name = reference.partition("/")
        if not slug or not name:
            raise _config_error(
                f"expected '<block type slug>/<block name>' (e.g. 'slack-webhook/ops') or a block "
                f"document id, got {reference!r}"
            ) from None
        try:
            document = await client.read_block_document_by_name(name, slug, include_secrets=False)
        except ObjectNotFound:
            raise _config_error(f"Prefect has no {slug!r} block named {name!r}") from None
    except ObjectNotFound:
        raise _config_error(f"Prefect has no block document with id {reference}") from None
    capabilities = document.block_schema.capabilities if document.block_schema else []
    if "notify" not in capabilities:
        raise _config_error(f"{reference!r} is not a notification block (it cannot notify)")
    return document.id


def _is_ours(action: Any) -> bool:
    return isinstance(action, SendNotification) and action.subject.startswith(SUBJECT_MARK)


def _merged(current: AutomationCore, wanted: AutomationCore) -> AutomationCore:
    """``wanted`` with the actions added to ``current`` in the UI, and its on/off switch."""
    kept = [a for a in current.actions if not _is_ours(a) and not isinstance(a, DoNothing)]
    actions = [*wanted.actions, *kept] or [DoNothing()]
    return wanted.model_copy(update={"actions": actions, "enabled": current.enabled})


def _every_field_set(automation: AutomationCore) -> AutomationCore:
    """The same automation with every field marked as set: the client sends an update without the
    fields left at their defaults, and the server cannot tell the trigger and action types apart
    without theirs. (``owner_resource`` stays unset: an update may not carry it.)"""
    return AutomationCore.model_validate(automation.model_dump(mode="json", exclude={"owner_resource"}))


def _comparable(automation: AutomationCore) -> dict[str, Any]:
    data = automation.model_dump(
        mode="json", include={"name", "description", "enabled", "tags", "trigger", "actions"}
    )
    for key in ("after", "expect", "for_each"):  # sets: the server may list them in any order
        data["trigger"][key] = sorted(data["trigger"].get(key) or [])
    return data


def _differs(current: AutomationCore, wanted: AutomationCore) -> bool:
    return _comparable(current) != _comparable(wanted)


async def _installed(client: PrefectClient, workflow: str) -> dict[str, list[Any]]:
    """Trinity's automations of the workflow, by name (oldest id first)."""
    names = [automation_name(workflow, what) for what in (RUNNING_TOO_LONG, *_REACTIVE)]
    found: dict[str, list[Any]] = {}
    wanted = AutomationFilter(name=AutomationFilterName(any_=names))
    for automation in await client.read_automations(automations=wanted, limit=_READ_LIMIT):
        found.setdefault(automation.name, []).append(automation)
    return {name: sorted(items, key=lambda a: str(a.id)) for name, items in found.items()}


async def install_alert_automations(
    client: PrefectClient, automations: list[AutomationCore], *, workflow: str
) -> list[UUID]:
    """Create, update or delete so that exactly ``automations`` exist for the workflow."""
    installed = await _installed(client, workflow)
    ids: list[UUID] = []
    for automation in automations:
        existing = installed.pop(automation.name, [])
        if not existing:
            created = automation.model_copy(update={"actions": automation.actions or [DoNothing()]})
            ids.append(await client.create_automation(created))
            logger.info("Installed the automation %r", automation.name)
            continue
        keep, *extra = existing
        wanted = _merged(keep, automation)
        if _differs(keep, wanted):
            await client.update_automation(keep.id, _every_field_set(wanted))
            logger.info("Updated the automation %r", automation.name)
        for duplicate in extra:
            await client.delete_automation(duplicate.id)
        ids.append(keep.id)
    for stale in installed.values():
        for automation in stale:
            await client.delete_automation(automation.id)
            logger.info("Deleted the automation %r: the spec no longer asks for it", automation.name)
    return ids


async def ensure_alert_automations(
    *, workflow: Workflow, specification: Specification, deployment_id: UUID
) -> list[UUID]:
    """Compile the spec's success metrics into the workflow's automations and install them
    (``alerts.notify_block`` and ``alerts.running_multiple`` from the configuration)."""
    settings = load_settings().alerts
    async with get_client() as client:
        block_id = await notify_block_id(client, settings.notify_block) if settings.notify_block else None
        automations = alert_automations(
            workflow=workflow.name,
            success_metrics=specification.success_metrics.model_dump(exclude_none=True),
            deployment_id=deployment_id,
            block_id=block_id,
            running_multiple=settings.running_multiple,
        )
        return await install_alert_automations(client, automations, workflow=workflow.name)
