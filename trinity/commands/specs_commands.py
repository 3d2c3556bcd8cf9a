"""``trinity validate``, ``trinity schema`` and ``trinity graph``: the document tools.

They only need :mod:`specs` (pure: no Prefect, no database, no network), imported when a command
runs (see :mod:`trinity.cli` for why).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer


class ValidateFormat(StrEnum):
    """Output of ``trinity validate``."""

    text = "text"
    json = "json"


class GraphFormat(StrEnum):
    """Output of ``trinity graph``."""

    mermaid = "mermaid"
    dot = "dot"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def validate(
    paths: list[Path] = typer.Argument(..., help="Files or folders (folders: every *.yml, *.yaml, *.json)."),
    output_format: ValidateFormat = typer.Option(ValidateFormat.text, "--format", help="text or json."),
) -> None:
    """Check documents before anything runs: one line per problem, exit 1 when any."""
    from specs.loader import check_paths, document_counts  # see trinity.cli

    result = check_paths(paths)
    counts = document_counts(result.documents)
    if output_format is ValidateFormat.json:
        body = {
            "valid": result.ok,
            "files": result.files,
            "documents": result.read,  # every document read, valid or not
            "valid_documents": len(result.documents),
            "specifications": counts["Specification"],
            "workflows": counts["Workflow"],
            "problems": [problem.to_dict() for problem in result.problems],
        }
        typer.echo(json.dumps(body, indent=2))
    elif result.ok:
        specs, workflows = counts["Specification"], counts["Workflow"]
        typer.echo(
            f"OK: {_plural(result.files, 'file')}, {_plural(len(result.documents), 'document')} "
            f"({_plural(specs, 'specification')}, {_plural(workflows, 'workflow')})"
        )
    else:
        for problem in result.problems:
            typer.echo(problem.format())
        typer.echo(
            f"{_plural(len(result.problems), 'problem')} in {_plural(result.files, 'file')} "
            f"({_plural(result.read, 'document')} read, {len(result.documents)} valid)",
            err=True,
        )
    if not result.ok:
        raise typer.Exit(code=1)


def schema(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Print the JSON Schema of Trinity documents (for editor completion and checks)."""
    from specs.schema import schema_text  # see trinity.cli

    text = schema_text()
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        typer.echo(f"{output}: error: cannot write: {exc.strerror or exc}", err=True)
        raise typer.Exit(code=1) from None


def graph(
    file: Path = typer.Argument(..., help="A file holding the workflow."),
    output_format: GraphFormat = typer.Option(GraphFormat.mermaid, "--format", help="mermaid or dot."),
    workflow: str | None = typer.Option(
        None, "--workflow", "-w", help="Workflow name, when the file has several."
    ),
) -> None:
    """Draw a workflow's DAG as Mermaid (default) or Graphviz DOT."""
    import specs.graph  # see trinity.cli

    try:
        documents = specs.load_path(file)
    except specs.SpecError as exc:
        for problem in exc.problems:
            typer.echo(problem.format(), err=True)
        raise typer.Exit(code=1) from None
    workflows = [d for d in documents if isinstance(d, specs.Workflow)]
    if workflow is not None:
        workflows = [w for w in workflows if w.name == workflow]
    if len(workflows) != 1:
        names = ", ".join(sorted(d.name for d in documents if isinstance(d, specs.Workflow))) or "none"
        wanted = f"no workflow named '{workflow}'" if workflow else "choose one workflow with --workflow"
        if not workflows and workflow is None:
            wanted = "no workflow in this file"
        typer.echo(f"{file}: error: {wanted} (workflows: {names})", err=True)
        raise typer.Exit(code=1)
    render = specs.graph.to_dot if output_format is GraphFormat.dot else specs.graph.to_mermaid
    typer.echo(render(workflows[0]), nl=False)


def register(app: typer.Typer) -> None:
    """Add ``validate``, ``schema`` and ``graph`` to the ``trinity`` command."""
    app.command("validate")(validate)
    app.command("schema")(schema)
    app.command("graph")(graph)
