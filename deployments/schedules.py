"""A workflow's ``schedule`` as a Prefect deployment schedule."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

from specs.models import Schedule

PrefectSchedule = CronSchedule | IntervalSchedule | RRuleSchedule

# Interval schedules count from an anchor. Prefect defaults it to "now", which would shift the
# run times on every redeploy; a fixed anchor keeps deploys idempotent.
INTERVAL_ANCHOR = dt.datetime(2020, 1, 1)


def to_prefect_schedule(schedule: Schedule) -> PrefectSchedule:
    """The Prefect schedule object for a validated schedule."""
    if schedule.cron is not None:
        return CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    if schedule.interval_seconds is not None:
        return IntervalSchedule(
            interval=dt.timedelta(seconds=schedule.interval_seconds),
            anchor_date=INTERVAL_ANCHOR.replace(tzinfo=ZoneInfo(schedule.timezone)),
            timezone=schedule.timezone,
        )
    assert schedule.rrule is not None
    return RRuleSchedule(rrule=schedule.rrule, timezone=schedule.timezone)


def deployment_schedules(schedule: Schedule | None) -> list[DeploymentScheduleCreate]:
    """The deployment's schedule list (empty when the workflow has none)."""
    if schedule is None:
        return []
    return [DeploymentScheduleCreate(schedule=to_prefect_schedule(schedule), active=schedule.active)]


def schedule_yaml(schedule: Schedule) -> dict[str, object]:
    """The schedule as a ``prefect.yaml`` entry."""
    entry: dict[str, object] = {}
    if schedule.cron is not None:
        entry["cron"] = schedule.cron
    elif schedule.interval_seconds is not None:
        entry["interval"] = schedule.interval_seconds
        entry["anchor_date"] = INTERVAL_ANCHOR.replace(tzinfo=ZoneInfo(schedule.timezone)).isoformat()
    else:
        entry["rrule"] = schedule.rrule
    entry["timezone"] = schedule.timezone
    entry["active"] = schedule.active
    return entry
