"""Trinity's configuration (``trinity.config.yml`` + environment), shared by the CLI and the API."""

from api.settings import (
    AnalyticsSettings,
    ConfigError,
    DatabaseSettings,
    LoggingSettings,
    PrefectSettings,
    RedisSettings,
    SecuritySettings,
    ServerSettings,
    Settings,
    interpolate,
    load_settings,
    parse_rate_limit,
)

__all__ = [
    "AnalyticsSettings",
    "ConfigError",
    "DatabaseSettings",
    "LoggingSettings",
    "PrefectSettings",
    "RedisSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "interpolate",
    "load_settings",
    "parse_rate_limit",
]
