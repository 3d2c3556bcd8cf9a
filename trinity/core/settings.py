"""The settings model: every key of ``trinity.config.yml``, with its default and its limits.

The file has the seed's shape (``server``, ``database``, ``redis``, ``logging``, ``security``) plus
``prefect``, ``analytics``, ``alerts``, ``sinks``, ``metrics`` (:mod:`trinity.core.sink_settings`)
and ``state_dir``. Values come from
:func:`trinity.core.config.load_settings`, the one resolver (flags > environment > file > these
defaults).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from trinity.core.egress import parse_rule
from trinity.core.redaction import redact_urls
from trinity.core.sink_settings import MetricsSettings, SinksSettings

DEFAULT_STATE_DIR = ".trinity"
MIN_JWT_SECRET_LENGTH = 32
# Prefect API servers and Trinity worker processes `trinity up` may start.
MAX_REPLICAS = 64

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)s?\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNIT_SECONDS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# A text setting that an empty value (`key:` or `key: ""` in the file) leaves unset.
OptionalText = Annotated[str | None, BeforeValidator(_blank_is_none)]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the setting.

    ``lines``: one per problem (the message has them all on one line).
    """

    def __init__(self, message: str, lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = lines or [message]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    """Where the REST API listens and how much it accepts."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1, le=256)] = 1
    max_body_bytes: Annotated[int, Field(ge=1024, le=1024**3)] = 1024 * 1024
    # How long an execute Idempotency-Key is remembered; older keys are purged and start anew.
    idempotency_ttl_seconds: Annotated[int, Field(ge=60, le=366 * 86400)] = 86400
    # HTTPS: the certificate (chain) and its private key, both PEM; unset: plain HTTP.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # The oldest TLS version accepted.
    ssl_min_version: Literal["1.2", "1.3"] = "1.3"

    @field_validator("ssl_certfile", "ssl_keyfile", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> ServerSettings:
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together: give both or neither")
        return self


class DatabaseSettings(_Section):
    """Trinity's own tables. Empty ``url``: a SQLite file in ``state_dir``."""

    url: str = ""
    pool_size: Annotated[int, Field(ge=1, le=1000)] = 20
    max_overflow: Annotated[int, Field(ge=0, le=1000)] = 30
    pool_timeout: Annotated[float, Field(gt=0, le=300)] = 10.0
    connect_timeout: Annotated[int, Field(ge=1, le=300)] = 5


class RedisSettings(_Section):
    """Optional Redis; when set, rate limits are shared by every API process."""

    url: str | None = None
    db: Annotated[int, Field(ge=0, le=1024)] = 0


_CONSOLE: tuple[Literal["console", "file"], ...] = ("console",)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    format: Literal["json", "text"] = "text"
    handlers: list[Literal["console", "file"]] = Field(default_factory=lambda: list(_CONSOLE))
    file: str | None = None

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class HttpEgressSettings(_Section):
    """``security.http``: where ``http`` tasks may connect, beyond the defaults of
    :mod:`trinity.core.egress` (link-local addresses and the stack's own services are denied)."""

    deny: list[str] = Field(default_factory=list, description="CIDRs (10.0.0.0/8) and host:port.")
    allow: list[str] = Field(default_factory=list, description="Exceptions to deny, same forms.")

    @field_validator("deny", "allow")
    @classmethod
    def _rules(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_rule(text)
        return value


class SecuritySettings(_Section):
    """Tokens, keys, limits."""

    jwt_secret: str | None = None
    token_expiry: Annotated[int, Field(ge=30, le=86400, description="JWT lifetime in seconds.")] = 3600
    rate_limit: str | None = "1000/hour"
    # Per client address: failed authentications (beyond: 429 before credentials are even
    # looked at) and requests to the token endpoint. Unset: no limit.
    auth_failure_rate_limit: str | None = "20/minute"
    token_rate_limit: str | None = "30/minute"
    dev_mode: bool = False
    bootstrap_api_key: str | None = None
    # The HMAC key of stored workflow definitions (trinity/core/signing.py); the same on the API
    # and every worker. Unset: workflows are not activated and stored definitions do not run.
    definition_key: str | None = None
    http: HttpEgressSettings = Field(default_factory=HttpEgressSettings)

    @field_validator(
        "jwt_secret",
        "bootstrap_api_key",
        "definition_key",
        "rate_limit",
        "auth_failure_rate_limit",
        "token_rate_limit",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("rate_limit", "auth_failure_rate_limit", "token_rate_limit")
    @classmethod
    def _parse_rate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate_limit(value)
        return value


class PrefectSettings(_Section):
    """The Prefect API this server talks to; unset means Prefect's own configuration.

    ``database_url``, ``api_replicas`` and ``messaging`` are the topology ``trinity up`` starts
    (:mod:`trinity.topology`): more than one API server needs a shared PostgreSQL database and a
    shared Redis for Prefect's messaging, so both are required then.
    """

    api_url: str | None = None
    ui_url: str | None = None
    work_pool: str = "trinity"
    # Declared before the two keys it constrains: their validators read it.
    api_replicas: Annotated[int, Field(ge=1, le=MAX_REPLICAS)] = 1
    # The database of the Prefect server `trinity up` starts (PostgreSQL URL); unset: SQLite.
    database_url: OptionalText = Field(default=None, validate_default=True)
    # prefect-redis as Prefect's messaging broker and cache (redis://host:port/db).
    messaging: OptionalText = Field(default=None, validate_default=True)

    @field_validator("database_url")
    @classmethod
    def _shared_database(cls, value: str | None, info: ValidationInfo) -> str | None:
        replicas = info.data.get("api_replicas", 1)
        if replicas > 1 and value is None:
            raise ValueError(f"required when prefect.api_replicas is {replicas} (a PostgreSQL URL)")
        if replicas > 1 and value is not None and value.lower().startswith("sqlite"):
            raise ValueError(
                f"SQLite cannot be shared by {replicas} API servers; give a PostgreSQL URL "
                "(postgresql+asyncpg://...)"
            )
        return value

    @field_validator("messaging")
    @classmethod
    def _redis_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        replicas = info.data.get("api_replicas", 1)
        if value is None:
            if replicas > 1:
                raise ValueError(f"required when prefect.api_replicas is {replicas} (redis://host:port/db)")
            return value
        if not value.lower().startswith(("redis://", "rediss://")):
            raise ValueError(f"{redact_urls(value)!r} is not a Redis URL (redis://host:port/db)")
        return value


class AnalyticsSettings(BaseModel):
    """Read by the analytics flows; extra keys are kept for them."""

    model_config = ConfigDict(extra="allow")

    # Unset (or blank): ``LOGS`` in ``state_dir`` (see ``Settings.logs_dir``).
    logs_dir: str | None = None
    window_days: Annotated[int, Field(ge=1, le=3650)] = 30

    @field_validator("logs_dir", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value


class AlertsSettings(_Section):
    """What Trinity alerts on through Prefect (events from the analytics, automations from the specs)."""

    # A Prefect notification block: "<block type slug>/<block name>" (e.g. "slack-webhook/ops")
    # or a block document id. Unset: the automations fire without a notification action.
    notify_block: str | None = None
    # The proactive automation fires when a run stays Running longer than this multiple of the
    # spec's duration_p95_seconds.
    running_multiple: Annotated[float, Field(gt=0, le=1000)] = 1.0
    # How far ahead SLO forecasts look (days); unset: the analysis default (14).
    forecast_horizon_days: Annotated[float | None, Field(gt=0, le=3650)] = None

    @field_validator("notify_block", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value


class Settings(_Section):
    """Everything Trinity's commands and processes read from configuration."""

    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    sinks: SinksSettings = Field(default_factory=SinksSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    # Trinity worker processes `trinity up` starts (each with its executor processes).
    workers: Annotated[int, Field(ge=1, le=MAX_REPLICAS)] = 1
    state_dir: str = DEFAULT_STATE_DIR
    _source: str | None = PrivateAttr(default=None)

    @field_validator("state_dir", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_STATE_DIR
        return value

    @property
    def source(self) -> str | None:
        """The configuration file these settings came from, if any."""
        return self._source

    @property
    def database_url(self) -> str:
        """The configured database URL, or the SQLite file ``trinity.db`` under ``state_dir``."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{Path(self.state_dir) / 'trinity.db'}"

    @property
    def logs_dir(self) -> Path:
        """The root of the LOGS tree: ``analytics.logs_dir``, else ``LOGS`` under ``state_dir``."""
        if self.analytics.logs_dir:
            return Path(self.analytics.logs_dir)
        return Path(self.state_dir) / "LOGS"

    def require_jwt_secret(self) -> None:
        """Raise :class:`ConfigError` unless a usable JWT secret is set or dev mode is on."""
        secret = self.security.jwt_secret
        if secret is None:
            if self.security.dev_mode:
                return
            raise ConfigError(
                "no JWT secret: set security.jwt_secret (or TRINITY_JWT_SECRET / JWT_SECRET), "
                "or run in dev mode (security.dev_mode: true or --dev)"
            )
        if len(secret.encode()) < MIN_JWT_SECRET_LENGTH:
            raise ConfigError(f"security.jwt_secret must be at least {MIN_JWT_SECRET_LENGTH} bytes long")


def parse_rate_limit(text: str) -> tuple[int, float]:
    """Parse ``"1000/hour"`` (or ``"10/5minutes"``, ``"50/s"``) into (requests, window seconds)."""
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"rate limit {text!r} is not like '1000/hour' (units: second, minute, hour, day)")
    count, multiplier, unit = int(match.group(1)), match.group(2), match.group(3)
    return count, float(int(multiplier or 1) * _UNIT_SECONDS[unit])
