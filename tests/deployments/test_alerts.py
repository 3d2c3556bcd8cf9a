"""Automations compiled from success metrics, on a real Prefect server that evaluates them.

The test server runs Prefect's triggers and actions services (``prefect server start`` starts
them), so the automations really fire: a run held Running past its target triggers the proactive
one, an analytics event the reactive ones, and the notification reaches a local HTTP server through
a ``CustomWebhookNotificationBlock``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import DoNothing, PauseDeployment, SendNotification
from prefect.events.schemas.automations import AutomationCore
from prefect.states import Completed, Running

from analytics.learning_model import Alert
from deployments.alerts import SUBJECT_MARK, automation_name
from deployments.service import DeploymentError, deploy_workflow
from flows.analytics.alerts import emit_alerts
from specs.models import Specification
from tests.flows.factories import workflow
from tests.support.events import Webhook, read_events, wait_for, webhook_server
from tests.support.servers import PrefectServer
from trinity.core.alerts import SLO_BREACHED

pytestmark = pytest.mark.anyio

POOL = "alerts-tests"
EVERY = {"running-too-long", "slo-breached", "slo-forecast", "new-failure-family", "anomaly"}


def _spec(name: str, **metrics: float) -> Specification:
    return Specification.model_validate(
        {"kind": "Specification", "name": name, "version": "1.0.0", "success_metrics": metrics}
    )


def _workflow(name: str) -> Any:
    return workflow([{"id": "only", "uses": "noop"}], name=name, spec_name=name)


def _configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **alerts: Any) -> None:
    path = tmp_path / "trinity.config.yml"
    path.write_text(yaml.safe_dump({"alerts": alerts}))
    monkeypatch.setenv("TRINITY_CONFIG", str(path))


async def _automations(name: str) -> dict[str, Any]:
    async with get_client() as client:
        found = await client.read_automations()
    prefix = automation_name(name, "")
    return {a.name.removeprefix(prefix): a for a in found if a.name.startswith(prefix)}


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_server() as hook:
        yield hook


async def _block(hook: Webhook) -> str:
    name = f"hook-{uuid.uuid4().hex[:8]}"
    block = CustomWebhookNotificationBlock(
        name="trinity-tests",
        url=hook.url,
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        allow_private_urls=True,  # the local test server
    )
    await block.save(name)
    return f"custom-webhook/{name}"


async def test_deploying_twice_installs_each_automation_once(
    prefect_api: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> None:
    name = f"alerted-{uuid.uuid4().hex[:6]}"
    _configure(tmp_path, monkeypatch, notify_block=await _block(webhook), running_multiple=2)
    spec = _spec(name, duration_p95_seconds=30, success_rate_min=0.95)

    ref = await deploy_workflow(workflow=_workflow(name), specification=spec, work_pool=POOL)
    first = await _automations(name)
    await deploy_workflow(workflow=_workflow(name), specification=spec, work_pool=POOL)
    second = await _automations(name)

    assert set(first) == EVERY
    assert {k: a.id for k, a in second.items()} == {k: a.id for k, a in first.items()}
    proactive = second["running-too-long"].trigger
    assert proactive.posture == "Proactive"
    assert proactive.within == dt.timedelta(seconds=60)  # 30 s x 2
    assert proactive.after == {"prefect.flow-run.Running"}
    assert proactive.match_related.model_dump() == {
        "prefect.resource.role": "deployment",
        "prefect.resource.id": f"prefect.deployment.{ref.id}",
    }
    breached = second["slo-breached"].trigger
    assert breached.expect == {SLO_BREACHED}
    assert breached.match.model_dump() == {"prefect.resource.id": f"trinity.workflow.{name}"}
    for automation in second.values():
        (action,) = automation.actions
        assert isinstance(action, SendNotification)
        assert action.subject.startswith(SUBJECT_MARK)


async def test_actions_added_in_the_ui_stay_and_stale_automations_go(
    prefect_api: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"edited-{uuid.uuid4().hex[:6]}"
    _configure(tmp_path, monkeypatch)
    ref = await deploy_workflow(
        workflow=_workflow(name), specification=_spec(name, duration_p95_seconds=30), work_pool=POOL
    )
    installed = await _automations(name)
    assert set(installed) == EVERY
    assert all(isinstance(a.actions[0], DoNothing) for a in installed.values())
    # What someone does in the Prefect UI: add an action, switch one automation off.
    anomaly = installed["anomaly"]
    added = PauseDeployment(source="selected", deployment_id=ref.id)
    edited = AutomationCore.model_validate(
        anomaly.model_dump(mode="json", exclude={"owner_resource"})
        | {"actions": [added.model_dump(mode="json")]}
    )
    async with get_client() as client:
        await client.update_automation(anomaly.id, edited)
        await client.pause_automation(installed["new-failure-family"].id)

    await deploy_workflow(workflow=_workflow(name), specification=_spec(name), work_pool=POOL)

    after = await _automations(name)
    assert set(after) == {"new-failure-family", "anomaly"}  # no success metric: no SLO automations
    assert after["anomaly"].actions == [added]
    assert after["new-failure-family"].enabled is False


async def test_a_notify_block_that_is_not_there_is_named(
    prefect_api: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"misconfigured-{uuid.uuid4().hex[:6]}"
    for value, message in (
        ("custom-webhook/nope", "alerts.notify_block: Prefect has no 'custom-webhook' block named 'nope'"),
        ("nope", "alerts.notify_block: expected '<block type slug>/<block name>'"),
    ):
        _configure(tmp_path, monkeypatch, notify_block=value)
        with pytest.raises(DeploymentError) as raised:
            await deploy_workflow(workflow=_workflow(name), specification=_spec(name), work_pool=POOL)
        assert str(raised.value).startswith(message)


async def test_a_run_held_past_its_target_fires_the_proactive_trigger(
    prefect_api: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> None:
    name = f"held-{uuid.uuid4().hex[:6]}"
    _configure(tmp_path, monkeypatch, notify_block=await _block(webhook))
    spec = _spec(name, duration_p95_seconds=10)
    ref = await deploy_workflow(workflow=_workflow(name), specification=spec, work_pool=POOL)
    automation = (await _automations(name))["running-too-long"]
    started = dt.datetime.now(dt.UTC)
    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(ref.id)
        # Held: Running, and nothing finishes it.
        await client.set_flow_run_state(run.id, Running(), force=True)
        try:
            message = await anyio.to_thread.run_sync(lambda: webhook.next(timeout=90))
        finally:
            await client.set_flow_run_state(run.id, Completed(), force=True)
        state = (await client.read_flow_run(run.id)).state

    assert message["subject"] == f"{SUBJECT_MARK} {name}: a run is Running longer than 10 s"
    assert f"Flow run {run.name} (prefect.flow-run.{run.id}) of {name}" in message["body"]
    triggered = await anyio.to_thread.run_sync(
        lambda: wait_for(
            lambda: read_events(
                prefect_api.api_url,
                names=["prefect.automation.triggered"],
                resource_id=f"prefect.automation.{automation.id}",
                since=started,
            ),
            timeout=30,
            what="prefect.automation.triggered event",
        )
    )
    # It fired for the run that was held, on the event that started the wait.
    payload = triggered[0]["payload"]
    assert payload["triggering_labels"] == {"prefect.resource.id": f"prefect.flow-run.{run.id}"}
    assert payload["triggering_event"]["event"] == "prefect.flow-run.Running"
    assert state is not None
    assert state.type == StateType.COMPLETED


async def test_an_analytics_event_notifies_with_the_finding(
    prefect_api: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> None:
    name = f"breaching-{uuid.uuid4().hex[:6]}"
    _configure(tmp_path, monkeypatch, notify_block=await _block(webhook))
    await deploy_workflow(
        workflow=_workflow(name), specification=_spec(name, success_rate_min=0.99), work_pool=POOL
    )
    payload = {
        "metric": "success_rate_min",
        "target": 0.99,
        "observed": 0.9,
        "basis": "completed share of 10 finished run(s)",
        "window_start": "2026-01-01T00:00:00+00:00",
        "window_end": "2026-01-02T00:00:00+00:00",
    }
    assert await emit_alerts([Alert(SLO_BREACHED, name, f"{name}/success_rate_min", payload)]) == 1

    message = await anyio.to_thread.run_sync(lambda: webhook.next(timeout=60))
    assert message["subject"] == f"{SUBJECT_MARK} {name} breaches success_rate_min"
    assert message["body"].startswith(
        f"{name} breaches success_rate_min: 0.9 against a target of 0.99 (completed share of 10"
    )
