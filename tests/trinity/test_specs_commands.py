"""``trinity validate``, ``schema`` and ``graph`` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from specs.schema import schema_text
from tests.trinity.invoke import invoke
from trinity.commands import specs_commands

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "specs" / "examples"
TRINITY = Path(sys.executable).parent / "trinity"

BAD = """\
kind: Specification
name: demo
version: 1.0.0
parameters: {type: object, properties: {day: {type: string}}}
---
kind: Workflow
name: demo
version: 1.0.0
spec: {name: demo, version: ^1.0.0}
taks: []
tasks:
  - {id: a, uses: noop, needs: [c]}
  - {id: b, uses: noop, needs: [a]}
  - {id: c, uses: noop, needs: [b], with: {output: "${{ params.dya }}"}}
"""


def run(*args: str) -> tuple[int, str, str]:
    return invoke(specs_commands.register, *args)


def test_validate_examples_ok() -> None:
    code, out, _ = run("validate", str(EXAMPLES))
    assert code == 0
    assert out.startswith("OK: 7 files, ")
    assert len(out.splitlines()) == 1


def test_validate_prints_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    code, out, err = run("validate", str(path))
    assert code == 1
    assert out.splitlines() == [
        f"{path}:10:1: error: unknown key 'taks'; did you mean 'tasks'? (at $.taks)",
        f"{path}:12:32: error: dependency cycle: a -> c -> b -> a (each task needs the next) "
        "(at $.tasks[0].needs)",
        f"{path}:14:52: error: unknown parameter 'dya': specification demo@1.0.0 does not declare it; "
        "did you mean 'day'? (at $.tasks[2].with.output)",
    ]
    assert err.strip() == "3 problems in 1 file (2 documents read, 1 valid)"


def test_validate_json_format(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    code, out, _ = run("validate", "--format", "json", str(path), str(EXAMPLES / "noop-dag.yaml"))
    body = json.loads(out)
    assert code == 1
    assert body["valid"] is False
    assert body["files"] == 2
    assert body["problems"][0] == {
        "file": str(path),
        "line": 10,
        "col": 1,
        "message": "unknown key 'taks'; did you mean 'tasks'?",
        "json_path": "$.taks",
    }


def test_validate_json_counts_every_document_read(tmp_path: Path) -> None:
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("kind: Specification\nname: broken\nversion: not-a-version\n")
    valid = EXAMPLES / "noop-dag.yaml"

    code, out, _ = run("validate", "--format", "json", str(valid), str(invalid))
    alone = json.loads(run("validate", "--format", "json", str(valid))[1])

    body = json.loads(out)
    assert code == 1
    assert body["documents"] == alone["documents"] + 1  # the invalid one is counted too
    assert body["valid_documents"] == alone["valid_documents"] == alone["documents"] >= 2
    assert (body["specifications"], body["workflows"]) == (alone["specifications"], alone["workflows"])
    assert [problem["file"] for problem in body["problems"]] == [str(invalid)]


def test_validate_missing_spec_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(BAD.split("---\n")[1])
    code, out, _ = run("validate", str(path), str(tmp_path / "nope.yaml"))
    assert code == 1
    assert f"{path}:4:14: error: specification 'demo' (version ^1.0.0) is not among the given files" in out
    assert f"{tmp_path / 'nope.yaml'}: error: no such file or directory (at $)" in out


def test_validate_hostile_input_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 200_000)
    code, out, _ = run("validate", str(path))
    assert code == 1
    assert out == f"{path}: error: nested deeper than 64 levels; refusing (at $)\n"


def test_schema_prints_the_committed_schema(tmp_path: Path) -> None:
    code, out, _ = run("schema")
    assert code == 0
    assert out == schema_text()
    assert out == (ROOT / "specs" / "schema" / "trinity.schema.json").read_text()
    target = tmp_path / "schema.json"
    assert run("schema", "--output", str(target))[0] == 0
    assert target.read_text() == schema_text()


def test_graph_mermaid_and_dot() -> None:
    code, out, _ = run("graph", str(EXAMPLES / "regional-report.yaml"))
    assert code == 0
    assert out.splitlines()[0] == "flowchart TD"
    assert '    t_per_region[["per_region<br/>python [for each]"]]' in out.splitlines()
    code, out, _ = run("graph", "--format", "dot", str(EXAMPLES / "conditional-refresh.yaml"))
    assert code == 0
    assert '"full_refresh" [label="full_refresh\\npython [if]", shape=diamond' in out


def test_graph_picks_a_workflow_by_name() -> None:
    path = EXAMPLES / "nightly-ingest.yaml"
    code, _, err = run("graph", str(path))
    assert code == 1
    assert "choose one workflow with --workflow (workflows: ingest-partition, nightly-ingest)" in err
    code, out, _ = run("graph", "--workflow", "ingest-partition", str(path))
    assert code == 0
    assert "t_ingest" in out
    code, _, err = run("graph", "-w", "nope", str(path))
    assert (code, "no workflow named 'nope'" in err) == (1, True)


def test_graph_of_an_invalid_file_prints_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    code, out, err = run("graph", str(path))
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == f"{path}:10:1: error: unknown key 'taks'; did you mean 'tasks'? (at $.taks)"


def test_installed_cli_has_no_traceback_on_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(
        "a: &a [1,1,1,1,1,1,1,1,1,1]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(7)
        )
    )
    done = subprocess.run([str(TRINITY), "validate", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert "too many values" in done.stdout
    ok = subprocess.run([str(TRINITY), "validate", str(EXAMPLES)], capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout.startswith("OK: ")) == (0, True)
