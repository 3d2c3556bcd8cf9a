"""Reading text: positions, YAML details, and hostile input refused fast with a clear line."""

from __future__ import annotations

import json

import pytest

from specs.parsing import MAX_ALIASES, MAX_DEPTH, MAX_TEXT_BYTES, read_json, read_text, read_yaml
from tests.specs.helpers import only


def test_positions_of_keys_and_values() -> None:
    documents, found = read_yaml("a: 1\nb:\n  - x\n  - {c: 2}\n", source="f.yaml")
    assert found == []
    positions = documents[0].positions
    assert positions.values[("b", 1, "c")] == (4, 9)
    assert positions.keys[("b",)] == (2, 1)
    assert positions.locate(("b", 1, "c", "missing")) == (4, 9)


def test_several_documents_and_empty_ones() -> None:
    documents, found = read_yaml("---\na: 1\n---\n---\nb: 2\n", source="f.yaml")
    assert found == []
    assert [d.data for d in documents] == [{"a": 1}, None, {"b": 2}]
    assert documents[2].positions.values[("b",)] == (5, 4)


def test_keys_stay_text_and_dates_stay_strings() -> None:
    documents, _ = read_yaml("on: yes\n1: one\nday: 2024-01-31\nn: 0x10\n", source="f.yaml")
    assert documents[0].data == {"on": True, "1": "one", "day": "2024-01-31", "n": 16}


def test_anchors_aliases_and_merge_keys() -> None:
    text = "base: &b {retries: 1, timeout: 5}\nfast:\n  <<: *b\n  timeout: 1\n"
    documents, found = read_yaml(text, source="f.yaml")
    assert found == []
    assert documents[0].data["fast"] == {"retries": 1, "timeout": 1}


def test_duplicate_keys_are_problems() -> None:
    _, found = read_yaml("a: 1\nb: 2\na: 3\n", source="f.yaml")
    problem = only(found, "duplicate key 'a'")
    assert (problem.line, problem.json_path) == (3, "$.a")
    assert "first at line 1" in problem.message


def test_syntax_error_is_located_and_later_documents_still_read() -> None:
    documents, found = read_yaml("a: 1\n---\nb: [1, 2\n---\nc: 3\n", source="f.yaml")
    problem = only(found, "YAML syntax error")
    assert problem.line == 4
    assert [d.data for d in documents] == [{"a": 1}, {"c": 3}]
    assert documents[1].positions.values[("c",)] == (5, 4)


def test_unsupported_tags_are_refused() -> None:
    _, found = read_yaml("a: !!python/object/apply:os.system [echo]\n", source="f.yaml")
    assert "unsupported tag" in found[0].message


def test_alias_bomb_is_refused_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for index in range(1, 10):
        prev, name = chr(96 + index), chr(97 + index)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    documents, found = read_yaml("\n".join(lines) + "\n", source="bomb.yaml")
    assert documents == []
    assert "too many values" in found[0].message
    assert found[0].line is not None


def test_too_many_aliases_are_refused() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    _, found = read_yaml(text, source="f.yaml")
    assert "too many aliases" in found[0].message


def test_recursive_alias_is_refused() -> None:
    _, found = read_yaml("a: &a [1, *a]\n", source="f.yaml")
    problem = only(found, "recursive alias")
    assert (problem.line, problem.col) == (1, 11)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        "a: " + "{" * 1_000_000,
        "".join("  " * i + "k:\n" for i in range(MAX_DEPTH + 5)),
        "- " * 100_000 + "x",
    ],
    ids=["flow-list", "unclosed-flow-maps", "block-maps", "block-lists"],
)
def test_deep_nesting_is_refused(text: str) -> None:
    documents, found = read_yaml(text, source="deep.yaml")
    assert documents == []
    assert "nested deeper than 64 levels" in found[0].message


def test_nesting_up_to_the_limit_is_fine() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    documents, found = read_yaml(text, source="f.yaml")
    assert found == []
    assert len(documents) == 1


def test_oversized_text_is_refused() -> None:
    documents, found = read_text("a: " + "x" * MAX_TEXT_BYTES, source="big.yaml")
    assert documents == []
    assert "over the limit" in found[0].message


def test_json_documents_with_positions() -> None:
    text = '{\n  "kind": "Workflow",\n  "tasks": [\n    {"id": "a"}\n  ]\n}\n'
    documents, found = read_json(text, source="f.json")
    assert found == []
    assert documents[0].data["tasks"] == [{"id": "a"}]
    assert documents[0].positions.values[("tasks", 0, "id")] == (4, 12)


def test_json_array_holds_several_documents() -> None:
    text = json.dumps([{"kind": "Specification"}, {"kind": "Workflow", "tasks": []}], indent=1)
    documents, _ = read_json(text, source="f.json")
    assert [d.data["kind"] for d in documents] == ["Specification", "Workflow"]
    assert documents[1].positions.values[("tasks",)][0] > documents[0].positions.values[("kind",)][0]


def test_json_keeps_json_semantics() -> None:
    documents, _ = read_json('{"n": 1e5, "s": "yes"}', source="f.json")
    assert documents[0].data == {"n": 100000.0, "s": "yes"}


def test_json_syntax_error_is_located() -> None:
    _, found = read_json('{"a": 1,\n "b" 2}', source="f.json")
    assert (found[0].line, found[0].col) == (2, 6)
    assert found[0].message.startswith("JSON syntax error")


def test_json_deep_nesting_is_refused() -> None:
    _, found = read_json("[" * 100_000 + "]" * 100_000, source="f.json")
    assert "nested deeper" in found[0].message


def test_content_type_picks_the_reader() -> None:
    documents, _ = read_text('{"a": 1e5}', source="<input>", content_type="application/json")
    assert documents[0].data == {"a": 100000.0}
    documents, _ = read_text('{"a": 1e5}', source="<input>", content_type="application/yaml")
    assert documents[0].data == {"a": "1e5"}
