"""/api/v1/analytics: rows written by the analytics flows, filtered and paginated."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from api.models.analytics import AnalyticsFailureFamily, AnalyticsInsight, AnalyticsPerformance
from tests.analytics.factories import FAMILY_KEYS
from tests.api.support import ApiServer
from trinity.core.urls import normalise_url

DAY = datetime(2024, 3, 1, tzinfo=UTC)


def add_rows(api: ApiServer, rows: list[SQLModel]) -> None:
    """Write rows the way the analytics flows do: straight into the tables."""
    engine = sa.create_engine(normalise_url(api.settings.database_url))
    with Session(engine) as session:
        session.add_all(rows)
        session.commit()
    engine.dispose()


def seed(api: ApiServer) -> None:
    """Write rows the way the analytics flows do: straight into the tables."""
    rows: list[SQLModel] = []
    for day in range(5):
        start = DAY + timedelta(days=day)
        for workflow in ("orders", "billing"):
            rows.append(
                AnalyticsPerformance(
                    id=uuid.uuid4(),
                    workflow=workflow,
                    task_id=None,
                    window_start=start,
                    window_end=start + timedelta(days=1),
                    metrics={"runs": day + 1, "duration_p95_seconds": 10.5 * day, "success_rate": 1.0},
                )
            )
        rows.append(
            AnalyticsPerformance(
                workflow="orders",
                task_id="extract",
                window_start=start,
                window_end=start + timedelta(days=1),
                metrics={"duration_p95_seconds": 3.0},
            )
        )
    rows.append(
        AnalyticsInsight(
            workflow="orders",
            task_id="extract",
            window_start=DAY,
            window_end=DAY + timedelta(days=5),
            kind="bottleneck",
            title="extract is on the critical path 80% of the time",
            severity="warning",
            evidence={"share": 0.8},
            yaml_diff="-  retries: 0\n+  retries: 2\n",
        )
    )
    rows.append(
        AnalyticsInsight(
            workflow="billing",
            window_start=DAY,
            window_end=DAY + timedelta(days=5),
            kind="anomaly",
            title="duration spike",
            severity="critical",
            evidence={"z": 4.2},
        )
    )
    add_rows(api, rows)


def test_performance_filters_and_pages(api: ApiServer) -> None:
    seed(api)
    client = api.client()
    everything = client.get("/analytics/performance").json()
    assert everything["total"] == 15
    orders = client.get("/analytics/performance", params={"workflow": "orders"}).json()
    assert orders["total"] == 10
    run_level = client.get(
        "/analytics/performance", params={"workflow": "orders", "task_id": "extract"}
    ).json()
    assert run_level["total"] == 5
    assert all(item["task_id"] == "extract" for item in run_level["items"])
    window = client.get(
        "/analytics/performance",
        params={"workflow": "billing", "since": "2024-03-02T12:00:00Z", "until": "2024-03-04T00:00:00+00:00"},
    ).json()
    starts = sorted(item["window_start"] for item in window["items"])
    assert window["total"] == 2
    assert starts == ["2024-03-02T00:00:00Z", "2024-03-03T00:00:00Z"]
    page = client.get("/analytics/performance", params={"limit": 4, "offset": 12}).json()
    assert page["total"] == 15
    assert len(page["items"]) == 3
    newest = client.get("/analytics/performance", params={"workflow": "billing", "limit": 1}).json()["items"][
        0
    ]
    assert newest["window_start"] == "2024-03-05T00:00:00Z"
    assert newest["metrics"]["runs"] == 5


def test_insights_filters(api: ApiServer) -> None:
    seed(api)
    client = api.client()
    assert client.get("/analytics/insights").json()["total"] == 2
    critical = client.get("/analytics/insights", params={"severity": "critical"}).json()
    assert [item["title"] for item in critical["items"]] == ["duration spike"]
    bottleneck = client.get("/analytics/insights", params={"kind": "bottleneck", "workflow": "orders"}).json()
    item = bottleneck["items"][0]
    assert item["yaml_diff"].startswith("-  retries: 0")
    assert item["evidence"] == {"share": 0.8}
    assert item["task_id"] == "extract"
    later = client.get("/analytics/insights", params={"since": "2024-04-01T00:00:00Z"}).json()
    assert later["total"] == 0
    assert client.get("/analytics/insights", params={"severity": "huge"}).status_code == 422


def seed_daily_insights(api: ApiServer, days: int) -> None:
    """One one-day insight per day from DAY on, created in day order."""
    rows: list[SQLModel] = []
    for day in range(days):
        start = DAY + timedelta(days=day)
        rows.append(
            AnalyticsInsight(
                workflow="daily",
                window_start=start,
                window_end=start + timedelta(days=1),
                kind="trend",
                title=f"day {day}",
                severity="info",
                evidence={"day": day},
            )
        )
    add_rows(api, rows)


def test_insights_until_and_pages(api: ApiServer) -> None:
    seed(api)
    seed_daily_insights(api, 6)
    client = api.client()
    assert client.get("/analytics/insights").json()["total"] == 8

    # until keeps windows starting before it: the two 5-day windows (from DAY) and days 0-1.
    before = client.get("/analytics/insights", params={"until": "2024-03-03T00:00:00Z"}).json()
    assert before["total"] == 4
    assert sorted(item["title"] for item in before["items"] if item["workflow"] == "daily") == [
        "day 0",
        "day 1",
    ]
    bounded = client.get(
        "/analytics/insights",
        params={"workflow": "daily", "since": "2024-03-03T12:00:00Z", "until": "2024-03-05T00:00:00+00:00"},
    ).json()
    assert [item["title"] for item in bounded["items"]] == ["day 3", "day 2"]

    # Pages: newest window first, total counts every match whatever the page.
    first = client.get("/analytics/insights", params={"workflow": "daily", "limit": 4}).json()
    assert (first["total"], first["limit"], first["offset"]) == (6, 4, 0)
    assert [item["title"] for item in first["items"]] == ["day 5", "day 4", "day 3", "day 2"]
    last = client.get("/analytics/insights", params={"workflow": "daily", "limit": 4, "offset": 4}).json()
    assert (last["total"], len(last["items"])) == (6, 2)
    assert [item["title"] for item in last["items"]] == ["day 1", "day 0"]
    beyond = client.get("/analytics/insights", params={"limit": 4, "offset": 8}).json()
    assert (beyond["total"], beyond["items"]) == (8, [])
    assert client.get("/analytics/insights", params={"limit": 0}).status_code == 422


def seed_families(api: ApiServer) -> None:
    """Two daily windows of families, as the analytics flows write them."""
    rows: list[SQLModel] = []
    families = [
        (
            "fam-a",
            "ConnectionError: could not connect to <host>",
            40,
            ["billing", "orders"],
            ["billing/load", "orders/load"],
        ),
        ("fam-b", "KeyError: order <uuid> not found", 25, ["orders"], ["orders/extract"]),
        ("fam-c", "OSError: [Errno <n>] No space left on device", 15, ["billing_v2"], ["billing_v2/load"]),
    ]
    for day in range(2):
        start = DAY + timedelta(days=day)
        for family_id, signature, count, workflows, tasks in families:
            rows.append(
                AnalyticsFailureFamily(
                    family_id=family_id,
                    window_start=start,
                    window_end=start + timedelta(days=1),
                    signature=signature,
                    exception_type=signature.split(":")[0],
                    count=count + day,
                    flow_runs=count + day,
                    example=signature.replace("<host>", "db-1.example.com"),
                    workflows=workflows,
                    tasks=tasks,
                    first_seen=DAY,
                    last_seen=start + timedelta(hours=12),
                    flow_run_ids=[str(uuid.uuid4()) for _ in range(3)],
                    trend="steady",
                    is_new=day == 0,
                    details={"centroid_terms": ["connect"], "model": {"revision": day + 1}},
                )
            )
    add_rows(api, rows)


def test_failures_are_served_in_pages_newest_window_and_largest_first(api: ApiServer) -> None:
    seed_families(api)
    client = api.client()
    body = client.get("/analytics/failures").json()
    assert body["total"] == 6
    first = body["items"][0]
    assert list(first)[: len(FAMILY_KEYS)] == FAMILY_KEYS
    assert (first["family_id"], first["count"], first["new"]) == ("fam-a", 41, False)
    assert first["window_start"] == "2024-03-02T00:00:00Z"
    assert [item["count"] for item in body["items"]] == [41, 26, 16, 40, 25, 15]
    assert first["details"]["model"] == {"revision": 2}
    page = client.get("/analytics/failures", params={"limit": 2, "offset": 4}).json()
    assert (page["total"], [item["family_id"] for item in page["items"]]) == (6, ["fam-b", "fam-c"])
    assert page["items"][0]["new"] is True


def test_failures_filter_by_workflow_task_and_window(api: ApiServer) -> None:
    seed_families(api)
    client = api.client()
    orders = client.get("/analytics/failures", params={"workflow": "orders"}).json()
    assert {item["family_id"] for item in orders["items"]} == {"fam-a", "fam-b"}
    # "billing" matches billing, not billing_v2 (the '_' is no wildcard).
    billing = client.get("/analytics/failures", params={"workflow": "billing"}).json()
    assert {item["family_id"] for item in billing["items"]} == {"fam-a"}
    loads = client.get("/analytics/failures", params={"task_id": "load"}).json()
    assert {item["family_id"] for item in loads["items"]} == {"fam-a", "fam-c"}
    extract = client.get("/analytics/failures", params={"workflow": "orders", "task_id": "extract"}).json()
    assert [item["family_id"] for item in extract["items"]] == ["fam-b", "fam-b"]
    day_one = client.get("/analytics/failures", params={"until": "2024-03-02T00:00:00Z"}).json()
    assert day_one["total"] == 3
    assert client.get("/analytics/failures", params={"since": "yesterday"}).status_code == 422
    assert client.get("/analytics/failures", params={"limit": 501}).status_code == 422
