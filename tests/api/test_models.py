"""The API's table classes are the core tables, every column a typed field."""

from __future__ import annotations

import pytest
from sqlmodel import SQLModel

from api.models import (
    AnalyticsInsight,
    AnalyticsPerformance,
    ApiKey,
    IdempotencyKey,
    Run,
    Specification,
    Workflow,
)
from trinity.core import tables

TABLE_CLASSES = [AnalyticsInsight, AnalyticsPerformance, ApiKey, IdempotencyKey, Run, Specification, Workflow]


@pytest.mark.parametrize("model", TABLE_CLASSES, ids=lambda model: model.__name__)
def test_each_table_class_maps_every_column_of_its_core_table(model: type[SQLModel]) -> None:
    table = model.__table__  # type: ignore[attr-defined]
    assert table is tables.METADATA.tables[table.name]
    mapped = {model.__mapper__.get_property_by_column(column).key for column in table.columns}  # type: ignore[attr-defined]
    assert mapped == set(model.model_fields)


def test_the_api_defines_no_table_of_its_own() -> None:
    assert SQLModel.metadata.tables == {}
    assert {model.__table__.name for model in TABLE_CLASSES} <= set(tables.METADATA.tables)  # type: ignore[attr-defined]
