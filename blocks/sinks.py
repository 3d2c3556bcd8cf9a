"""The sink block types: ``InfluxDBSink`` and ``ElasticsearchSink``.

Each holds what ``sinks.influxdb`` / ``sinks.elasticsearch`` of ``trinity.config.yml`` hold
(:mod:`trinity.core.sink_settings`, the one home of the keys), as a Prefect block document that can
be edited in the Prefect UI; ``sinks.<name>.block: <document name>`` points the configuration at
one. ``trinity up`` and ``trinity deploy`` register both types.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from pydantic import Field, SecretStr

from blocks.sink_writers import ElasticsearchWriter, InfluxDBWriter, SinkWriter
from trinity.core.sink_settings import ElasticsearchSinkSettings, InfluxDBSinkSettings, SinksSettings

INFLUXDB_BLOCK_SLUG = "trinity-influxdb-sink"
ELASTICSEARCH_BLOCK_SLUG = "trinity-elasticsearch-sink"


class SinkConfigError(Exception):
    """A sink's configuration (or the block document it names) cannot be used."""


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


def _load_block(block_class: type[Block], slug: str, name: str) -> Block:
    # The synchronous client: this runs in the sender's thread and in CLI code alike.
    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name(name=name, block_type_slug=slug)
    return block_class._from_block_document(document)


def resolve_sink_settings(
    sinks: SinksSettings,
) -> tuple[InfluxDBSinkSettings | None, ElasticsearchSinkSettings | None]:
    """The sinks' effective settings: the configuration's, or the block documents it names.

    Raises :class:`SinkConfigError` naming the block that cannot be read.
    """
    influx, elastic = sinks.influxdb, sinks.elasticsearch
    if influx is not None and influx.block is not None:
        influx = _settings_from_block(InfluxDBSink, INFLUXDB_BLOCK_SLUG, influx.block)  # type: ignore[assignment]
    if elastic is not None and elastic.block is not None:
        elastic = _settings_from_block(ElasticsearchSink, ELASTICSEARCH_BLOCK_SLUG, elastic.block)  # type: ignore[assignment]
    return influx, elastic


def _settings_from_block(
    block_class: type[InfluxDBSink] | type[ElasticsearchSink], slug: str, name: str
) -> InfluxDBSinkSettings | ElasticsearchSinkSettings:
    try:
        block = _load_block(block_class, slug, name)
        assert isinstance(block, InfluxDBSink | ElasticsearchSink)
        return block.settings()
    except ObjectNotFound:
        raise SinkConfigError(f"sinks: no {slug} block document named {name!r}") from None
    except Exception as exc:
        raise SinkConfigError(f"sinks: block {slug}/{name} cannot be read: {exc}") from exc


def sink_writers(sinks: SinksSettings) -> list[SinkWriter]:
    """A writer per configured sink (InfluxDB first). Raises :class:`SinkConfigError`."""
    influx, elastic = resolve_sink_settings(sinks)
    writers: list[SinkWriter] = []
    if influx is not None:
        writers.append(InfluxDBWriter(influx))
    if elastic is not None:
        writers.append(ElasticsearchWriter(elastic))
    return writers
