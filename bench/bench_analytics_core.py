"""Time ``build_report`` (and the renderers) on about 1,000,000 synthetic task rows.

Usage: ``.venv/bin/python bench/bench_analytics_core.py [--task-rows N] [--seed S]``

Prints the machine, the frame sizes, seconds per stage and the peak RSS of the process. The target
is well under 60 s and 2 GiB for 1,000,000 task rows.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics import build_report, insight_rows, performance_rows, render_logs_tree
from bench.machine import cpu_model, peak_rss_mib
from tests.analytics.synthetic import generate_history

# Task rows per run of the default synthetic mix (etl-daily with 10 tasks, ingest-api, fanout-report).
ROWS_PER_RUN = 7.1


def _machine() -> str:
    cpu = cpu_model(platform.processor() or platform.machine())
    system = f"{platform.system()} {platform.release()}"
    return f"{system}, {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(f"machine: {_machine()}")
    started = time.perf_counter()
    history = generate_history(n_runs=int(args.task_rows / ROWS_PER_RUN), n_tasks=10, seed=args.seed)
    generated = time.perf_counter()
    print(
        f"generated {len(history.runs):,} runs, {len(history.tasks):,} task rows "
        f"in {generated - started:.1f} s"
    )
    print(f"peak RSS after generation: {peak_rss_mib():,.0f} MiB")

    report = build_report(runs=history.runs, tasks=history.tasks, context=history.context)
    built = time.perf_counter()
    print(f"build_report: {built - generated:.1f} s")

    files = render_logs_tree(report)
    rows = performance_rows(report) + insight_rows(report)
    rendered = time.perf_counter()
    print(f"render_logs_tree + rows: {rendered - built:.1f} s ({len(files)} files, {len(rows)} rows)")
    print(f"recommendations: {len(report.recommendations)}, findings: {len(report.findings)}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
