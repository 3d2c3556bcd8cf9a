"""The ``sinks`` and ``metrics`` sections of ``trinity.config.yml``.

``sinks.influxdb`` feeds InfluxDB (1.x ``/write``, or ``/api/v2/write`` of 2.x/3.x/1.8+) with one
point per task run and flow run; ``sinks.elasticsearch`` feeds Elasticsearch with one document per
flow run, task run and log line. Either may instead name a Prefect block document (``block:``),
editable in the Prefect UI. ``metrics.require_auth`` puts the API's ``/metrics`` behind credentials.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_INDEX_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,100}$")


def _blank_is_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InfluxDBSinkSettings(_Section):
    """Where task-run and flow-run points go.

    ``api: v1`` writes to ``/write`` with ``database`` (and ``retention_policy``, ``username``,
    ``password``); ``api: v2`` writes to ``/api/v2/write`` with ``org``, ``bucket`` and ``token``.
    """

    # A Prefect block document (type ``trinity-influxdb-sink``) to read the other keys from.
    block: str | None = None
    url: str = "http://127.0.0.1:8086"
    api: Literal["v1", "v2"] = "v1"
    database: str | None = None
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    org: str | None = None
    bucket: str | None = None
    token: SecretStr | None = None
    precision: Literal["ns", "us", "ms", "s"] = "ns"
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0

    _blanks = field_validator(
        "block",
        "database",
        "retention_policy",
        "username",
        "password",
        "org",
        "bucket",
        "token",
        mode="before",
    )(_blank_is_none)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.block is not None:
            return self
        if self.api == "v1" and not self.database:
            raise ValueError("api v1 needs a database")
        if self.api == "v2":
            missing = [key for key in ("org", "bucket", "token") if getattr(self, key) is None]
            if missing:
                raise ValueError(f"api v2 needs {', '.join(missing)}")
        return self


class ElasticsearchSinkSettings(_Section):
    """Where run, task-run and log-line documents go (daily indices ``<index_prefix>-runs-…``)."""

    # A Prefect block document (type ``trinity-elasticsearch-sink``) to read the other keys from.
    block: str | None = None
    hosts: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:9200"], min_length=1)
    index_prefix: str = "trinity"
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0

    _blanks = field_validator("block", "api_key", "username", "password", mode="before")(_blank_is_none)

    @field_validator("hosts", mode="before")
    @classmethod
    def _one_host(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("index_prefix")
    @classmethod
    def _index_name(cls, value: str) -> str:
        if not _INDEX_PREFIX.match(value):
            raise ValueError(
                f"{value!r} is not a usable index prefix (lowercase letters, digits, '-', '_', '.')"
            )
        return value


class SinksSettings(_Section):
    """The optional sinks and how the live path feeds them."""

    influxdb: InfluxDBSinkSettings | None = None
    elasticsearch: ElasticsearchSinkSettings | None = None
    # Records waiting per process; beyond it the oldest is dropped (and counted).
    queue_size: Annotated[int, Field(ge=10, le=10_000_000)] = 10_000
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 500
    # How long the sender waits to fill a batch before sending what it has.
    flush_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    # How long a process that exits (``trinity run``, an executor) waits for its queue to drain.
    exit_flush_seconds: Annotated[float, Field(ge=0, le=60)] = 3.0

    @property
    def configured(self) -> bool:
        """Whether any sink is set."""
        return self.influxdb is not None or self.elasticsearch is not None


class MetricsSettings(_Section):
    """Prometheus metrics (``GET /metrics`` on the API, ``trinity worker --metrics-port``)."""

    # True: the API's /metrics asks for an API key or a bearer token like any other route.
    require_auth: bool = False
