"""The executor's log buffer: bounded, oldest dropped and counted, order kept; the counts file."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from prefect.logging.handlers import APILogHandler

from flows.worker import delivery
from flows.worker.delivery import BufferedAPILogHandler, LogBuffer
from flows.worker.delivery_status import DeliveryStatus, read_delivery_status


def _lines(start: int, stop: int) -> list[dict[str, object]]:
    return [{"message": f"line {i}"} for i in range(start, stop)]


def test_the_buffer_keeps_the_newest_lines_and_counts_the_dropped() -> None:
    buffer = LogBuffer(capacity=5)
    assert buffer.keep(_lines(0, 3)) == 0
    assert buffer.keep(_lines(3, 8)) == 3
    assert [line["message"] for line in buffer.take(2)] == ["line 3", "line 4"]
    assert buffer.status == DeliveryStatus(logs_waiting=3, logs_dropped=3)


def test_lines_put_back_go_first_and_the_oldest_go_beyond_capacity() -> None:
    buffer = LogBuffer(capacity=4)
    buffer.keep(_lines(0, 4))
    taken = buffer.take(2)
    buffer.keep(_lines(4, 6))
    buffer.put_back(taken)  # sending failed: they are still the oldest
    assert [line["message"] for line in buffer.take(10)] == ["line 2", "line 3", "line 4", "line 5"]
    assert buffer.status.logs_dropped == 2


def test_install_routes_run_logs_through_the_buffer() -> None:
    loggers = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    before = {logger.name: list(logger.handlers) for logger in loggers}
    try:
        delivery.install()
        handlers = [type(handler) for logger in loggers for handler in logger.handlers]
        assert handlers.count(BufferedAPILogHandler) == 2
        assert APILogHandler not in handlers
    finally:
        for logger in loggers:  # the rest of the session keeps Prefect's own
            logger.handlers = before[logger.name]


def test_counts_are_summed_over_live_executors_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(delivery.STATUS_DIR_VARIABLE, str(tmp_path))
    delivery.BUFFER.keep([])
    delivery.publish()
    (tmp_path / f"executor-{os.getpid()}.json").write_text(
        json.dumps({"logs_dropped": 2, "events_dropped": 1})
    )
    (tmp_path / "executor-999999999.json").write_text(json.dumps({"logs_dropped": 50}))  # long gone
    assert read_delivery_status(tmp_path) == DeliveryStatus(logs_dropped=2, events_dropped=1)
    assert read_delivery_status(tmp_path / "missing") == DeliveryStatus()
