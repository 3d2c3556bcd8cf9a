"""Unbounded evaluation, reproduced as found, and 50+ sandbox payloads: each refused or bounded.

Every payload either fails with an :class:`ExpressionError` saying which bound it broke, or gives
a result within the size limit; the worst ones are evaluated in a fresh process whose peak memory
is asserted under a fixed bound (``resource.getrusage``: the process's high-water mark).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from specs.expressions import ExpressionError, evaluate
from specs.sizes import MAX_VALUE_SIZE, items_size
from tests.specs.helpers import only, problems, workflow_text

TRINITY = Path(sys.executable).parent / "trinity"
BIG = "(['a' * 100000] * 10000)"  # one 100,000-character string, shared 10,000 times: 1 MB in memory
NESTED = "([['a' * 100000] * 10] * 10000)"

# (payload, what the refusal says); each one would build gigabytes or change the run's data.
REFUSED = [
    # as found: ~1 GB of text from 100 kB
    ("dict.fromkeys(range(10000), 'a' * 100000) | string | length", "fromkeys"),
    ("dict.update(params, {'name': 'changed'})", "update"),
    ("params.update({'name': 'changed'})", "unsafe"),
    ("params.setdefault('x', 1)", "unsafe"),
    ("params.pop('name')", "unsafe"),
    ("params.clear()", "unsafe"),
    ("params.small.update({'a': 2})", "unsafe"),
    ("params.list.append(1)", "unsafe"),
    ("params.list.extend([1])", "unsafe"),
    ("params.list.insert(0, 1)", "unsafe"),
    ("params.list.remove(1)", "unsafe"),
    ("params.list.sort()", "unsafe"),
    ("params.list.__setitem__(0, 1)", "unsafe"),
    ("params.__class__", "unsafe"),
    ("params.list.__class__.__base__", "unsafe"),
    ("range.__globals__", "unsafe"),
    ("''.format", "unsafe"),
    ("'{0.__class__}'.format(params)", "unsafe"),
    ("''.join(['a'])", "unsafe"),
    ("'a'.center(10 ** 6)", "unsafe"),
    ("'a'.ljust(10 ** 6)", "unsafe"),
    ("'a'.zfill(10 ** 6)", "unsafe"),
    ("range(10 ** 9)", "over the limit"),
    ("range(0, 10 ** 9, 1) | list", "over the limit"),
    ("'a' * 10 ** 9", "repetition"),
    ("[0] * 10 ** 9", "repetition"),
    ("(['a'] * 100000) * 100000", "repetition"),
    ("2 ** (10 ** 6)", "too large"),
    ("'%99999999d' % 1", "format width"),
    ("'%.*f' % (99999, 1.0)", "format width"),
    (f"{BIG} | string | length", "more than 1,000,000"),
    (f"{BIG} | tojson | length", "more than 1,000,000"),
    (f"{BIG} | join | length", "more than 1,000,000"),
    (f"{BIG} | join(',') | length", "more than 1,000,000"),
    (f"{BIG} | replace('a', 'bb') | length", "more than 1,000,000"),
    (f"{BIG} | urlencode | length", "more than 1,000,000"),
    (f"{BIG} | upper | length", "more than 1,000,000"),
    (f"{BIG} | quote | length", "more than 1,000,000"),
    (f"{BIG} | trim | length", "more than 1,000,000"),
    (f"{BIG} | wordcount", "more than 1,000,000"),
    (f"{BIG} | map('upper') | list | length", "in all"),
    (f"{BIG} | map('string') | list | length", "in all"),
    (f"{NESTED} | map('string') | list | length", "more than 1,000,000"),
    (f"{NESTED} | map('tojson') | list | length", "more than 1,000,000"),
    ("([[1] * 100000] * 10000) | sum(start=[]) | length", "more than 1,000,000"),
    (f"({BIG}) ~ 'x'", "more than 1,000,000"),
    (f"'%s' % (({BIG}),)", "more than 1,000,000"),
    ("'%s%s%s%s%s%s%s%s%s%s%s' % ((params.big,) * 11)", "more than 1,000,000"),
    (f"dict(a={BIG}) | string", "more than 1,000,000"),
    (f"dict(a={BIG}) | tojson(indent=8)", "more than 1,000,000"),
    (f"{BIG}", "over 1,000,000"),
    (f"[{BIG}, {BIG}]", "over 1,000,000"),
    (f"dict(a={BIG})", "over 1,000,000"),
    ("params.big * 11", "repetition"),
    (
        "params.big ~ params.big ~ params.big ~ params.big ~ params.big ~ params.big ~ params.big "
        "~ params.big ~ params.big ~ params.big ~ params.big",
        "more than 1,000,000",
    ),
    (
        "(params.big ~ params.big ~ params.big ~ params.big ~ params.big) | replace('', 'xy')",
        "more than 1,000,000",
    ),
    ("(['a' * 100000] * 6) | join + (['a' * 100000] * 6) | join", "more than 1,000,000"),
    ("range(10000) | map('string') | join('x' * 100000)", "more than 1,000,000"),
    ("range(10000) | list | tojson(indent=100000)", "indent"),
    (
        "((['a' * 100000] * 10) | join).upper().lower().upper().lower().upper().lower().upper()"
        ".lower().upper().lower()",
        "in all",
    ),
    (f"({BIG})[0:10000] | string", "more than 1,000,000"),
    ("lipsum(1000)", "undefined"),
    ("cycler(1)", "undefined"),
]

# (payload, expected result): close to the bounds, still allowed, and the right answer.
BOUNDED: list[tuple[str, Any]] = [
    ("(['a' * 100000] * 9) | join | length", 900_000),
    ("((['a' * 100000] * 9) | join ~ 'x') | length", 900_001),
    ("range(10000) | map('string') | join(',') | length", 48_889),
    ("range(10000) | sum", 49_995_000),
    ("(['a' * 100000] * 9) | join | upper | length", 900_000),
    ("([[1, 2]] * 3) | sum(start=[])", [1, 2, 1, 2, 1, 2]),
    ("params.name | quote", "'x; id > pwned.txt'"),
    ("params.list | tojson", "[1, 2, 3]"),
    ("dict(params.small, b=2)", {"a": 1, "b": 2}),
]


def context() -> dict[str, Any]:
    params = {"name": "x; id > pwned.txt", "big": "a" * 100_000, "list": [1, 2, 3], "small": {"a": 1}}
    return {"params": params, "tasks": {}, "run": {}}


@pytest.mark.parametrize(("payload", "reason"), REFUSED, ids=[f"refused-{i}" for i in range(len(REFUSED))])
def test_payload_is_refused(payload: str, reason: str) -> None:
    ctx = context()
    before = json.dumps(ctx)

    with pytest.raises(ExpressionError, match=reason):
        evaluate(payload, ctx)

    assert json.dumps(ctx) == before  # nothing the run holds was changed


@pytest.mark.parametrize(("payload", "expected"), BOUNDED, ids=[f"bounded-{i}" for i in range(len(BOUNDED))])
def test_payload_near_the_bounds_is_evaluated(payload: str, expected: Any) -> None:
    result = evaluate(payload, context())
    assert result == expected
    assert items_size(result) <= MAX_VALUE_SIZE


def test_there_are_fifty_payloads() -> None:
    assert len(REFUSED) + len(BOUNDED) >= 50


WORST = [payload for payload, _ in REFUSED if "10000" in payload or "10 **" in payload]
PEAK_PROBE = """
import json, resource, sys
from specs.expressions import ExpressionError, evaluate
ctx = {"params": {"big": "a" * 100000, "name": "x", "list": [1], "small": {}}, "tasks": {}, "run": {}}
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
refused = 0
for payload in json.loads(sys.argv[1]):
    try:
        evaluate(payload, ctx)
    except ExpressionError:
        refused += 1
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"baseline_kib": baseline, "peak_kib": peak, "refused": refused}))
"""
PEAK_BOUND_MIB = 100  # growth over the process's size after imports; the payloads as found need ~1 GB


def test_worst_payloads_stay_under_a_fixed_peak_memory() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PEAK_PROBE, json.dumps(WORST)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["refused"] == len(WORST) >= 25
    growth_mib = (measured["peak_kib"] - measured["baseline_kib"]) / 1024
    assert growth_mib < PEAK_BOUND_MIB, measured


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("params.day.__class__", "'__class__' is not allowed"),
        ("range(10**9) | list", "range() of 1,000,000,000 items is over the limit of 10,000"),
        ("'a' * 10**9", "repetition would build 1,000,000,000 items"),
        ("dict.update(params, {})", "dict.update is not available"),
        ("params.day.append(1)", "'.append()' would change a value"),
    ],
)
def test_validate_refuses_statically_invalid_expressions(expression: str, message: str) -> None:
    text = workflow_text(
        f"""
        - id: a
          uses: noop
          with: {{output: "${{{{ {expression} }}}}"}}
        """
    )
    problem = only(problems(text), message)
    assert (problem.line, problem.json_path) == (17, "$.tasks[0].with.output")


def test_cli_validate_locates_a_static_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(workflow_text('- {id: a, uses: noop, with: {output: "${{ range(10**9) | length }}"}}'))
    done = subprocess.run([str(TRINITY), "validate", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{path}:15:40: error: range() of 1,000,000,000 items is over the limit of 10,000 "
        "(at $.tasks[0].with.output)"
    ]
