"""``trinity graphql-schema``: print the GraphQL schema (SDL) of ``/api/v1/graphql``."""

from __future__ import annotations

import typer


def graphql_schema() -> None:
    """Print the GraphQL schema in SDL (the copy in docs/graphql-schema.graphql is this output)."""
    from api.graphql.schema import print_schema

    typer.echo(print_schema(), nl=False)


def register(app: typer.Typer) -> None:
    """Add ``graphql-schema`` to the CLI."""
    app.command("graphql-schema")(graphql_schema)
