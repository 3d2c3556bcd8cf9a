"""load_text / load_path / check_paths: documents out, or every problem with its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from specs.errors import SpecError
from specs.loader import check_paths, load_path, load_text
from specs.models import Specification, Workflow
from specs.validation import MAX_TASKS
from tests.specs.helpers import SPEC, only, problems, workflow_text


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_load_text_returns_models_in_order() -> None:
    documents = load_text(workflow_text("- {id: a, uses: noop}"), source="x.yaml")
    assert [type(d) for d in documents] == [Specification, Workflow]
    assert isinstance(documents[1], Workflow)
    assert documents[1].tasks[0].id == "a"


def test_load_text_raises_with_all_problems_sorted() -> None:
    text = workflow_text("- {id: a, uses: nop}\n- {id: b, uses: noop, needs: [zz]}")
    with pytest.raises(SpecError) as caught:
        load_text(text, source="x.yaml")
    lines = [p.line for p in caught.value.problems]
    assert lines == sorted(lines)
    assert len(caught.value.problems) == 2
    assert str(caught.value).startswith("x.yaml:15:")


def test_load_text_without_the_spec_is_fine_and_known_specs_are_used() -> None:
    text = workflow_text("- {id: a, uses: noop, with: {output: '${{ params.nope }}'}}").split("---\n")[1]
    assert len(load_text(text)) == 1
    spec = load_text(SPEC)[0]
    assert isinstance(spec, Specification)
    found = problems(text, specifications=[spec])
    assert only(found, "unknown parameter 'nope'").line == 6


def test_empty_text_is_a_problem() -> None:
    assert "no documents" in only(problems("# nothing\n"), "no documents").message


def test_too_many_tasks_is_refused_before_model_checks() -> None:
    tasks = "\n".join(f"- {{id: t{i}, uses: noop}}" for i in range(MAX_TASKS + 1))
    problem = only(problems(workflow_text(tasks)), "over the limit")
    assert problem.json_path == "$.tasks"


def test_duplicate_documents_are_reported() -> None:
    found = problems(SPEC + "---\n" + SPEC)
    problem = only(found, "defined twice")
    assert problem.line == 12


def test_load_path_reads_json_by_suffix(tmp_path: Path) -> None:
    path = write(tmp_path, "spec.json", '{"kind": "Specification", "name": "demo", "version": "1.0.0"}')
    assert isinstance(load_path(path)[0], Specification)


def test_load_path_reports_unreadable_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as missing:
        load_path(tmp_path / "nope.yaml")
    assert "cannot read file" in missing.value.problems[0].message
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(SpecError) as caught:
        load_path(path)
    assert (caught.value.problems[0].line, caught.value.problems[0].col) == (2, 7)


def test_check_paths_recurses_folders_and_skips_hidden(tmp_path: Path) -> None:
    text = workflow_text("- {id: a, uses: noop}")
    write(tmp_path, "a/one.yaml", text.split("---\n")[0])
    write(tmp_path, "b/two.yml", "---\n" + text.split("---\n")[1])
    write(tmp_path, ".hidden/bad.yaml", "kind: nope\n")
    write(tmp_path, "notes.txt", "not a spec")
    result = check_paths([tmp_path])
    assert result.problems == []
    assert result.files == 2
    assert len(result.documents) == 2


def test_check_paths_requires_the_workflows_spec(tmp_path: Path) -> None:
    text = workflow_text("- {id: a, uses: noop}").split("---\n")[1]
    path = write(tmp_path, "wf.yaml", text)
    result = check_paths([path])
    problem = only(result.problems, "specification 'demo'")
    assert "is not among the given files" in problem.message
    assert (problem.file, problem.line, problem.json_path) == (str(path), 4, "$.spec.name")


def test_check_paths_resolves_specs_across_files(tmp_path: Path) -> None:
    spec = write(tmp_path, "spec.yaml", SPEC)
    text = workflow_text("- {id: a, uses: noop, with: {output: '${{ params.dya }}'}}").split("---\n")[1]
    workflow = write(tmp_path, "wf.yaml", text)
    result = check_paths([spec, workflow])
    assert only(result.problems, "unknown parameter 'dya'").file == str(workflow)


def test_check_paths_never_raises_and_keeps_going(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "a: [\n")
    good = write(tmp_path, "good.yaml", workflow_text("- {id: a, uses: noop}"))
    result = check_paths([bad, good, tmp_path / "missing.yaml", tmp_path / "empty"])
    assert only(result.problems, "YAML syntax error").file == str(bad)
    missing = sorted(p.file for p in result.problems if "no such file" in p.message)
    assert missing == [str(tmp_path / "empty"), str(tmp_path / "missing.yaml")]
    assert len(result.documents) == 2
    assert not result.ok


def test_check_paths_reports_empty_files_and_folders(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.yaml", "# only a comment\n")
    folder = tmp_path / "nothing"
    folder.mkdir()
    result = check_paths([empty, folder])
    assert only(result.problems, "no documents in this file").file == str(empty)
    assert only(result.problems, "no .yml").file == str(folder)


def test_check_paths_refuses_oversized_files(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: " + b"x" * (5 * 1024 * 1024 + 1))
    assert "over the limit" in check_paths([path]).problems[0].message


def test_folders_skip_json_schema_files() -> None:
    root = Path(__file__).resolve().parents[2] / "specs"
    result = check_paths([root])
    assert result.problems == []
    assert (root / "schema" / "trinity.schema.json").exists()
    examples = list((root / "examples").glob("*.yaml"))
    assert examples, "no example files found"
    assert result.files == len(examples)
