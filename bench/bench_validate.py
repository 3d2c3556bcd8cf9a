"""Benchmark: validate a generated 10,000-task workflow end to end.

End to end means text -> documents -> every check (limits, positions, models, DAG, actions and
their inputs, expressions and references, versions). The baseline, measured in the same run on the
same text, is the bare minimum anyone would do: ``yaml.safe_load_all`` + ``model_validate``.

    .venv/bin/python bench/bench_validate.py [--tasks 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate_wide_dag import generate

from bench.machine import cpu_model
from specs.loader import load_text
from specs.models import Specification, Workflow


def machine() -> str:
    """CPU model, core count and Python version."""
    cpu = cpu_model(platform.processor() or "unknown CPU")
    return f"{cpu}, nproc={os.cpu_count()}, Python {platform.python_version()}, {platform.system()}"


def baseline(text: str) -> None:
    """Plain PyYAML + pydantic, no positions and no semantic checks."""
    spec, workflow = yaml.safe_load_all(text)
    Specification.model_validate(spec)
    Workflow.model_validate(workflow)


def full(text: str) -> None:
    """Everything ``trinity validate`` does for one text."""
    documents = load_text(text, source="bench.yaml")
    assert isinstance(documents[1], Workflow)


def timed(function: Callable[[str], None], text: str, repeat: int) -> list[float]:
    """Seconds per call, ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(text)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    """Generate, validate, and print seconds, the ratio to the baseline, and the machine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="approximate number of tasks")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    width = 100
    text = generate(width=width, layers=max(1, args.tasks // width), name="bench", sleep_every=0)
    tasks = text.count("\n  - {id:")
    print(f"machine: {machine()}")
    print(f"input: {tasks:,} tasks, {len(text.encode()):,} bytes, {text.count(chr(10)):,} lines")
    first = timed(full, text, 1)[0]
    ours = timed(full, text, args.repeat)
    base = timed(baseline, text, args.repeat)
    best, best_base = min(ours), min(base)
    print(f"full validation, first call: {first:.3f} s")
    print(f"full validation: best {best:.3f} s, median {statistics.median(ours):.3f} s ({args.repeat} runs)")
    print(f"baseline (yaml.safe_load_all + model_validate): best {best_base:.3f} s")
    print(f"ratio full / baseline: {best / best_base:.2f}x")
    print(f"per task: {best / tasks * 1e6:.1f} us")


if __name__ == "__main__":
    main()
