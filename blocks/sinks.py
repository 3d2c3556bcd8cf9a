"""The sink block types: ``InfluxDBSink`` and ``ElasticsearchSink``.

Each holds what ``sinks.influxdb`` / ``sinks.elasticsearch`` of ``trinity.config.yml`` hold
(:mod:`trinity.core.sink_settings`, the one home of the keys), as a Prefect block document that can
be edited in the Prefect UI; ``sinks.<name>.block: <document name>`` points the configuration at
one. ``trinity up`` and ``trinity deploy`` register both types.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from trinity.core.sink_settings import ElasticsearchSinkSettings, InfluxDBSinkSettings

INFLUXDB_BLOCK_SLUG = "trinity-influxdb-sink"
ELASTICSEARCH_BLOCK_SLUG = "trinity-elasticsearch-sink"


class InfluxDBSink(Block):
    """Where Trinity writes one point per task run and flow run."""

    _block_type_name: ClassVar[str] = "Trinity InfluxDB Sink"
    _block_type_slug: ClassVar[str] = INFLUXDB_BLOCK_SLUG
    _description: ClassVar[str] = (
        "InfluxDB that Trinity feeds with `trinity_task_run` and `trinity_flow_run` points: "
        "api v1 writes to /write (database, retention policy, user/password), api v2 to "
        "/api/v2/write (org, bucket, token)."
    )

    url: str = Field(default="http://127.0.0.1:8086", description="Base URL of the InfluxDB server.")
    api: Literal["v1", "v2"] = Field(default="v1", description="v1: /write; v2: /api/v2/write.")
    database: str | None = Field(default=None, description="v1: the database.")
    retention_policy: str | None = Field(default=None, description="v1: the retention policy.")
    username: str | None = Field(default=None, description="v1: the user.")
    password: SecretStr | None = Field(default=None, description="v1: the password.")
    org: str | None = Field(default=None, description="v2: the organisation.")
    bucket: str | None = Field(default=None, description="v2: the bucket.")
    token: SecretStr | None = Field(default=None, description="v2: the API token.")
    precision: Literal["ns", "us", "ms", "s"] = Field(default="ns", description="Timestamp precision.")
    timeout_seconds: float = Field(default=5.0, gt=0, le=300, description="Per request.")

    def settings(self) -> InfluxDBSinkSettings:
        """The block as the settings model the writers take (validated the same way)."""
        return InfluxDBSinkSettings.model_validate(
            self.model_dump(include=set(InfluxDBSinkSettings.model_fields))
        )


class ElasticsearchSink(Block):
    """Where Trinity writes one document per flow run, task run and log line."""

    _block_type_name: ClassVar[str] = "Trinity Elasticsearch Sink"
    _block_type_slug: ClassVar[str] = ELASTICSEARCH_BLOCK_SLUG
    _description: ClassVar[str] = (
        "Elasticsearch that Trinity feeds with run, task-run and log-line documents in daily "
        "indices <prefix>-runs-YYYY.MM.DD and <prefix>-logs-YYYY.MM.DD."
    )

    hosts: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:9200"], description="Node URLs.")
    index_prefix: str = Field(default="trinity", description="Indices are <prefix>-runs-*, <prefix>-logs-*.")
    api_key: SecretStr | None = Field(default=None, description="An API key (instead of user/password).")
    username: str | None = Field(default=None, description="Basic-auth user.")
    password: SecretStr | None = Field(default=None, description="Basic-auth password.")
    timeout_seconds: float = Field(default=5.0, gt=0, le=300, description="Per request.")

    def settings(self) -> ElasticsearchSinkSettings:
        """The block as the settings model the writers take (validated the same way)."""
        return ElasticsearchSinkSettings.model_validate(
            self.model_dump(include=set(ElasticsearchSinkSettings.model_fields))
        )


async def register_sink_block_types() -> None:
    """Register both sink block types with Prefect (idempotent)."""
    await InfluxDBSink.aregister_type_and_schema()
    await ElasticsearchSink.aregister_type_and_schema()
