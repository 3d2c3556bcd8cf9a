"""The one resolver of Trinity's settings, used by every command and process.

Precedence, lowest first: the model's defaults, ``trinity.config.yml``, the environment, then the
command's flags. The file is the explicit path, else ``TRINITY_CONFIG``, else
``./trinity.config.yml`` when it exists. String values in the file may use ``${VAR}`` or
``${VAR:-default}``; ``$${`` writes a literal ``${``. An unset variable without a default
expands to an empty string, so ``jwt_secret: ${JWT_SECRET}`` with no ``JWT_SECRET`` simply means
"no secret".

Environment variables: ``TRINITY_DATABASE_URL``, ``TRINITY_JWT_SECRET`` (or ``JWT_SECRET``),
``TRINITY_BOOTSTRAP_API_KEY``, ``TRINITY_DEFINITION_KEY``, ``TRINITY_DEV_MODE``, ``TRINITY_STATE_DIR``,
``TRINITY_PREFECT_API_URL``, ``TRINITY_PREFECT_UI_URL``, ``TRINITY_LOGS_DIR``,
``TRINITY_SSL_CERTFILE``, ``TRINITY_SSL_KEYFILE``. Without
``prefect.api_url``, Prefect's own ``PREFECT_API_URL`` applies.

A process that starts another Trinity process (a worker its executors, ``trinity api`` its
server processes) hands its resolved settings on with :func:`child_environment`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trinity.core.settings import ConfigError, Settings
from trinity.core.signing import DEFINITION_KEY_ENV, require_key

DEFAULT_CONFIG_FILE = "trinity.config.yml"
CONFIG_ENV = "TRINITY_CONFIG"

_ENV_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TRUE = {"1", "true", "yes", "on"}


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


def config_path(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file to read: ``path``, else ``TRINITY_CONFIG``, else an existing
    ``./trinity.config.yml``; None when there is none."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if path is not None:
        return Path(path)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from exc
    return _parse_file(str(path.absolute()), str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _parse_file(absolute: str, shown: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """The parsed file, kept while it is unchanged: the executor resolves its settings for every
    run it records, and parsing is fifty times the rest of resolving. Callers must not modify it
    (``interpolate`` builds a new tree)."""
    try:
        text = Path(absolute).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot read the configuration file ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: the configuration must be a mapping of sections")
    return data


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted ``key`` (``database.url``, ``state_dir``) in the raw settings tree."""
    *sections, leaf = key.split(".")
    block = data
    for section in sections:
        child = block.setdefault(section, {})
        if not isinstance(child, dict):
            raise ConfigError(f"configuration section {section!r} must be a mapping")
        block = child
    block[leaf] = value


def environment_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment sets, by dotted key (unset and empty variables set nothing)."""
    variables = {
        "database.url": env.get("TRINITY_DATABASE_URL"),
        "security.jwt_secret": env.get("TRINITY_JWT_SECRET") or env.get("JWT_SECRET"),
        "security.bootstrap_api_key": env.get("TRINITY_BOOTSTRAP_API_KEY"),
        "security.definition_key": env.get(DEFINITION_KEY_ENV),
        "prefect.api_url": env.get("TRINITY_PREFECT_API_URL"),
        "prefect.ui_url": env.get("TRINITY_PREFECT_UI_URL"),
        "analytics.logs_dir": env.get("TRINITY_LOGS_DIR"),
        "server.ssl_certfile": env.get("TRINITY_SSL_CERTFILE"),
        "server.ssl_keyfile": env.get("TRINITY_SSL_KEYFILE"),
        "state_dir": env.get("TRINITY_STATE_DIR"),
    }
    overrides: dict[str, Any] = {key: value for key, value in variables.items() if value}
    if env.get("TRINITY_DEV_MODE", "").lower() in _TRUE:
        overrides["security.dev_mode"] = True
    return overrides


def load_settings(
    path: str | Path | None = None,
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve the settings: defaults < the file (``${ENV}`` interpolated) < environment < flags.

    ``flags`` maps dotted keys (``"database.url"``, ``"state_dir"``) to a command's options; None
    means the flag was not given. Raises :class:`ConfigError`, naming the file and the setting.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    source = config_path(path, environ)
    data: dict[str, Any] = {}
    if source is not None:
        if not source.is_file():
            raise ConfigError(f"{source}: configuration file not found")
        data = interpolate(_read_file(source), environ)
    for key, value in environment_overrides(environ).items():
        _set(data, key, value)
    for key, value in (flags or {}).items():
        if value is not None:
            _set(data, key, value)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        where = str(source) if source else "configuration"
        problems = [
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        ]
        raise ConfigError(f"{where}: {'; '.join(problems)}", [f"{where}: {p}" for p in problems]) from exc
    settings._source = str(source) if source else None
    return settings


def configured_definition_key(settings: Settings | None = None) -> str:
    """The definition key of ``settings`` (default: resolved now), or
    :class:`trinity.core.signing.DefinitionKeyMissingError` naming the setting."""
    return require_key((settings or load_settings()).security.definition_key)


def child_environment(settings: Settings, *, cwd: Path | None = None) -> dict[str, str]:
    """Environment variables that give a child process these same settings, wherever it runs.

    Relative paths (the file, ``state_dir``, the LOGS tree, a SQLite database) are made absolute
    against ``cwd`` (default: the current folder), since the child may work in another folder.
    """
    # Here, not at the top: SQLAlchemy (which parses the URL) takes most of a second to import,
    # and every command resolves settings; only a process that starts others pays for it.
    from trinity.core.urls import anchored

    base = (cwd or Path.cwd()).absolute()
    env = {
        "TRINITY_DATABASE_URL": anchored(settings.database_url, base),
        "TRINITY_STATE_DIR": str(base / settings.state_dir),
        "TRINITY_LOGS_DIR": str(base / settings.logs_dir),
    }
    if settings.source:
        env[CONFIG_ENV] = str(base / settings.source)
    if settings.security.definition_key:
        # Executors check every stored definition they run with it.
        env[DEFINITION_KEY_ENV] = settings.security.definition_key
    return env
