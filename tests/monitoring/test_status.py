"""Sink figures for ``trinity status``: each feeding process publishes them, the command adds up
those of live processes and prints one line per sink."""

from __future__ import annotations

import json
import os
from pathlib import Path

from flows.monitoring.live import LiveSender
from flows.monitoring.status import publish, read_sink_status
from tests.monitoring.records import execution_row, records_and_lines
from tests.monitoring.test_wire_formats import influx_writer
from tests.support.wire_servers import FakeInfluxDB2, serving
from tests.trinity.invoke import invoke
from trinity.commands import up_commands


def test_a_failing_sink_shows_in_trinity_status(tmp_path: Path) -> None:
    folder = tmp_path / "sinks"
    with serving(FakeInfluxDB2(token="t0ken", org="ops", bucket="runs", down=True)) as server:
        assert isinstance(server, FakeInfluxDB2)
        sender = LiveSender(
            [influx_writer(server)],
            queue_size=10,
            flush_interval_seconds=0.05,
            publish=lambda figures: publish(folder, figures),
        )
        records, _ = records_and_lines(execution_row(tasks=11), lines=0)
        sender.put(records)  # 12 records into 10 places
        assert not sender.flush(0.5)
        sender.close()
    # A process that has gone: its backlog no longer counts, its drops and writes do.
    (folder / "sinks-999999.json").write_text(
        json.dumps(
            {
                "sinks": [
                    {
                        "sink": "influxdb",
                        "backlog": 5,
                        "dropped": 1,
                        "written": 7,
                        "failures": 0,
                        "healthy": True,
                    }
                ]
            }
        )
    )

    figures = read_sink_status(folder)

    influx = figures["influxdb"]
    assert (influx["backlog"], influx["dropped"], influx["written"]) == (10, 3, 7)
    assert influx["healthy"] is False
    assert influx["last_error"].startswith(f"influxdb at {server.url}: ")
    assert (folder / f"sinks-{os.getpid()}.json").is_file()
    code, out, _ = invoke(up_commands.register, "status", "--state-dir", str(tmp_path))
    assert code == 1
    (line,) = [line for line in out.splitlines() if "sink influxdb" in line]
    assert "failing" in line
    assert "backlog 10  dropped 3  written 7" in line
    assert "last error" in line
