"""``trinity run`` with ``sinks.influxdb`` (api v1) into a real InfluxDB 1.x (Debian's ``influxd``):
every tag and field of ``trinity_task_run`` and ``trinity_flow_run`` is read back with InfluxQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.documents import spec_and_workflow
from tests.support.monitoring_servers import InfluxDB
from tests.support.servers import PrefectServer
from tests.trinity.invoke import invoke
from trinity.commands import report_commands

ROOT = Path(__file__).resolve().parents[2]
TRINITY = str(Path(sys.executable).parent / "trinity")

TASKS = """\
  - id: fan
    for_each: [1, 2, 3]
    uses: shell
    with: {{argv: [sh, -c, "echo item ${{{{ item | quote }}}}"]}}
  - id: burn
    uses: python
    with: {{callable: "tests.flows.helpers:burn_cpu", args: [300000]}}
  - id: flaky
    uses: python
    retries: 1
    retry_delay_seconds: 0
    needs: [fan]
    with: {{callable: "tests.flows.helpers:flaky", args: ["{counter}", 1]}}
"""


@pytest.fixture(scope="module")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    server = InfluxDB(tmp_path_factory.mktemp("influxdb")).start()
    yield server
    server.stop()


def trinity_run(
    workflow: Path, config: Path, prefect: PrefectServer, home: Path
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=prefect.api_url,
        TRINITY_CONFIG=str(config),
        TRINITY_STATE_DIR=str(home / "state"),
        PREFECT_HOME=str(home / "prefect"),
        PYTHONPATH=str(ROOT),
    )
    return subprocess.run(
        [TRINITY, "run", str(workflow)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_trinity_run_writes_every_tag_and_field(
    influxdb: InfluxDB, prefect_sqlite_server: PrefectServer, tmp_path: Path
) -> None:
    name = f"influx-{uuid.uuid4().hex[:8]}"
    influxdb.query("CREATE DATABASE trinity")
    influxdb.query('CREATE RETENTION POLICY "week" ON "trinity" DURATION 7d REPLICATION 1')
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(spec_and_workflow(name, TASKS.format(counter=tmp_path / "counter"), version="1.2.3"))
    config = tmp_path / "trinity.config.yml"
    config.write_text(
        f"sinks:\n  influxdb:\n    url: {influxdb.url}\n    api: v1\n    database: trinity\n"
        "    retention_policy: week\n    precision: ns\n"
    )

    done = trinity_run(workflow, config, prefect_sqlite_server, tmp_path)

    assert done.returncode == 0, done.stderr
    select = 'SELECT * FROM "trinity"."week".{} WHERE workflow = \'{}\''
    tasks = influxdb.rows(select.format("trinity_task_run", name), "trinity")
    flows = influxdb.rows(select.format("trinity_flow_run", name), "trinity")
    assert len(flows) == 1
    assert sorted(row["task"] for row in tasks) == ["burn", "fan", "fan", "fan", "flaky"]
    for row in [*tasks, *flows]:
        assert row["workflow"] == name
        assert row["version"] == "1.2.3"
        assert row["state"] == "COMPLETED"
        assert row["deployment"] == "local"  # a run from a file has no deployment or pool
        assert row["work_pool"] == "local"
        assert row["worker"]
        assert row["duration_s"] > 0
        assert row["queue_wait_s"] >= 0
        assert row["retries"] >= 0
        assert row["attempt"] >= 1
    by_task = {row["task"]: row for row in tasks}
    assert by_task["flaky"]["attempt"] == 2
    assert by_task["flaky"]["retries"] == 1
    assert by_task["burn"]["cpu_s"] > 0
    assert by_task["burn"]["max_rss_bytes"] > 1_000_000
    assert all(row["cpu_s"] > 0 for row in tasks if row["task"] == "fan")  # the shell child's rusage
    flow = flows[0]
    assert flow.get("task") is None
    assert flow["retries"] == 1
    assert flow["attempt"] == 1
    assert flow["cpu_s"] >= by_task["burn"]["cpu_s"]
    assert flow["max_rss_bytes"] >= by_task["burn"]["max_rss_bytes"]
    assert flow["duration_s"] >= by_task["flaky"]["duration_s"]
    # Tags are tags and fields are fields, as the measurement's schema says.
    tag_keys = {
        value[0]
        for series in influxdb.query("SHOW TAG KEYS FROM trinity_task_run", "trinity")
        for value in series["values"]
    }
    assert tag_keys == {"workflow", "version", "task", "state", "deployment", "work_pool", "worker"}
    field_keys = {
        value[0]
        for series in influxdb.query('SHOW FIELD KEYS FROM "week"."trinity_flow_run"', "trinity")
        for value in series["values"]
    }
    assert field_keys == {
        "duration_s",
        "queue_wait_s",
        "cpu_s",
        "max_rss_bytes",
        "attempt",
        "retries",
        "flow_run_id",
    }
    assert {row["flow_run_id"] for row in tasks} == {flow["flow_run_id"]}
    assert sorted(row["task_run"] for row in tasks) == ["burn", "fan[0]", "fan[1]", "fan[2]", "flaky"]

    report_from_influxdb(config, tmp_path, name)


def report_from_influxdb(config: Path, tmp_path: Path, name: str) -> None:
    """`trinity report --from influxdb` builds the report from those points alone."""
    with config.open("a") as file:
        file.write(f"database: {{url: 'sqlite:///{tmp_path / 'report.db'}'}}\n")
    code, out, err = invoke(
        report_commands.register,
        "--from", "influxdb", "--since", "-1d", "--no-harvest", "--config", str(config),
        "--out", str(tmp_path / "LOGS"), "--workflow", name,
    )  # fmt: skip

    assert code == 0, err
    print(out)
    assert name in out
    performance = json.loads((tmp_path / "LOGS" / "performance" / "execution_times.json").read_text())
    assert performance


def test_a_sink_that_is_down_does_not_fail_the_run(
    prefect_sqlite_server: PrefectServer, tmp_path: Path
) -> None:
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(
        spec_and_workflow(f"down-{uuid.uuid4().hex[:8]}", TASKS.format(counter=tmp_path / "counter"))
    )
    config = tmp_path / "trinity.config.yml"
    config.write_text(
        "sinks:\n  influxdb: {url: 'http://127.0.0.1:9', database: trinity, timeout_seconds: 1}\n"
        "  exit_flush_seconds: 1\n"
    )

    done = trinity_run(workflow, config, prefect_sqlite_server, tmp_path)

    assert done.returncode == 0, done.stderr
    failing = [line for line in done.stderr.splitlines() if "sink influxdb is failing" in line]
    assert len(failing) == 1, done.stderr
    assert "records still queued (influxdb: " in done.stderr
