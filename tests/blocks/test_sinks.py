"""The sink block types: registered with a real Prefect server, saved, loaded, turned into settings."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client

from blocks.sinks import ELASTICSEARCH_BLOCK_SLUG, INFLUXDB_BLOCK_SLUG, ElasticsearchSink, InfluxDBSink
from blocks.workflow_definition import register_block_types

pytestmark = pytest.mark.anyio


async def test_block_types_are_registered_with_the_others(prefect_api: object) -> None:
    await register_block_types()

    async with get_client() as client:
        influx = await client.read_block_type_by_slug(INFLUXDB_BLOCK_SLUG)
        elastic = await client.read_block_type_by_slug(ELASTICSEARCH_BLOCK_SLUG)
        influx_schema = await client.get_most_recent_block_schema_for_block_type(influx.id)
        elastic_schema = await client.get_most_recent_block_schema_for_block_type(elastic.id)
    assert influx_schema is not None
    assert elastic_schema is not None
    properties = influx_schema.fields["properties"]
    assert {"url", "api", "database", "retention_policy", "org", "bucket", "token", "password"} <= set(
        properties
    )
    assert {"password", "token"} <= set(influx_schema.fields["secret_fields"])
    assert {"api_key", "password"} <= set(elastic_schema.fields["secret_fields"])
    assert {"hosts", "index_prefix", "api_key", "password"} <= set(elastic_schema.fields["properties"])


async def test_saved_block_keeps_secrets_and_becomes_settings(prefect_api: object) -> None:
    await register_block_types()
    await InfluxDBSink(api="v2", url="http://influx:8086", org="ops", bucket="runs", token="s3cret").asave(
        "ops-influx", overwrite=True
    )
    await ElasticsearchSink(hosts=["http://es:9200"], index_prefix="ops", api_key="k3y").asave(
        "ops-es", overwrite=True
    )

    influx = (await InfluxDBSink.aload("ops-influx")).settings()
    elastic = (await ElasticsearchSink.aload("ops-es")).settings()

    assert (influx.api, influx.org, influx.bucket) == ("v2", "ops", "runs")
    assert influx.token is not None
    assert influx.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(influx)
    assert elastic.hosts == ["http://es:9200"]
    assert elastic.index_prefix == "ops"
    assert elastic.api_key is not None
    assert elastic.api_key.get_secret_value() == "k3y"


def test_incomplete_block_is_refused_when_turned_into_settings() -> None:
    with pytest.raises(ValueError, match="api v2 needs org, bucket, token"):
        InfluxDBSink(api="v2").settings()
