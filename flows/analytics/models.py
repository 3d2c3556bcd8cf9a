"""The learnt models as rows of ``analytics_models``: read before a report, written after it.

One row per model (kind + key, see :mod:`analytics.learning_model`): a failure family, a task's
baseline and training sample, an SLO's last trend fit and alert times. A report only writes the
models it changed, with the next revision and its own window; models it dropped (the oldest
families beyond the bound) are deleted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from analytics import Report
from analytics.learning_model import LearnedModels
from analytics.report_model import jsonable
from flows.analytics.database import Tables, upsert

_UPDATED = ("workflow", "task_id", "revision", "window_start", "window_end", "state", "updated_at")


def load_models(connection: sa.Connection, tables: Tables) -> LearnedModels:
    """Every stored model."""
    table = tables.models
    rows = connection.execute(sa.select(table.c.kind, table.c.key, table.c.revision, table.c.state))
    return LearnedModels.from_rows(dict(row._mapping) for row in rows)


def store_models(connection: sa.Connection, tables: Tables, report: Report) -> int:
    """Write the models the report changed (and delete those it dropped); returns the rows written."""
    models = report.models
    now = dt.datetime.now(dt.UTC)
    window = {
        "window_start": report.window_start.to_pydatetime(),
        "window_end": report.window_end.to_pydatetime(),
    }
    records: list[dict[str, Any]] = [
        {**row, "state": jsonable(row["state"]), "id": uuid.uuid4(), "updated_at": now, **window}
        for row in models.rows()
    ]
    upsert(connection, tables.models, records, key=["kind", "key"], update=_UPDATED)
    table = tables.models
    for kind, key in sorted(models.forgotten):
        connection.execute(table.delete().where(table.c.kind == kind, table.c.key == key))
    return len(records)
