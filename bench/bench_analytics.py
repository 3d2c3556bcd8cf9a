"""Analytics on a PostgreSQL history of about 1,000,000 task runs: full report and incremental refresh.

Usage: ``.venv/bin/python bench/bench_analytics.py [--task-rows N] [--new-runs N] [--keep]``
(PostgreSQL at ``TRINITY_TEST_PG_ADMIN_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``).

1. load: a synthetic 30-day history (``tests.analytics.synthetic``) bulk-loaded with ``COPY`` into
   ``execution_logs``, ``task_runs`` and ``harvested_runs`` of a fresh database, with the workflow
   and specification documents in ``workflows``/``specifications``;
2. full report: read the 31-day window from PostgreSQL, ``build_report``, render the LOGS tree and
   the rows, write the rows (the daily insights flow's work) -- once without the learning part,
   once with it (failure families, an isolation forest per task, SLO forecasts, alerts; the
   models read from and written to ``analytics_models``), so the two times stand side by side;
3. first refresh: the performance refresh's first pass, every daily period (sets its watermark);
4. incremental: ``--new-runs`` more runs in the last hours, written the way the harvest writes them
   (upserts), then the performance refresh, which rebuilds only the periods they touched.

Each phase runs in its own process so its peak RSS is its own. Targets on one machine: full report
(with learning) under 60 s and 2 GiB; incremental refresh under 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import multiprocessing
import os
import platform
import secrets
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Workflows are activated, and stored definitions run, only with a definition key: one for this run.
os.environ.setdefault("TRINITY_DEFINITION_KEY", secrets.token_urlsafe(32))

import pandas as pd
import psycopg

from bench.machine import cpu_model, peak_rss_mib
from tests.support.servers import create_database, drop_database

ROWS_PER_RUN = 7.1  # task rows per run of the synthetic mix with 10 etl tasks


def _machine() -> str:
    cpu = cpu_model(platform.processor() or platform.machine())
    memory = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            total_kib = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
        memory = f", {total_kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{system}, {cpu}, {os.cpu_count()} CPUs{memory}, Python {platform.python_version()}"


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _utc(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_datetime(frame[column], utc=True).dt.round("us")


def _history_rows(history: Any, *, harvested_at: dt.datetime) -> tuple[pd.DataFrame, ...]:
    """The synthetic frames as rows of execution_logs, harvested_runs and task_runs."""
    runs, tasks = history.runs, history.tasks
    start, end, expected = _utc(runs, "start_time"), _utc(runs, "end_time"), _utc(runs, "expected_start_time")
    seconds = (end - start).dt.total_seconds().fillna(0).clip(lower=0)
    logs = pd.DataFrame(
        {
            "id": [str(uuid.uuid4()) for _ in range(len(runs))],
            "workflow_name": runs["workflow"],
            "workflow_version": runs["workflow_version"],
            "flow_run_id": runs["flow_run_id"],
            "status": runs["state"],
            "execution_time": seconds.map(lambda s: f"{s:.6f} seconds"),
            "expected_start_time": expected,
            "started_at": start,
            "ended_at": end,
            "created_at": harvested_at,
        }
    )
    counts = tasks.groupby("flow_run_id").size()
    harvested = pd.DataFrame(
        {
            "flow_run_id": runs["flow_run_id"],
            "workflow_name": runs["workflow"],
            "trigger": runs["trigger"],
            "reference_time": expected.fillna(start).fillna(end),
            "task_runs": runs["flow_run_id"].map(counts).fillna(0).astype("int64"),
            "fingerprint": "bench",
            "harvested_at": harvested_at,
        }
    )
    index = tasks["task_run_name"].str.extract(r"\[(\d+)\]$")[0]
    task_rows = pd.DataFrame(
        {
            "task_run_id": [str(uuid.uuid4()) for _ in range(len(tasks))],
            "flow_run_id": tasks["flow_run_id"],
            "workflow_name": tasks["workflow"],
            "task_id": tasks["task_id"],
            "task_run_name": tasks["task_run_name"],
            "map_index": pd.to_numeric(index).astype("Int64"),
            "state_type": tasks["state"],
            "state_name": tasks["state_name"],
            "start_time": _utc(tasks, "start_time"),
            "end_time": _utc(tasks, "end_time"),
            "duration_seconds": tasks["duration_seconds"],
            "attempts": tasks["attempts"].astype("int64"),
            "cpu_seconds": tasks["cpu_seconds"],
            "peak_memory_bytes": tasks["peak_memory_bytes"].round().astype("Int64"),
            "error_message": tasks["error_message"],
            "inputs_hash": tasks["inputs_hash"],
            "output_hash": tasks["output_hash"],
        }
    )
    return logs, harvested, task_rows


def _copy(connection: psycopg.Connection[Any], table: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="")
    columns = ", ".join(frame.columns)
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy,
    ):
        copy.write(buffer.getvalue())


def _documents(engine: Any, tables: Any, context: dict[str, Any]) -> None:
    """The workflow and specification documents, as the API stores them."""
    with engine.begin() as connection:
        for name, ctx in context.items():
            spec_id = uuid.uuid4()
            spec = dict(ctx.specification or {})
            connection.execute(
                tables.specifications.insert().values(
                    id=spec_id,
                    name=spec.get("name", name),
                    version=spec.get("version", "1.0.0"),
                    schema=spec,
                    content_hash="0" * 64,
                )
            )
            document = dict(ctx.document)
            connection.execute(
                tables.workflows.insert().values(
                    id=uuid.uuid4(),
                    spec_id=spec_id,
                    name=name,
                    version=document["version"],
                    spec_name=document["spec"]["name"],
                    spec_range=document["spec"]["version"],
                    definition=document,
                    status="active",
                )
            )


def phase_load(url: str, task_rows: int, now: dt.datetime) -> dict[str, Any]:
    from api.db import migrate
    from flows.analytics.database import migrated_tables, open_engine
    from tests.analytics.synthetic import generate_history

    started = time.perf_counter()
    migrate(url)
    history = generate_history(
        n_runs=int(task_rows / ROWS_PER_RUN), n_tasks=10, seed=7, days=30.0, start=now - dt.timedelta(days=30)
    )
    generated = time.perf_counter()
    logs, harvested, tasks = _history_rows(history, harvested_at=now - dt.timedelta(hours=1))
    with psycopg.connect(url) as connection:
        _copy(connection, "execution_logs", logs)
        _copy(connection, "harvested_runs", harvested)
        _copy(connection, "task_runs", tasks)
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE execution_logs, harvested_runs, task_runs")
    engine = open_engine(url)
    _documents(engine, migrated_tables(engine), history.context)
    engine.dispose()
    return {
        "runs": len(logs),
        "task_runs": len(tasks),
        "generate_s": generated - started,
        "copy_s": time.perf_counter() - generated,
        "peak_rss_mib": peak_rss_mib(),
    }


def _context(engine: Any, tables: Any) -> Any:
    from flows.analytics.context import load_context_source

    return asyncio.run(load_context_source(engine, tables, from_prefect=False))


def phase_full(url: str, now: dt.datetime, logs_dir: str, learn: bool) -> dict[str, Any]:
    from analytics import AnalysisConfig, build_report, insight_rows, performance_rows
    from flows.analytics.database import migrated_tables, open_engine
    from flows.analytics.history import read_history
    from flows.analytics.models import load_models, store_models
    from flows.analytics.outputs import write_logs_tree
    from flows.analytics.reports import insights_window, write_report_rows

    engine = open_engine(url)
    tables = migrated_tables(engine)
    window = insights_window(now, 31)
    t0 = time.perf_counter()
    history = read_history(engine, tables, window)
    t1 = time.perf_counter()
    rss_read = peak_rss_mib()
    source = _context(engine, tables)
    with engine.connect() as connection:
        models = load_models(connection, tables) if learn else None
    report = build_report(
        runs=history.runs,
        tasks=history.tasks,
        context=source.for_runs(history.runs),
        window_start=window.start,
        window_end=window.end,
        now=now,
        config=AnalysisConfig(learn=learn),
        models=models,
    )
    t2 = time.perf_counter()
    files = write_logs_tree(report, Path(logs_dir))
    rows = len(performance_rows(report)) + len(insight_rows(report))
    t3 = time.perf_counter()
    write_report_rows(engine, tables, report)
    with engine.begin() as connection:
        stored = store_models(connection, tables, report)
    t4 = time.perf_counter()
    engine.dispose()
    return {
        "runs": report.totals["runs"],
        "task_runs": report.totals["task_runs"],
        "read_s": t1 - t0,
        "build_s": t2 - t1,
        "render_s": t3 - t2,
        "rows_s": t4 - t3,
        "total_s": t3 - t0,
        "files": len(files),
        "rows": rows,
        "recommendations": len(report.recommendations),
        "findings": len(report.findings),
        "families": len(report.families.families),
        "failures": sum(f.count for f in report.families.families) + report.families.ungrouped_failures,
        "messages": report.families.messages,
        "anomalies": len(report.multivariate.anomalies),
        "tasks_checked": len(report.multivariate.checks),
        "forecasts": len(report.forecasts),
        "breaches_expected": sum(f.status == "breach_expected" for f in report.forecasts),
        "models": stored,
        "frame_mib": (
            history.runs.memory_usage(deep=True).sum() + history.tasks.memory_usage(deep=True).sum()
        )
        / 2**20,
        "rss_after_read_mib": rss_read,
        "peak_rss_mib": peak_rss_mib(),
    }


def _refresh(url: str, now: dt.datetime) -> tuple[Any, float, float]:
    # Module imports are timed apart: once per process, whatever the history (Prefect, pandas,
    # and scipy.stats, which the trends load on first use).
    imports = time.perf_counter()
    import scipy.stats  # noqa: F401

    import flows.analytics.context  # noqa: F401
    from flows.analytics.database import migrated_tables, open_engine
    from flows.analytics.reports import refresh_performance

    started = time.perf_counter()
    engine = open_engine(url)
    tables = migrated_tables(engine)
    source = _context(engine, tables)
    result = refresh_performance(engine, tables, source.for_runs, now=now)
    seconds = time.perf_counter() - started
    engine.dispose()
    return result, seconds, started - imports


def phase_first_refresh(url: str, now: dt.datetime) -> dict[str, Any]:
    result, seconds, _ = _refresh(url, now)
    return {
        "periods": len(result.periods),
        "runs": result.runs,
        "rows": result.rows,
        "seconds": seconds,
        "peak_rss_mib": peak_rss_mib(),
    }


def _store_new_runs(url: str, new_runs: int, now: dt.datetime) -> tuple[int, int, float]:
    """New runs written as the harvest writes them: upserts keyed by flow run / task run id."""
    from flows.analytics.database import database_now, migrated_tables, open_engine, upsert
    from flows.analytics.harvest import _HARVEST_UPDATES, _RUN_UPDATES, _TASK_UPDATES
    from tests.analytics.synthetic import generate_history

    history = generate_history(
        n_runs=new_runs, n_tasks=10, seed=99, days=4 / 24, start=now - dt.timedelta(hours=4, minutes=30)
    )
    engine = open_engine(url)
    tables = migrated_tables(engine)
    started = time.perf_counter()
    with engine.begin() as connection:
        harvested_at = database_now(connection)
        logs, harvested, tasks = _history_rows(history, harvested_at=harvested_at)
        for frame, column in ((logs, "id"), (logs, "flow_run_id"), (harvested, "flow_run_id")):
            frame[column] = frame[column].map(uuid.UUID)
        tasks["task_run_id"] = tasks["task_run_id"].map(uuid.UUID)
        tasks["flow_run_id"] = tasks["flow_run_id"].map(uuid.UUID)
        logs["execution_time"] = (logs["ended_at"] - logs["started_at"]).fillna(pd.Timedelta(0))
        log_records = _records(logs.drop(columns=["created_at"]))
        upsert(connection, tables.execution_logs, log_records, key=["flow_run_id"], update=_RUN_UPDATES)
        upsert(connection, tables.task_runs, _records(tasks), key=["task_run_id"], update=_TASK_UPDATES)
        upsert(
            connection,
            tables.harvested_runs,
            _records(harvested),
            key=["flow_run_id"],
            update=_HARVEST_UPDATES,
        )
    seconds = time.perf_counter() - started
    engine.dispose()
    return len(logs), len(tasks), seconds


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    clean = frame.astype(object).where(frame.notna(), None)
    records = clean.to_dict("records")
    for record in records:
        for key, value in record.items():
            if isinstance(value, pd.Timestamp):
                record[key] = value.to_pydatetime()
            elif isinstance(value, pd.Timedelta):
                record[key] = value.to_pytimedelta()
    return records


def phase_incremental(url: str, new_runs: int, now: dt.datetime) -> dict[str, Any]:
    runs, task_runs, store_s = _store_new_runs(url, new_runs, now)
    result, refresh_s, imports_s = _refresh(url, now)
    return {
        "imports_s": imports_s,
        "new_runs": runs,
        "new_task_runs": task_runs,
        "store_s": store_s,
        "refresh_s": refresh_s,
        "periods": [start.date().isoformat() for start in result.periods],
        "period_runs": result.runs,
        "period_task_runs": result.task_runs,
        "rows": result.rows,
        "peak_rss_mib": peak_rss_mib(),
    }


def _in_child(function: Any, *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(function, args)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--task-rows", type=int, default=1_000_000)
    parser.add_argument("--new-runs", type=int, default=1_000)
    parser.add_argument("--keep", action="store_true", help="Keep the database (its URL is printed).")
    args = parser.parse_args()

    print(f"machine: {_machine()}")
    print(f"load average at start: {_load()} (other processes share these CPUs)")
    with psycopg.connect(
        os.environ.get("TRINITY_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    ) as c:
        print(f"postgres: {c.execute('SHOW server_version').fetchone()[0]} (local)")  # type: ignore[index]
    url = create_database("trinity_bench_analytics")
    now = dt.datetime.now(dt.UTC)
    logs_dir = Path("/tmp") / f"trinity-bench-logs-{os.getpid()}"
    try:
        load = _in_child(phase_load, url, args.task_rows, now)
        print(
            f"load: {load['runs']:,} runs, {load['task_runs']:,} task runs; "
            f"generated in {load['generate_s']:.1f} s, COPY + ANALYZE in {load['copy_s']:.1f} s"
        )
        plain = _in_child(phase_full, url, now, str(logs_dir), False)
        full = _in_child(phase_full, url, now, str(logs_dir), True)
        for label, phase in (("without learning", plain), ("with learning", full)):
            print(
                f"full report {label} ({phase['runs']:,} runs, {phase['task_runs']:,} task runs): "
                f"read {phase['read_s']:.1f} s + build {phase['build_s']:.1f} s + render "
                f"{phase['render_s']:.1f} s = {phase['total_s']:.1f} s; "
                f"rows written in {phase['rows_s']:.2f} s"
            )
            print(
                f"  frames {phase['frame_mib']:,.0f} MiB; "
                f"peak RSS after read {phase['rss_after_read_mib']:,.0f} MiB, "
                f"overall {phase['peak_rss_mib']:,.0f} MiB; {phase['files']} files, {phase['rows']} rows, "
                f"{phase['recommendations']} recommendations, {phase['findings']} findings"
            )
        print(
            f"  learning adds {full['build_s'] - plain['build_s']:+.1f} s to the build: "
            f"{full['families']} failure families from {full['failures']:,} failures "
            f"({full['messages']:,} distinct messages), isolation forests on {full['tasks_checked']} tasks "
            f"({full['anomalies']} anomalies), {full['forecasts']} SLO forecasts "
            f"({full['breaches_expected']} breaches expected); {full['models']} models stored"
        )
        first = _in_child(phase_first_refresh, url, now)
        print(
            f"first performance refresh: {first['periods']} daily periods, {first['runs']:,} runs, "
            f"{first['rows']} rows in {first['seconds']:.1f} s (peak RSS {first['peak_rss_mib']:,.0f} MiB)"
        )
        inc = _in_child(phase_incremental, url, args.new_runs, now)
        print(
            f"incremental: stored {inc['new_runs']:,} new runs ({inc['new_task_runs']:,} task runs) "
            f"with upserts in {inc['store_s']:.2f} s; refresh rebuilt periods {', '.join(inc['periods'])} "
            f"({inc['period_runs']:,} runs, {inc['period_task_runs']:,} task runs, {inc['rows']} rows) "
            f"in {inc['refresh_s']:.2f} s (peak RSS {inc['peak_rss_mib']:,.0f} MiB; "
            f"module imports before it, once per process: {inc['imports_s']:.1f} s)"
        )
        verdict = (
            "OK"
            if full["total_s"] < 60 and full["peak_rss_mib"] < 2048 and inc["refresh_s"] < 5
            else "MISSED"
        )
        print(
            f"targets (full report with learning < 60 s and < 2 GiB, incremental < 5 s): {verdict}; "
            f"load average now {_load()}"
        )
    finally:
        shutil.rmtree(logs_dir, ignore_errors=True)
        if args.keep:
            print(f"kept database: {url}")
        else:
            drop_database(url)


if __name__ == "__main__":
    main()
