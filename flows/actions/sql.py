"""``sql``: one statement through a prefect-sqlalchemy ``SqlAlchemyConnector`` block.

Connection details live in the block (named in ``with.block``), never in the workflow. The
statement runs in one transaction on a worker thread; ``parameters`` are bound (``:name``), never
interpolated. Output: ``fetch: all`` a list of row dicts, ``one`` a row dict or None, ``none`` the
affected row count.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from prefect_sqlalchemy import SqlAlchemyConnector

from flows.actions.base import ActionContext, ActionError
from specs.actions import SqlInputs


class SqlActionError(ActionError):
    """The block is missing or the statement failed."""


def execute_statement(connector: SqlAlchemyConnector, inputs: SqlInputs) -> Any:
    """Run the statement in a transaction and shape the result by ``fetch``."""
    engine = connector.get_engine()
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(inputs.statement), inputs.parameters)
            if inputs.fetch == "none" or not result.returns_rows:
                return result.rowcount
            if inputs.fetch == "one":
                row = result.mappings().first()
                return dict(row) if row is not None else None
            return [dict(row) for row in result.mappings().all()]
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise SqlActionError(f"statement failed: {reason[0] if reason else type(exc).__name__}") from None
    finally:
        engine.dispose()


async def load_connector(name: str) -> SqlAlchemyConnector:
    """Load the connector block (SqlActionError when there is none by that name)."""
    try:
        return await SqlAlchemyConnector.aload(name)
    except ValueError as exc:
        raise SqlActionError(f"no SqlAlchemyConnector block named '{name}' ({exc})") from None


class SqlAction:
    """Run ``statement`` with ``parameters`` through the block ``block``."""

    name = "sql"
    inputs = SqlInputs

    async def run(self, inputs: SqlInputs, context: ActionContext) -> Any:
        connector = await load_connector(inputs.block)
        return await context.run_in_thread(execute_statement, connector, inputs)
