"""``trinity report`` on real runs: the LOGS tree, the summary, and one-line errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from analytics import LOGS_TREE_PATHS
from flows.analytics.database import migrated_tables, open_engine
from tests.api.support import make_settings, running_api_server
from tests.flows.analytics.support import (
    Store,
    database_url,
    recorded_run,
    reset_events_worker,
    run_and_settle,
    store,
)
from tests.flows.factories import specification, workflow
from trinity.commands import report_commands, run_commands

TRINITY = Path(sys.executable).parent / "trinity"


def app() -> typer.Typer:
    application = typer.Typer()
    report_commands.register(application)
    application.command("unused", hidden=True)(lambda: None)  # keeps "report" a subcommand
    return application


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app(), ["report", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def trinity_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    url = database_url(request, "sqlite", tmp_path)
    monkeypatch.setenv("TRINITY_DATABASE_URL", url)
    monkeypatch.setenv("TRINITY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("TRINITY_CONFIG", raising=False)
    monkeypatch.delenv("TRINITY_LOGS_DIR", raising=False)
    yield from store(url)


def _run_workflows(count: int, name: str = "cli-demo") -> None:
    wf = workflow(
        [{"id": "fetch", "uses": "noop"}, {"id": "store", "uses": "noop", "needs": ["fetch"]}],
        name=name,
    )

    async def run_all() -> None:
        for _ in range(count):
            await run_and_settle(wf, specification(), expected_tasks=2)

    asyncio.run(run_all())


def test_report_writes_the_logs_tree_and_prints_the_summary(
    prefect_api: object, trinity_db: Store, tmp_path: Path
) -> None:
    reset_events_worker()
    _run_workflows(2)
    out = tmp_path / "LOGS"

    # Without harvesting, task runs come from the executor's own records.
    code, stdout, stderr = invoke("--since", "-1h", "--out", str(out), "--no-harvest")

    assert code == 0, stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(LOGS_TREE_PATHS)
    assert "Trinity run analysis" in stdout
    assert "cli-demo" in stdout
    assert stdout.strip().endswith(f"wrote {len(LOGS_TREE_PATHS)} files to {out}")
    times = json.loads((out / "performance" / "execution_times.json").read_text())
    assert {task["task_id"] for task in times["tasks"]} == {"fetch", "store"}
    assert trinity_db.count(trinity_db.tables.task_runs) == 0

    code, stdout, stderr = invoke("--since", "-1h", "--out", str(out), "--workflow", "cli-demo")

    assert code == 0, stderr
    assert re.match(
        r"Read \d+ runs? from Prefect (?:that ended since \S+|\(all so far\)): \d+ new, "
        r"\d+ already known \(\d+ of them changed since last read\); their task runs: ",
        stderr,
    ), stderr
    assert len(stderr.splitlines()) == 1
    task_runs = trinity_db.tables.task_runs
    assert len(trinity_db.rows(task_runs, task_runs.c.workflow_name == "cli-demo")) == 4
    times = json.loads((out / "performance" / "execution_times.json").read_text())
    assert [w["workflow"] for w in times["workflows"]] == ["cli-demo"]
    assert times["workflows"][0]["runs"] == 2


SLOW_FILE = """\
kind: Specification
name: slow-file
version: 1.0.0
success_metrics: {duration_p95_seconds: 0.2}
---
kind: Workflow
name: slow-file
version: 1.0.0
spec: {name: slow-file, version: ^1.0.0}
tasks:
  - {id: fetch, uses: sleep, with: {seconds: 0.3}}
  - {id: store, uses: noop, needs: [fetch]}
"""


def test_runs_from_a_file_are_analysed_against_their_document(
    prefect_api: object, trinity_db: Store, tmp_path: Path
) -> None:
    reset_events_worker()
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW_FILE)
    runner = CliRunner()
    run_app = typer.Typer()
    run_commands.register(run_app)
    for _ in range(3):
        result = runner.invoke(run_app, ["run", str(path)])
        assert result.exit_code == 0, result.stderr
    out = tmp_path / "LOGS"

    code, stdout, stderr = invoke("--since", "-1h", "--out", str(out), "--workflow", "slow-file")

    assert code == 0, stderr
    # Rich draws the Markdown tables with or without pipes, depending on the console.
    text = " ".join(stdout.replace("|", " ").split())
    assert "no workflow document" not in text
    assert "Specification breaches" in text
    assert "slow-file duration_p95_seconds 0.2 " in text
    bottlenecks = json.loads((out / "performance" / "bottleneck_analysis.json").read_text())
    (section,) = bottlenecks["workflows"]
    assert section["workflow"] == "slow-file"
    assert section["most_common_path"] == ["fetch", "store"]
    assert section["critical_path_mean_seconds"] >= 0.3
    improvements = (out / "optimization" / "performance_improvements.md").read_text()
    assert "### slow-file" in improvements


def test_default_out_is_the_state_dir(prefect_api: object, trinity_db: Store, tmp_path: Path) -> None:
    code, stdout, _ = invoke("--no-harvest")
    assert code == 0
    assert (tmp_path / "state" / "LOGS" / "optimization" / "suggestions.md").is_file()
    assert "No recommendations in this window." in stdout


def test_iso_dates_bound_the_window(trinity_db: Store, tmp_path: Path) -> None:
    day = dt.datetime(2025, 3, 2, 12, tzinfo=dt.UTC)
    recorded_run(trinity_db.url, "iso-inside", day)
    recorded_run(trinity_db.url, "iso-inside", day + dt.timedelta(hours=1))
    recorded_run(trinity_db.url, "iso-after", day + dt.timedelta(days=3))
    recorded_run(trinity_db.url, "iso-before", day - dt.timedelta(days=3))
    out = tmp_path / "LOGS"

    code, stdout, stderr = invoke(
        "--since", "2025-03-01", "--until", "2025-03-03T00:00:00Z", "--out", str(out), "--no-harvest"
    )

    assert code == 0, stderr
    times = json.loads((out / "performance" / "execution_times.json").read_text())
    assert times["window_start"].startswith("2025-03-01T00:00:00")
    assert times["window_end"].startswith("2025-03-03T00:00:00")
    assert [(w["workflow"], w["runs"]) for w in times["workflows"]] == [("iso-inside", 2)]
    assert "iso-inside" in stdout
    assert "iso-after" not in stdout


def test_out_help_names_the_real_default() -> None:
    result = CliRunner().invoke(app(), ["report", "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "$TRINITY_LOGS_DIR, else analytics.logs_dir when configured, else <state_dir>/LOGS" in text


def _trinity(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    full.pop("TRINITY_CONFIG", None)
    return subprocess.run(
        [str(TRINITY), "report", *args], env=full, cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "error: --since: expected an ISO date/time"),
        (
            ["--since=-2d", "--until", "2001-01-01"],
            "error: --until (2001-01-01T00:00:00+00:00) must be after",
        ),
    ],
)
def test_bad_times_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = _trinity(args, {"TRINITY_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"}, tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "t.db").exists()


def test_unreachable_database_and_prefect_are_one_line(tmp_path: Path) -> None:
    database = _trinity(
        ["--no-harvest"], {"TRINITY_DATABASE_URL": "postgresql://trinity@127.0.0.1:9/none"}, tmp_path
    )
    assert database.returncode == 1
    assert database.stderr.startswith("error: cannot reach the database: ")
    assert len(database.stderr.strip().splitlines()) == 1

    url = f"sqlite:///{tmp_path / 't.db'}"
    prefect = _trinity(
        [], {"TRINITY_DATABASE_URL": url, "PREFECT_API_URL": "http://127.0.0.1:9/api"}, tmp_path
    )
    assert prefect.returncode == 1
    assert prefect.stderr.startswith("error: cannot reach the Prefect API at http://127.0.0.1:9/api")
    assert "--no-harvest" in prefect.stderr
    assert len(prefect.stderr.strip().splitlines()) == 1
    migrated_tables(open_engine(url))  # the database was migrated before Prefect was tried


def _run_failing_once() -> None:
    spec = specification({"type": "object", "properties": {"fail": {"type": "boolean", "default": False}}})
    wf = workflow(
        [
            {
                "id": "check",
                "uses": "python",
                "if": "${{ params.fail }}",
                "with": {"callable": "tests.flows.helpers:boom", "args": ["planted failure"]},
            },
            {"id": "after", "uses": "noop"},
        ],
        name="cli-failing",
    )

    async def run_both() -> None:
        await run_and_settle(wf, spec, expected_tasks=2, fail=True)
        await run_and_settle(wf, spec, expected_tasks=2, fail=False)

    asyncio.run(run_both())


def test_report_writes_the_rows_the_api_serves(
    prefect_api: object, trinity_db: Store, tmp_path: Path
) -> None:
    reset_events_worker()
    # A name of its own: the shared Prefect server keeps other tests' runs of cli-demo.
    demo_name = f"cli-rows-{uuid.uuid4().hex[:6]}"
    _run_workflows(3, demo_name)
    _run_failing_once()

    code, stdout, stderr = invoke("--out", str(tmp_path / "LOGS"))

    assert code == 0, stderr
    assert "cli-failing/check failed 1 of" in stdout  # the finding the report prints ...
    written = re.search(r"wrote (\d+) performance and (\d+) insight rows to the database", stdout)
    assert written is not None, stdout
    with running_api_server(make_settings(trinity_db.url, state_dir=tmp_path / "api")) as api:
        client = api.client()
        performance = client.get("/analytics/performance", params={"limit": 200}).json()
        insights = client.get("/analytics/insights", params={"workflow": "cli-failing"}).json()
        every_insight = client.get("/analytics/insights", params={"limit": 200}).json()
        # The shared Prefect server holds other tests' runs too: read this workflow's rows alone.
        demo_rows = client.get("/analytics/performance", params={"workflow": demo_name}).json()
    # ... is a row the API serves, and so is every figure of the report.
    assert any(row["kind"] == "failures" and row["task_id"] == "check" for row in insights["items"])
    assert every_insight["total"] == int(written.group(2)) >= 1
    assert performance["total"] == int(written.group(1))
    demo = {row["task_id"]: row for row in demo_rows["items"]}
    assert set(demo) == {None, "fetch", "store"}
    assert demo[None]["metrics"]["runs"] == 3

    # Again over the same (default) window: the rows are replaced, not added to.
    code, _, stderr = invoke("--out", str(tmp_path / "LOGS"), "--no-harvest")
    assert code == 0, stderr
    perf = trinity_db.tables.performance
    assert len(trinity_db.rows(perf, perf.c.workflow == demo_name)) == 3

    # A report of one workflow replaces that workflow's rows of the window, no other's.
    failing_rows = len(trinity_db.rows(perf, perf.c.workflow == "cli-failing"))
    code, _, stderr = invoke("--out", str(tmp_path / "LOGS"), "--no-harvest", "--workflow", demo_name)
    assert code == 0, stderr
    assert len(trinity_db.rows(perf, perf.c.workflow == demo_name)) == 3
    assert len(trinity_db.rows(perf, perf.c.workflow == "cli-failing")) == failing_rows > 0
    insight = trinity_db.tables.insights
    assert trinity_db.rows(insight, insight.c.workflow == "cli-failing")
