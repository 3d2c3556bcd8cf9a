"""The sink harvest against a real (SQLite) Trinity database and a local InfluxDB 2.x wire server:
per-sink cursor, a sink that is down keeps its cursor, idempotent points."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from api.db import migrate
from blocks.sink_writers import InfluxDBWriter
from flows.analytics.database import migrated_tables, open_engine, read_watermark
from flows.monitoring.harvest import cursor_name, harvest_sinks
from flows.recording import write_execution_log
from tests.monitoring.records import execution_row
from tests.support.wire_servers import FakeInfluxDB2, serving
from trinity.core.sink_settings import InfluxDBSinkSettings, SinksSettings

pytestmark = pytest.mark.anyio


async def test_down_sink_keeps_its_cursor_then_gets_every_point_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trinity.db'}"
    migrate(url)
    rows = [execution_row(tasks=2) for _ in range(3)]
    for index, row in enumerate(rows):
        row["ended_at"] = row["ended_at"] + dt.timedelta(minutes=index)
        assert write_execution_log({**row, "id": uuid.uuid4(), "workflow_id": None}, url=url)
    engine = open_engine(url)
    tables = migrated_tables(engine)
    with serving(FakeInfluxDB2(token="t", org="o", bucket="b", down=True)) as server:
        assert isinstance(server, FakeInfluxDB2)
        settings = InfluxDBSinkSettings.model_validate(
            {"url": server.url, "api": "v2", "org": "o", "bucket": "b", "token": "t", "timeout_seconds": 2}
        )
        sinks = SinksSettings(influxdb=settings)
        name = cursor_name(InfluxDBWriter(settings))
        try:
            down = await harvest_sinks(engine, tables, sinks)
            with engine.connect() as connection:
                assert read_watermark(connection, tables, name) is None
            server.down = False
            first = await harvest_sinks(engine, tables, sinks)
            points = dict(server.points)
            second = await harvest_sinks(engine, tables, sinks)
            with engine.connect() as connection:
                cursor = read_watermark(connection, tables, name)
        finally:
            engine.dispose()

    (failed,) = down.sinks
    assert failed.error is not None
    assert failed.error.startswith(f"influxdb at {server.url}: ")
    assert "next pass tries again" in down.summary()
    (written,) = first.sinks
    assert (written.error, written.runs, written.records) == (None, 3, 9)
    assert len(points) == 9  # 3 flow runs + 6 task runs
    assert cursor == max(row["ended_at"] for row in rows)
    assert server.points == points  # written again (the re-read window), unchanged
    assert second.sinks[0].runs == 3
    assert server.problems == []
