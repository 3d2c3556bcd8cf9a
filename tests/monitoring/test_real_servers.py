"""The sink writers against real Elasticsearch and InfluxDB 2.x servers, when their URLs are given
(neither installs on the reference machine; their wire format is checked in test_wire_formats.py).

* ``TRINITY_TEST_ES_URL`` (and ``TRINITY_TEST_ES_API_KEY``, or ``TRINITY_TEST_ES_USERNAME`` /
  ``TRINITY_TEST_ES_PASSWORD``);
* ``TRINITY_TEST_INFLUXDB2_URL`` with ``TRINITY_TEST_INFLUXDB2_TOKEN``, ``TRINITY_TEST_INFLUXDB2_ORG``,
  ``TRINITY_TEST_INFLUXDB2_BUCKET``.
"""

from __future__ import annotations

import os
import uuid

import pytest
from elasticsearch import Elasticsearch
from influxdb_client import InfluxDBClient

from blocks.sink_records import FIELD_KEYS
from blocks.sink_writers import ElasticsearchWriter, InfluxDBWriter, index_name
from tests.monitoring.records import execution_row, records_and_lines
from trinity.core.sink_settings import ElasticsearchSinkSettings, InfluxDBSinkSettings


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set: no real server to test against")
    return value


def test_real_elasticsearch_takes_templates_and_documents_once() -> None:
    url = _env("TRINITY_TEST_ES_URL")
    prefix = f"trinity-test-{uuid.uuid4().hex[:8]}"
    settings = ElasticsearchSinkSettings.model_validate(
        {
            "hosts": [url],
            "index_prefix": prefix,
            "api_key": os.environ.get("TRINITY_TEST_ES_API_KEY"),
            "username": os.environ.get("TRINITY_TEST_ES_USERNAME"),
            "password": os.environ.get("TRINITY_TEST_ES_PASSWORD"),
        }
    )
    records, lines = records_and_lines(execution_row(tasks=3), lines=2)
    writer = ElasticsearchWriter(settings)
    writer.write([*records, *lines])
    writer.write([*records, *lines])
    writer.close()
    client = Elasticsearch([url], **ElasticsearchWriter(settings)._client_options())
    try:
        client.indices.refresh(index=f"{prefix}-*")
        assert client.count(index=f"{prefix}-runs-*")["count"] == 4
        assert client.count(index=f"{prefix}-logs-*")["count"] == 2
        flow = records[0]
        found = client.get(index=index_name(prefix, flow), id=flow.id)["_source"]
        assert found["workflow"] == "orders"
        mapping = client.indices.get_mapping(index=index_name(prefix, flow))
        properties = next(iter(mapping.values()))["mappings"]["properties"]
        assert properties["flow_run_id"]["type"] == "keyword"
        assert properties["@timestamp"]["type"] == "date"
    finally:
        client.indices.delete(index=f"{prefix}-*")
        for family in ("runs", "logs"):
            client.indices.delete_index_template(name=f"{prefix}-{family}")
        client.close()


def test_real_influxdb2_takes_points_once() -> None:
    url = _env("TRINITY_TEST_INFLUXDB2_URL")
    token, org = _env("TRINITY_TEST_INFLUXDB2_TOKEN"), _env("TRINITY_TEST_INFLUXDB2_ORG")
    bucket = _env("TRINITY_TEST_INFLUXDB2_BUCKET")
    settings = InfluxDBSinkSettings.model_validate(
        {"url": url, "api": "v2", "org": org, "bucket": bucket, "token": token}
    )
    workflow = f"real-{uuid.uuid4().hex[:8]}"
    records, _ = records_and_lines(execution_row(workflow=workflow, tasks=3), lines=0)
    writer = InfluxDBWriter(settings)
    writer.write(records)
    writer.write(records)
    writer.close()
    flux = (
        f'from(bucket: "{bucket}") |> range(start: 2026-11-29T00:00:00Z, stop: 2026-12-03T00:00:00Z)'
        f' |> filter(fn: (r) => r.workflow == "{workflow}")'
    )
    with InfluxDBClient(url=url, token=token, org=org) as client:
        tables = client.query_api().query(flux)
    rows = [record.values for table in tables for record in table.records]
    assert {row["_field"] for row in rows} == {*FIELD_KEYS, "flow_run_id", "task_run"}
    # 1 flow run + 3 task runs, each field once.
    assert len([row for row in rows if row["_field"] == "attempt"]) == 4
