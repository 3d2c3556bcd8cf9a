"""The Grafana dashboards in docs/grafana: import-ready JSON that asks only for what Trinity writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from blocks.sink_records import FIELD_KEYS, FLOW_RUN_MEASUREMENT, TAG_KEYS, TASK_RUN_MEASUREMENT
from trinity.core import metrics

DOCS = Path(__file__).resolve().parents[2] / "docs" / "grafana"


def _targets(name: str) -> tuple[dict[str, object], list[dict[str, str]]]:
    dashboard = json.loads((DOCS / name).read_text())
    return dashboard, [target for panel in dashboard["panels"] for target in panel["targets"]]


def test_prometheus_dashboard_uses_only_trinity_metrics() -> None:
    dashboard, targets = _targets("trinity-prometheus.json")
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    used = {name for target in targets for name in re.findall(r"\btrinity_[a-z_]+", target["expr"])}
    assert used
    described = {family.name for family in metrics.OURS.collect()}
    for name in used:
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert base in described, name


def test_influxdb_dashboard_uses_only_the_measurements_tags_and_fields() -> None:
    dashboard, targets = _targets("trinity-influxdb.json")
    assert dashboard["__inputs"][0]["pluginId"] == "influxdb"
    known = {*FIELD_KEYS, *TAG_KEYS}
    for target in targets:
        query = target["query"]
        assert re.search(rf'FROM "({FLOW_RUN_MEASUREMENT}|{TASK_RUN_MEASUREMENT})"', query), query
        for name in re.findall(r'"([a-z_]+)"', query):
            assert name in known or name in (FLOW_RUN_MEASUREMENT, TASK_RUN_MEASUREMENT), (name, query)
