"""Fault: both sinks go down while a ``trinity worker`` runs 50 runs, then come back. No run fails,
and after the harvest every point (real InfluxDB 1.x) and every document (Elasticsearch, a local
server checking the wire format) is there exactly once: counts and ids."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from blocks.sink_records import task_run_id
from flows.analytics.database import migrated_tables, open_engine
from flows.monitoring.harvest import harvest_sinks
from flows.monitoring.log_lines import stored_log_line
from tests.flows.worker import support as workers
from tests.support.monitoring_servers import InfluxDB
from tests.support.servers import PrefectServer
from tests.support.wire_servers import FakeElasticsearch, serving
from trinity.core.config import load_settings

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

TASKS = [{"id": "only", "uses": "noop"}]
BEFORE, DURING = 10, 40


async def _prefect_log_ids(flow_run_ids: list[UUID], tags: dict[str, str]) -> set[str]:
    """The ids of every log line Prefect stored for these runs, once their count is steady."""
    last = -1
    async with get_client() as client:
        while True:
            logs = []
            offset = 0
            while True:
                page = await client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_run_ids)),
                    limit=200,
                    offset=offset,
                )
                logs.extend(page)
                offset += 200
                if len(page) < 200:
                    break
            if len(logs) == last:
                break
            last = len(logs)
            await asyncio.sleep(1.5)
    return {stored_log_line(log, tags).id for log in logs}


@pytest.mark.timeout(900)
async def test_sinks_down_during_runs_then_back_get_everything_once(
    prefect_api: PrefectServer, tmp_path: Path
) -> None:
    influx = InfluxDB(tmp_path / "influxdb").start()
    name = f"outage-{uuid.uuid4().hex[:8]}"
    pool = f"outage-{uuid.uuid4().hex[:8]}"
    try:
        influx.query("CREATE DATABASE trinity")
        with serving(FakeElasticsearch()) as elastic:
            assert isinstance(elastic, FakeElasticsearch)
            config = tmp_path / "trinity.config.yml"
            config.write_text(
                "sinks:\n"
                f"  influxdb: {{url: '{influx.url}', database: trinity, timeout_seconds: 1}}\n"
                f"  elasticsearch: {{hosts: ['{elastic.url}'], index_prefix: outage, timeout_seconds: 1}}\n"
                "  queue_size: 10\n"
                "  flush_interval_seconds: 0.2\n"
                "  exit_flush_seconds: 1\n"
            )
            database = workers.sqlite_trinity_database(tmp_path)
            # INFO: the runs log lines (Prefect's own), which go to Elasticsearch too.
            env = workers.worker_env(prefect_api, database) | {
                "TRINITY_CONFIG": str(config),
                "PREFECT_LOGGING_LEVEL": "INFO",
            }
            deployment = await workers.deploy_tasks(name, pool, TASKS)
            command = workers.trinity_worker_command(pool, processes=1, concurrency=8)
            with workers.running_worker(command, env, tmp_path / "worker.log") as worker:
                ids = await workers.create_runs(deployment, BEFORE)
                await workers.wait_for(ids, workers.is_final, timeout=240, what="final")
                influx.stop()
                elastic.down = True
                during = await workers.create_runs(deployment, DURING)
                runs = await workers.wait_for(during, workers.is_final, timeout=240, what="final")
                assert [run.state_name for run in runs] == ["Completed"] * DURING
                influx.start()
                elastic.down = False
            log = worker.log()
            assert log.count("sink influxdb is failing") == 1, log
            assert log.count("sink elasticsearch is failing") == 1, log

            all_ids = [*ids, *during]
            expected_logs = await _prefect_log_ids(all_ids, {"workflow": name, "version": "1.0.0"})
            engine = open_engine(database)
            try:
                tables = migrated_tables(engine)
                sinks = load_settings(config, env={}).sinks
                first = await harvest_sinks(engine, tables, sinks)
                second = await harvest_sinks(engine, tables, sinks)
            finally:
                engine.dispose()
            assert [sink.error for sink in first.sinks] == [None, None], first.summary()
            assert [sink.runs for sink in second.sinks] == [50, 50]  # the re-read window: written again

            select = "SELECT count(attempt) FROM {} WHERE workflow = '" + name + "'"
            assert influx.query(select.format("trinity_flow_run"), "trinity")[0]["values"][0][1] == 50
            assert influx.query(select.format("trinity_task_run"), "trinity")[0]["values"][0][1] == 50
            assert elastic.problems == []
            run_docs = elastic.in_index("outage-runs-")
            expected_runs = {str(i) for i in all_ids}
            expected_tasks = {task_run_id(str(i), "only") for i in all_ids}
            assert set(run_docs) == expected_runs | expected_tasks
            log_docs = elastic.in_index("outage-logs-")
            assert expected_logs
            assert set(log_docs) == expected_logs
    finally:
        influx.stop()
