"""The Prefect automation that finds dead runs: no heartbeat for two intervals -> ``Crashed``.

Trinity's executors (and ``trinity run``) send ``prefect.flow-run.heartbeat`` events for every run
they hold (:mod:`flows.worker.heartbeat`). This automation, Prefect's documented pattern for
"zombie" flow runs, expects the next heartbeat -- or the run's end -- within two heartbeat
intervals after each one, for each flow run separately; when none comes, it proposes ``Crashed``.
Orchestration refuses that for a run that has already ended, so a late heartbeat can never turn a
finished run into a crashed one.

Only runs tagged ``trinity`` are watched (Prefect lists a run's tags among the related resources of
its heartbeats and state events): other flows on the same server keep Prefect's own behaviour.

``trinity deploy``, ``trinity up`` and workflow activation in the API install it through
:func:`ensure_crash_automation`: found by name, updated when it differs, created when missing;
copies made by concurrent installs are deleted, so there is always exactly one.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.logging.loggers import get_logger

from flows.worker.heartbeat import HEARTBEAT_EVENT, heartbeat_seconds

logger = get_logger("trinity.deployments.automations")

CRASH_AUTOMATION_NAME = "trinity-crash-runs-without-heartbeats"
WATCHED_TAG = "trinity"
# After a heartbeat, any of these ends the wait for the next one: the run ended, or it left its
# process on purpose (paused, suspended, rescheduled, handed back to the pool).
_ENDS_OF_HEARTBEATS = (
    "Completed",
    "Failed",
    "Cancelled",
    "Crashed",
    "Paused",
    "Suspended",
    "Scheduled",
    "AwaitingRetry",
)


def missed_heartbeats_window(interval: float) -> timedelta:
    """How long after a heartbeat the automation waits for the next: two intervals."""
    return timedelta(seconds=2 * interval)


def crash_automation(interval: float | None = None) -> AutomationCore:
    """The automation, for heartbeats every ``interval`` seconds (default: the configured one)."""
    interval = heartbeat_seconds() if interval is None else interval
    window = missed_heartbeats_window(interval)
    return AutomationCore(
        name=CRASH_AUTOMATION_NAME,
        description=(
            f"Installed by Trinity. Marks a flow run tagged '{WATCHED_TAG}' Crashed when no heartbeat "
            f"(sent every {interval:g}s by the process running it) has arrived for "
            f"{window.total_seconds():g}s: that process is gone."
        ),
        enabled=True,
        trigger=EventTrigger(
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification(
                {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{WATCHED_TAG}"}
            ),
            after={HEARTBEAT_EVENT},
            expect={HEARTBEAT_EVENT, *(f"prefect.flow-run.{name}" for name in _ENDS_OF_HEARTBEATS)},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=window,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=(
                    f"No heartbeat for {window.total_seconds():g}s: the process running this flow "
                    "run is gone (marked by Trinity's automation)."
                ),
            )
        ],
    )


async def ensure_crash_automation(
    client: PrefectClient | None = None, *, interval: float | None = None
) -> UUID:
    """Install the automation, or bring the installed one up to date; return its id."""
    if client is None:
        async with get_client() as own:
            return await ensure_crash_automation(own, interval=interval)
    wanted = crash_automation(interval)
    found = sorted(await client.read_automations_by_name(CRASH_AUTOMATION_NAME), key=lambda a: str(a.id))
    if not found:
        automation_id = await client.create_automation(wanted)
        logger.info("Installed the automation %r (%s)", CRASH_AUTOMATION_NAME, automation_id)
        # Two installs at the same moment may both have created one: keep the first by id.
        found = sorted(await client.read_automations_by_name(CRASH_AUTOMATION_NAME), key=lambda a: str(a.id))
        keep, extra = found[0], found[1:]
    else:
        keep, extra = found[0], found[1:]
        if _differs(keep, wanted):
            await client.update_automation(keep.id, wanted)
            logger.info("Updated the automation %r (%s)", CRASH_AUTOMATION_NAME, keep.id)
    for duplicate in extra:
        await client.delete_automation(duplicate.id)
    return keep.id


def _differs(current: AutomationCore, wanted: AutomationCore) -> bool:
    fields = {"name", "description", "enabled", "trigger", "actions"}
    return current.model_dump(mode="json", include=fields) != wanted.model_dump(mode="json", include=fields)
