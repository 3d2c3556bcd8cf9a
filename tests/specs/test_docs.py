"""Every YAML example in docs/ is a valid document, and shown command output is real output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from specs.graph import to_mermaid
from specs.loader import check_paths, load_path, load_text
from specs.models import Specification, Workflow

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for index, match in enumerate(FENCE.finditer(path.read_text())):
            if match.group(1) == language:
                found.append((f"{path.name}#{index}", match.group(2)))
    return found


YAML_BLOCKS = blocks("yaml")


def test_docs_have_yaml_examples() -> None:
    assert DOCS, "no Markdown files found in docs/"
    assert len(YAML_BLOCKS) >= 4


@pytest.mark.parametrize(("name", "text"), YAML_BLOCKS, ids=[name for name, _ in YAML_BLOCKS])
def test_yaml_block_is_valid(name: str, text: str) -> None:
    documents = load_text(text, source=name)
    specs = {d.name for d in documents if isinstance(d, Specification)}
    assert all(d.spec.name in specs for d in documents if isinstance(d, Workflow)), "give the spec too"


def test_documented_graph_output_is_real() -> None:
    text = (ROOT / "docs" / "format.md").read_text()
    shown = text.split("$ trinity graph specs/examples/regional-report.yaml\n", 1)[1].split("\n$ ", 1)[0]
    workflow = next(
        d for d in load_path(ROOT / "specs/examples/regional-report.yaml") if isinstance(d, Workflow)
    )
    assert shown + "\n" == to_mermaid(workflow)


def test_documented_validate_summary_is_real() -> None:
    text = (ROOT / "docs" / "format.md").read_text()
    result = check_paths([ROOT / "specs" / "examples"])
    counts = (len(result.documents), result.files)
    shown = re.search(r"OK: (\d+) files, (\d+) documents", text)
    assert shown is not None
    assert (int(shown.group(2)), int(shown.group(1))) == counts
