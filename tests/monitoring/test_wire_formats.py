"""Elasticsearch and InfluxDB 2.x on the wire, through the official clients, against local servers
that validate every request (no server of either installs here; see tests/support/wire_servers.py).
The same writers run against real servers in tests/monitoring/test_real_servers.py when their
URLs are given."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from blocks.sink_records import FIELD_KEYS
from blocks.sink_writers import ElasticsearchWriter, InfluxDBWriter, SinkError
from flows.monitoring.live import LiveSender
from tests.monitoring.records import execution_row, records_and_lines
from tests.support.wire_servers import FakeElasticsearch, FakeInfluxDB2, serving
from trinity.core.sink_settings import ElasticsearchSinkSettings, InfluxDBSinkSettings


@pytest.fixture
def elastic() -> Iterator[FakeElasticsearch]:
    with serving(FakeElasticsearch(api_key="k3y")) as server:
        assert isinstance(server, FakeElasticsearch)
        yield server


@pytest.fixture
def influx2() -> Iterator[FakeInfluxDB2]:
    with serving(FakeInfluxDB2(token="t0ken", org="ops", bucket="runs")) as server:
        assert isinstance(server, FakeInfluxDB2)
        yield server


def es_writer(server: FakeElasticsearch, prefix: str = "trinity") -> ElasticsearchWriter:
    return ElasticsearchWriter(
        ElasticsearchSinkSettings(hosts=[server.url], index_prefix=prefix, api_key=SecretStr("k3y"))
    )


def influx_writer(server: FakeInfluxDB2, precision: str = "ns") -> InfluxDBWriter:
    return InfluxDBWriter(
        InfluxDBSinkSettings.model_validate(
            {
                "url": server.url,
                "api": "v2",
                "org": "ops",
                "bucket": "runs",
                "token": "t0ken",
                "precision": precision,
            }
        )
    )


def test_elasticsearch_templates_daily_indices_and_ids(elastic: FakeElasticsearch) -> None:
    row = execution_row(tasks=3)
    records, lines = records_and_lines(row, lines=2)
    writer = es_writer(elastic)

    assert writer.write([*records, *lines]) == 6
    writer.close()

    assert elastic.problems == []
    assert set(elastic.templates) == {"trinity-runs", "trinity-logs"}
    runs = elastic.templates["trinity-runs"]
    assert runs["index_patterns"] == ["trinity-runs-*"]
    properties = runs["template"]["mappings"]["properties"]
    assert properties["flow_run_id"] == {"type": "keyword"}
    assert properties["workflow"] == {"type": "keyword"}
    assert properties["@timestamp"] == {"type": "date"}
    assert {key: properties[key]["type"] for key in FIELD_KEYS} == {
        "duration_s": "double",
        "queue_wait_s": "double",
        "cpu_s": "double",
        "max_rss_bytes": "long",
        "attempt": "integer",
        "retries": "integer",
    }
    assert elastic.templates["trinity-logs"]["template"]["mappings"]["properties"]["message"] == {
        "type": "text"
    }
    flow_run_id = str(row["flow_run_id"])
    # The flow run ended on 1 December, its tasks and lines on 30 November (UTC).
    assert set(elastic.in_index("trinity-runs-2026.12.01")) == {flow_run_id}
    tasks = elastic.in_index("trinity-runs-2026.11.30")
    assert len(tasks) == 3
    assert {doc["name"] for doc in tasks.values()} == {"load[0]", "load[1]", "load[2]"}
    assert {doc["task"] for doc in tasks.values()} == {"load"}
    flow = elastic.in_index("trinity-runs-2026.12.01")[flow_run_id]
    assert flow["kind"] == "flow_run"
    assert (flow["workflow"], flow["version"], flow["state"]) == ("orders", "2.0.0", "COMPLETED")
    assert (flow["deployment"], flow["work_pool"], flow["worker"]) == ("trinity", "pool-a", "w1")
    assert flow["queue_wait_s"] == 2.0
    assert flow["retries"] == 1
    logs = elastic.in_index("trinity-logs-2026.11.30")
    assert sorted(doc["message"] for doc in logs.values()) == ["line 0", "line 1"]
    assert {doc["workflow"] for doc in logs.values()} == {"orders"}


def test_elasticsearch_writing_twice_keeps_one_document_per_id(elastic: FakeElasticsearch) -> None:
    records, lines = records_and_lines(execution_row(tasks=2), lines=3)
    writer = es_writer(elastic)
    writer.write([*records, *lines])
    before = dict(elastic.documents)

    writer.write([*records, *lines])
    writer.close()

    assert elastic.problems == []
    assert elastic.documents == before
    assert len(before) == 6
    bulk_requests = [path for method, path, _ in elastic.requests if path == "/_bulk"]
    assert len(bulk_requests) == 2
    # Templates are installed once per writer.
    assert len([path for _, path, _ in elastic.requests if path.startswith("/_index_template/")]) == 2


def test_elasticsearch_down_is_one_line_sink_error(elastic: FakeElasticsearch) -> None:
    elastic.down = True
    records, _ = records_and_lines(execution_row(tasks=1), lines=0)

    with pytest.raises(SinkError) as caught:
        es_writer(elastic).write(records)

    message = str(caught.value)
    assert message.startswith(f"elasticsearch at {elastic.url}: ")
    assert "\n" not in message


@pytest.mark.parametrize(("precision", "divisor"), [("ns", 1), ("ms", 1_000_000), ("s", 1_000_000_000)])
def test_influxdb2_write_api_line_protocol_and_precision(
    influx2: FakeInfluxDB2, precision: str, divisor: int
) -> None:
    row = execution_row(tasks=3)
    records, lines = records_and_lines(row, lines=2)
    writer = influx_writer(influx2, precision)

    assert writer.write([*records, *lines]) == 4  # log lines are not metrics
    writer.write(records)
    writer.close()

    assert influx2.problems == []
    assert influx2.precisions == {precision}
    measurements = sorted(key[0] for key in influx2.points)
    if precision == "ns":
        # Fan-out items ending in one microsecond stay three points (a sub-microsecond offset).
        assert measurements == [
            "trinity_flow_run",
            "trinity_task_run",
            "trinity_task_run",
            "trinity_task_run",
        ]
    times = {key[2] for key in influx2.points}
    assert all(len(str(time)) == len(str(records[0].time_ns() // divisor)) for time in times)
    flow_key = next(key for key in influx2.points if key[0] == "trinity_flow_run")
    assert (
        flow_key[1]
        == ",deployment=trinity,state=COMPLETED,version=2.0.0,work_pool=pool-a,worker=w1,workflow=orders"
    )
    fields = dict(item.split("=") for item in influx2.points[flow_key].split(","))
    assert set(fields) == {*FIELD_KEYS, "flow_run_id"}
    assert fields["flow_run_id"] == f'"{row["flow_run_id"]}"'
    assert fields["attempt"] == "1i"
    assert fields["max_rss_bytes"] == "50000002i"
    assert float(fields["duration_s"]) == 4.0


def test_live_sender_keeps_failed_batches_drops_the_oldest_and_recovers(influx2: FakeInfluxDB2) -> None:
    influx2.down = True
    sender = LiveSender([influx_writer(influx2)], queue_size=10, batch_size=4, flush_interval_seconds=0.05)
    try:
        # A workflow each, so that no two points share a series and a time (InfluxDB would keep one).
        for number in range(6):
            records, _ = records_and_lines(execution_row(workflow=f"orders-{number}", tasks=1), lines=0)
            sender.put(records)  # 2 records each: 12 into a queue of 10
        assert not sender.flush(1.0)
        (status,) = sender.status()
        assert status["dropped"] == 2
        assert status["backlog"] == 10
        assert status["healthy"] is False
        assert status["last_error"].startswith(f"influxdb at {influx2.url}: ")

        influx2.down = False
        assert sender.flush(10.0)
        (status,) = sender.status()
        assert (status["backlog"], status["written"], status["healthy"]) == (0, 10, True)
        assert len(influx2.points) == 10
        assert influx2.problems == []
    finally:
        sender.close()
