"""The analytics deployments on a real Prefect server: schedules, entrypoints, idempotence."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.flows import load_flow_from_entrypoint

from deployments.analytics import deploy_analytics_flows, schedule_options
from deployments.service import DeploymentError
from flows.analytics.flows import insights_report, performance_report
from trinity.core.config import load_settings

pytestmark = pytest.mark.anyio


async def test_deploys_both_flows_with_their_schedules(prefect_api: object) -> None:
    # From the configuration section, as `trinity run --deploy` reads it.
    options = schedule_options({"window_days": 14, "logs_dir": "/srv/LOGS"})
    refs = await deploy_analytics_flows(work_pool="analytics-pool", **options)

    assert [ref.full_name for ref in refs] == [
        "trinity-performance-report/trinity",
        "trinity-insights-report/trinity",
    ]
    async with get_client() as client:
        performance = await client.read_deployment(refs[0].id)
        insights = await client.read_deployment(refs[1].id)
        await client.read_work_pool("analytics-pool")
    assert [s.schedule.cron for s in performance.schedules] == ["0 * * * *"]
    assert [s.schedule.cron for s in insights.schedules] == ["0 6 * * *"]
    assert insights.schedules[0].schedule.timezone == "UTC"
    assert performance.work_pool_name == "analytics-pool"
    assert insights.parameters == {"logs_dir_path": "/srv/LOGS", "window_days": 14}
    assert performance.parameters == {"logs_dir_path": "/srv/LOGS"}
    assert insights.enforce_parameter_schema
    assert "window_days" in insights.parameter_openapi_schema["properties"]
    # The entrypoint is what a worker imports to run the deployment.
    assert load_flow_from_entrypoint(performance.entrypoint).name == performance_report.name
    assert load_flow_from_entrypoint(insights.entrypoint).name == insights_report.name


async def test_deploying_again_updates_in_place(prefect_api: object) -> None:
    first = await deploy_analytics_flows(work_pool="analytics-pool")

    again = await deploy_analytics_flows(
        work_pool="analytics-pool",
        performance_cron="*/15 * * * *",
        insights_cron="30 5 * * 1",
        timezone="Europe/Paris",
    )

    assert [ref.id for ref in again] == [ref.id for ref in first]
    async with get_client() as client:
        performance = await client.read_deployment(again[0].id)
        insights = await client.read_deployment(again[1].id)
    assert [s.schedule.cron for s in performance.schedules] == ["*/15 * * * *"]
    assert [(s.schedule.cron, s.schedule.timezone) for s in insights.schedules] == [
        ("30 5 * * 1", "Europe/Paris")
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"performance_cron": "every hour"}, "analytics.performance_cron: 'every hour' is not a cron"),
        ({"insights_cron": "0 25 * * *"}, "analytics.insights_cron"),
        ({"timezone": "Mars/Olympus"}, "analytics.timezone: 'Mars/Olympus'"),
    ],
)
async def test_bad_schedules_are_refused_before_anything_is_created(
    prefect_api: object, options: dict[str, str], message: str
) -> None:
    with pytest.raises(DeploymentError, match=message):
        await deploy_analytics_flows(work_pool="never-created-pool", **options)
    async with get_client() as client:
        pools = await client.read_work_pools()
    assert "never-created-pool" not in {pool.name for pool in pools}


def test_schedule_options_come_from_the_analytics_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    section = {"logs_dir": "LOGS", "window_days": 7, "performance_cron": "5 * * * *", "timezone": "UTC"}
    # A relative logs_dir is where `trinity report` run here writes: the worker gets it absolute.
    assert schedule_options(section) == {
        "performance_cron": "5 * * * *",
        "timezone": "UTC",
        "window_days": 7,
        "logs_dir": str(tmp_path / "LOGS"),
    }
    assert schedule_options({"logs_dir": "/srv/LOGS"}) == {"logs_dir": "/srv/LOGS"}
    assert schedule_options({}) == {}


def test_schedule_options_from_settings_take_only_what_was_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRINITY_LOGS_DIR", raising=False)
    config = tmp_path / "trinity.config.yml"
    config.write_text("analytics:\n  insights_cron: '0 7 * * *'\n  timezone: Europe/Paris\n")
    # Without analytics.logs_dir the worker keeps its own TRINITY_LOGS_DIR (the state folder's
    # LOGS under `trinity up`), as `trinity report` falls back to the state folder.
    assert schedule_options(load_settings(config).analytics) == {
        "insights_cron": "0 7 * * *",
        "timezone": "Europe/Paris",
    }
    config.write_text("analytics:\n  logs_dir: /srv/reports\n")
    assert schedule_options(load_settings(config).analytics) == {"logs_dir": "/srv/reports"}
    monkeypatch.setenv("TRINITY_LOGS_DIR", str(tmp_path / "from-env"))
    assert schedule_options(load_settings(config).analytics) == {"logs_dir": str(tmp_path / "from-env")}
