"""Load and check documents: text, files and folders -> models, or every problem found.

:func:`load_text` and :func:`load_path` raise :class:`~specs.errors.SpecError` carrying all
problems; :func:`check_paths` never raises for bad input and also runs the checks that need every
given file at once (a workflow's specification must be among them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from specs.dag import all_cycles
from specs.errors import Problem, SpecError, sort_problems
from specs.model_errors import model_problems, suggest
from specs.models import Document, Specification, Workflow
from specs.parsing import MAX_TEXT_BYTES, RawDocument, read_text
from specs.validation import (
    MAX_TASKS,
    WorkflowView,
    specification_problems,
    workflow_problems,
    workflow_view,
)
from specs.versions import Version, VersionError, best_match, parse_range

KINDS: dict[str, type[Specification] | type[Workflow]] = {
    "Specification": Specification,
    "Workflow": Workflow,
}
SUFFIXES = (".yml", ".yaml", ".json")


@dataclass
class ValidationResult:
    """Outcome of :func:`check_paths`: valid documents, all problems, how many files and documents
    were read (``read``: every non-empty document, valid or not)."""

    documents: list[Document]
    problems: list[Problem]
    files: int
    read: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


@dataclass
class _Checked:
    raw: RawDocument
    kind: str
    model: Document | None
    view: WorkflowView | None = None
    problems: list[Problem] = field(default_factory=list)


def _check_document(raw: RawDocument) -> _Checked | Problem | None:
    """Shape and per-document checks; None for an empty document."""
    data = raw.data
    if data is None:
        return None
    if not isinstance(data, Mapping):
        return raw.problem((), f"a document must be a mapping with a 'kind', got {type(data).__name__}")
    kind = data.get("kind")
    if kind is None:
        return raw.problem((), "missing 'kind' (expected 'Specification' or 'Workflow')")
    if not isinstance(kind, str) or kind not in KINDS:
        hint = suggest(str(kind), list(KINDS))
        return raw.problem(("kind",), f"unknown kind {kind!r}{hint} (expected 'Specification' or 'Workflow')")
    tasks = data.get("tasks")
    if kind == "Workflow" and isinstance(tasks, list) and len(tasks) > MAX_TASKS:
        return raw.problem(("tasks",), f"{len(tasks):,} tasks is over the limit of {MAX_TASKS:,}; refusing")
    model_class = KINDS[kind]
    checked = _Checked(raw=raw, kind=kind, model=None)
    try:
        checked.model = model_class.model_validate(data)
    except ValidationError as exc:
        checked.problems.extend(model_problems(raw, model_class, exc))
    if kind == "Specification":
        checked.problems.extend(specification_problems(raw))
    else:
        model = checked.model if isinstance(checked.model, Workflow) else None
        checked.view = workflow_view(data, model)
    return checked


def _where(raw: RawDocument) -> str:
    mark = raw.positions.locate(())
    return f"{raw.source}:{mark[0]}" if mark else raw.source


def _duplicates(checked: list[_Checked]) -> list[Problem]:
    seen: dict[tuple[str, str, str], _Checked] = {}
    problems = []
    for item in checked:
        name, version = item.raw.data.get("name"), item.raw.data.get("version")
        if not (isinstance(name, str) and isinstance(version, str)):
            continue
        key = (item.kind, name, version)
        if key in seen:
            message = (
                f"{item.kind.lower()} {name}@{version} is defined twice (first at {_where(seen[key].raw)})"
            )
            problems.append(item.raw.problem(("version",), message))
        else:
            seen[key] = item
    return problems


def _resolve_spec(
    item: _Checked,
    specs: Mapping[str, list[Specification]],
    broken_specs: set[str],
    *,
    require_specs: bool,
) -> tuple[Specification | None, list[Problem]]:
    view = item.view
    if view is None or view.spec is None:
        return None, []
    name, wanted = view.spec.name, view.spec.version
    candidates = specs.get(name, [])
    if not candidates:
        if require_specs and name not in broken_specs:
            message = (
                f"specification '{name}' (version {wanted}) is not among the given files; give its file too"
            )
            return None, [item.raw.problem(("spec", "name"), message)]
        return None, []
    try:
        parse_range(wanted)
    except VersionError:
        return None, []  # reported by the workflow checks
    chosen = best_match([s.version for s in candidates], wanted)
    if chosen is None:
        found = ", ".join(sorted({s.version for s in candidates}, key=Version.parse))
        message = f"no specification '{name}' satisfies version '{wanted}' (given: {found})"
        return None, [item.raw.problem(("spec", "version"), message)]
    return next(s for s in candidates if s.version == chosen), []


def _child_workflow_problems(checked: list[_Checked]) -> list[Problem]:
    """A parent's ``uses: workflow`` must match a given child's version; no workflow may call itself back."""
    by_name: dict[str, list[str]] = {}
    for item in checked:
        if isinstance(item.model, Workflow):
            by_name.setdefault(item.model.name, []).append(item.model.version)
    problems: list[Problem] = []
    calls: dict[str, list[str]] = {}
    callers: dict[tuple[str, str], tuple[_Checked, int]] = {}
    for item in checked:
        if item.view is None or item.view.name is None:
            continue
        for index, task in item.view.tasks:
            child = task.with_.get("name") if task.uses == "workflow" else None
            if not isinstance(child, str) or child not in by_name:
                continue
            calls.setdefault(item.view.name, []).append(child)
            callers.setdefault((item.view.name, child), (item, index))
            wanted = task.with_.get("version")
            if isinstance(wanted, str) and "${{" not in wanted:
                try:
                    matched = best_match(by_name[child], wanted)
                except VersionError:
                    continue  # reported with the task's inputs
                if matched is None:
                    message = f"no given workflow '{child}' satisfies version '{wanted}'"
                    problems.append(item.raw.problem(("tasks", index, "with", "version"), message))
    for cycle in all_cycles(calls):
        if len(cycle) > 2:
            item, index = callers[(cycle[0], cycle[1])]
            message = f"workflows call each other in a cycle: {' -> '.join(cycle)}"
            problems.append(item.raw.problem(("tasks", index, "with", "name"), message))
    return problems


def _check_all(
    raws: Iterable[RawDocument], *, specifications: Sequence[Specification], require_specs: bool
) -> tuple[list[Document], list[Problem]]:
    problems: list[Problem] = []
    checked: list[_Checked] = []
    for raw in raws:
        outcome = _check_document(raw)
        if isinstance(outcome, Problem):
            problems.append(outcome)
        elif outcome is not None:
            checked.append(outcome)
    specs: dict[str, list[Specification]] = {}
    broken_specs: set[str] = set()
    for spec in specifications:
        specs.setdefault(spec.name, []).append(spec)
    for item in checked:
        problems.extend(item.problems)
        if isinstance(item.model, Specification):
            specs.setdefault(item.model.name, []).append(item.model)
        elif item.kind == "Specification" and isinstance(item.raw.data.get("name"), str):
            broken_specs.add(item.raw.data["name"])
    problems.extend(_duplicates(checked))
    for item in checked:
        if item.view is not None:
            resolved, found = _resolve_spec(item, specs, broken_specs, require_specs=require_specs)
            problems.extend(found)
            problems.extend(workflow_problems(item.raw, item.view, spec=resolved))
    problems.extend(_child_workflow_problems(checked))
    documents = [item.model for item in checked if item.model is not None]
    return documents, problems


def load_text(
    text: str,
    *,
    source: str = "<input>",
    content_type: str | None = None,
    specifications: Sequence[Specification] = (),
) -> list[Document]:
    """Parse and check every document of a YAML or JSON text; raise :class:`SpecError` with all problems.

    ``specifications`` are known specifications (e.g. stored ones) that workflows in the text may
    implement; a workflow whose specification is neither in the text nor given is not an error here,
    but then its parameter references cannot be checked.
    """
    raws, problems = read_text(text, source=source, content_type=content_type)
    documents, found = _check_all(raws, specifications=specifications, require_specs=False)
    problems.extend(found)
    if not documents and not problems:
        problems.append(
            Problem(source, None, None, "no documents found (expected a Specification or a Workflow)")
        )
    if problems:
        raise SpecError(sort_problems(problems))
    return documents


def _read_file(path: Path) -> tuple[str | None, Problem | None]:
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            message = f"file is {size:,} bytes, over the limit of {MAX_TEXT_BYTES:,}; refusing"
            return None, Problem(source, None, None, message)
        data = path.read_bytes()
    except OSError as exc:
        return None, Problem(source, None, None, f"cannot read file: {exc.strerror or exc}")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, Problem(source, line, col, "file is not UTF-8 text")


def load_path(path: str | Path) -> list[Document]:
    """Load one file (YAML, or JSON when it ends in ``.json``); raise :class:`SpecError` with all problems."""
    text, problem = _read_file(Path(path))
    if problem is not None or text is None:
        raise SpecError([problem] if problem else [])
    return load_text(text, source=str(path))


def expand_paths(paths: Sequence[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Files named, plus ``*.yml``/``*.yaml``/``*.json`` under folders.

    Inside folders, hidden folders and ``*.schema.json`` files are skipped.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for given in map(Path, paths):
        if given.is_dir():
            found = sorted(
                p
                for p in given.rglob("*")
                if p.suffix.lower() in SUFFIXES
                and not p.name.endswith(".schema.json")  # JSON Schemas (ours included) are not documents
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(given).parts)
            )
            if not found:
                problems.append(
                    Problem(str(given), None, None, "no .yml, .yaml or .json files in this folder")
                )
            files.extend(found)
        elif given.exists():
            files.append(given)
        else:
            problems.append(Problem(str(given), None, None, "no such file or directory"))
    return list(dict.fromkeys(files)), problems


def check_paths(paths: Sequence[str | Path]) -> ValidationResult:
    """Check files and folders together; never raises for bad input.

    Beyond :func:`load_text`, a workflow whose specification is not among the given files is a
    problem, since its parameters cannot be checked.
    """
    files, problems = expand_paths(paths)
    raws: list[RawDocument] = []
    for path in files:
        text, problem = _read_file(path)
        if problem is not None or text is None:
            problems.extend([problem] if problem else [])
            continue
        found_raws, found = read_text(text, source=str(path))
        problems.extend(found)
        if not any(raw.data is not None for raw in found_raws) and not found:
            problems.append(Problem(str(path), None, None, "no documents in this file"))
        raws.extend(found_raws)
    documents, found = _check_all(raws, specifications=(), require_specs=True)
    problems.extend(found)
    read = sum(raw.data is not None for raw in raws)
    return ValidationResult(
        documents=documents, problems=sort_problems(problems), files=len(files), read=read
    )


def document_counts(documents: Iterable[Any]) -> dict[str, int]:
    """How many documents of each kind."""
    counts = {"Specification": 0, "Workflow": 0}
    for document in documents:
        counts[document.kind] += 1
    return counts
