"""Configuration: ``trinity.config.yml`` plus environment overrides.

The file has the seed's shape (``server``, ``database``, ``redis``, ``logging``, ``security``) plus
``prefect``, ``analytics`` and ``state_dir``. String values may use ``${VAR}`` or ``${VAR:-default}``;
``$${`` writes a literal ``${``. An unset variable without a default expands to an empty string, so
``jwt_secret: ${JWT_SECRET}`` with no ``JWT_SECRET`` simply means "no secret".

Precedence, lowest first: built-in defaults, the file, then these environment variables:
``TRINITY_DATABASE_URL``, ``TRINITY_JWT_SECRET`` (or ``JWT_SECRET``), ``TRINITY_BOOTSTRAP_API_KEY``,
``TRINITY_DEV_MODE``, ``TRINITY_STATE_DIR``, ``TRINITY_PREFECT_API_URL``, ``TRINITY_PREFECT_UI_URL``,
``TRINITY_LOGS_DIR``. Without ``prefect.api_url`` the server uses Prefect's own ``PREFECT_API_URL``.
The file is the explicit path, else ``TRINITY_CONFIG``, else ``./trinity.config.yml`` when it exists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

DEFAULT_CONFIG_FILE = "trinity.config.yml"
MIN_JWT_SECRET_LENGTH = 32

_ENV_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)s?\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNIT_SECONDS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the setting."""


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


class SecuritySettings(_Section):
    """Tokens, keys, limits."""

    jwt_secret: str | None = None
    token_expiry: Annotated[int, Field(ge=30, le=86400, description="JWT lifetime in seconds.")] = 3600
    rate_limit: str | None = "1000/hour"
    dev_mode: bool = False
    bootstrap_api_key: str | None = None

    @field_validator("jwt_secret", "bootstrap_api_key", "rate_limit", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("rate_limit")
    @classmethod
    def _parse_rate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate_limit(value)
        return value


class PrefectSettings(_Section):
    """The Prefect API this server talks to; unset means Prefect's own configuration."""

    api_url: str | None = None
    ui_url: str | None = None
    work_pool: str = "trinity"
    # The database of the Prefect server `trinity up` starts (PostgreSQL URL); unset: SQLite.
    database_url: str | None = None


class AnalyticsSettings(BaseModel):
    """Read by the analytics flows; extra keys are kept for them."""

    model_config = ConfigDict(extra="allow")

    logs_dir: str = "LOGS"
    window_days: Annotated[int, Field(ge=1, le=3650)] = 30


class Settings(_Section):
    """Everything the API server and the CLI read from configuration."""

    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    state_dir: str = ".trinity"
    _source: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> str | None:
        """The configuration file these settings came from, if any."""
        return self._source

    @property
    def database_url(self) -> str:
        """The configured database URL, or the SQLite file under ``state_dir``."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{Path(self.state_dir) / 'trinity.db'}"

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


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            found = env.get(name)
            if found is None or (found == "" and default is not None):
                return default or ""
            return found

        return _ENV_REFERENCE.sub(replace, value)
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


def _config_path(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get("TRINITY_CONFIG"):
        return Path(env["TRINITY_CONFIG"])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping of sections")
    return data


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    overrides = {
        ("database", "url"): env.get("TRINITY_DATABASE_URL"),
        ("security", "jwt_secret"): env.get("TRINITY_JWT_SECRET") or env.get("JWT_SECRET"),
        ("security", "bootstrap_api_key"): env.get("TRINITY_BOOTSTRAP_API_KEY"),
        ("prefect", "api_url"): env.get("TRINITY_PREFECT_API_URL"),
        ("prefect", "ui_url"): env.get("TRINITY_PREFECT_UI_URL"),
        ("analytics", "logs_dir"): env.get("TRINITY_LOGS_DIR"),
    }
    if env.get("TRINITY_STATE_DIR"):
        data["state_dir"] = env["TRINITY_STATE_DIR"]
    if env.get("TRINITY_DEV_MODE", "").lower() in {"1", "true", "yes", "on"}:
        overrides[("security", "dev_mode")] = "true"
    for (section, key), value in overrides.items():
        if value:
            block = data.setdefault(section, {})
            if not isinstance(block, dict):
                raise ConfigError(f"configuration section {section!r} must be a mapping")
            block[key] = value


def load_settings(path: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> Settings:
    """Read the configuration file (if any), interpolate ``${ENV}``, apply env overrides, validate."""
    environ: Mapping[str, str] = os.environ if env is None else env
    config_path = _config_path(path, environ)
    data: dict[str, Any] = {}
    if config_path is not None:
        if not config_path.is_file():
            raise ConfigError(f"{config_path}: configuration file not found")
        data = interpolate(_read_file(config_path), environ)
    _apply_env(data, environ)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        where = str(config_path) if config_path else "configuration"
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from exc
    settings._source = str(config_path) if config_path else None
    return settings
