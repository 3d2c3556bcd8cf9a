"""The settings resolver: the file's shape, ${ENV} interpolation, env and flag overrides, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trinity.core.config import child_environment, interpolate, load_settings
from trinity.core.settings import ConfigError, Settings, parse_rate_limit

SEED_CONFIG = """\
server:
  host: 0.0.0.0
  port: 8000
  workers: 4

database:
  url: postgresql://user:pass@localhost/trinity
  pool_size: 20
  max_overflow: 30

redis:
  url: redis://localhost:6379
  db: 0

logging:
  level: INFO
  format: json
  handlers:
    - console
    - file

security:
  jwt_secret: ${JWT_SECRET}
  token_expiry: 3600
  rate_limit: 1000/hour
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trinity.config.yml"
    path.write_text(text)
    return path


def test_the_seed_configuration_loads_with_its_values(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, SEED_CONFIG), env={"JWT_SECRET": "s" * 40})
    assert settings.server.workers == 4
    assert settings.database.url == "postgresql://user:pass@localhost/trinity"
    assert settings.database.pool_size == 20
    assert settings.redis.url == "redis://localhost:6379"
    assert settings.logging.handlers == ["console", "file"]
    assert settings.security.jwt_secret == "s" * 40
    assert settings.security.token_expiry == 3600
    assert parse_rate_limit(settings.security.rate_limit or "") == (1000, 3600.0)


def test_unset_variable_means_no_secret_and_the_server_refuses_to_start(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, SEED_CONFIG), env={})
    assert settings.security.jwt_secret is None
    with pytest.raises(ConfigError, match="no JWT secret"):
        settings.require_jwt_secret()


def test_dev_mode_allows_starting_without_a_secret(tmp_path: Path) -> None:
    from_file = load_settings(write(tmp_path, "security:\n  dev_mode: true\n"), env={})
    from_file.require_jwt_secret()
    from_env = load_settings(env={"TRINITY_DEV_MODE": "1", "TRINITY_CONFIG": str(write(tmp_path, ""))})
    assert from_env.security.dev_mode is True


def test_short_secrets_are_refused() -> None:
    settings = Settings.model_validate({"security": {"jwt_secret": "short"}})
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        settings.require_jwt_secret()


def test_interpolation_with_defaults_and_escapes() -> None:
    env = {"HOST": "db.internal", "EMPTY": ""}
    assert interpolate("postgresql://${HOST}/t", env) == "postgresql://db.internal/t"
    assert interpolate("${MISSING:-fallback}", env) == "fallback"
    assert interpolate("${EMPTY:-fallback}", env) == "fallback"
    assert interpolate("${MISSING}", env) == ""
    assert interpolate("$${HOST}", env) == "${HOST}"
    assert interpolate({"a": ["${HOST}", 3]}, env) == {"a": ["db.internal", 3]}


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, SEED_CONFIG)
    env = {
        "JWT_SECRET": "a" * 40,
        "TRINITY_JWT_SECRET": "b" * 40,
        "TRINITY_DATABASE_URL": "sqlite:///x.db",
        "TRINITY_BOOTSTRAP_API_KEY": "trn_boot",
        "TRINITY_STATE_DIR": "/tmp/state",
        "TRINITY_PREFECT_UI_URL": "http://ui",
    }
    settings = load_settings(path, env=env)
    assert settings.security.jwt_secret == "b" * 40  # TRINITY_JWT_SECRET wins over JWT_SECRET
    assert settings.database_url == "sqlite:///x.db"
    assert settings.security.bootstrap_api_key == "trn_boot"
    assert settings.state_dir == "/tmp/state"
    assert settings.prefect.ui_url == "http://ui"


def test_config_file_from_TRINITY_CONFIG(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 9123\n")
    assert load_settings(env={"TRINITY_CONFIG": str(path)}).server.port == 9123
    assert load_settings(env={"TRINITY_CONFIG": str(path)}).source == str(path)


def test_default_database_is_sqlite_in_the_state_dir() -> None:
    settings = Settings.model_validate({"state_dir": "/var/lib/trinity"})
    assert settings.database_url == "sqlite:////var/lib/trinity/trinity.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server: [1, 2\n", "trinity.config.yml:2: not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("server:\n  port: lots\n", "server.port"),
        ("servr:\n  port: 1\n", "servr"),
        ("security:\n  rate_limit: often\n", "rate limit 'often' is not like '1000/hour'"),
        ("prefect:\n  api_url: [1]\n", "prefect.api_url"),
        ("alerts:\n  running_multiple: 0\n", "alerts.running_multiple"),
        ("alerts:\n  notify_blok: slack-webhook/ops\n", "alerts.notify_blok"),
    ],
)
def test_bad_configuration_names_the_file_and_setting(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings(write(tmp_path, text), env={})
    assert str(tmp_path) in str(excinfo.value)
    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yml", env={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1000/hour", (1000, 3600.0)),
        ("50/s", (50, 1.0)),
        ("10/5minutes", (10, 300.0)),
        ("3 / day", (3, 86400.0)),
    ],
)
def test_rate_limits_parse(text: str, expected: tuple[int, float]) -> None:
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize("text", ["", "0/hour", "ten/hour", "10/fortnight", "10"])
def test_bad_rate_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        parse_rate_limit(text)


def test_the_example_configuration_at_the_repository_root_loads() -> None:
    example = Path(__file__).resolve().parents[3] / "trinity.config.example.yml"
    settings = load_settings(example, env={"JWT_SECRET": "z" * 40, "TRINITY_PG_PASSWORD": "pw"})
    settings.require_jwt_secret()
    assert settings.prefect.api_url
    assert (settings.alerts.notify_block, settings.alerts.running_multiple) == (None, 1.0)
    assert settings.alerts.forecast_horizon_days == 14


def test_flags_beat_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: sqlite:///from-file.db\nstate_dir: /srv/file\n")
    assert load_settings(path, env={}).database_url == "sqlite:///from-file.db"
    env = {"TRINITY_DATABASE_URL": "sqlite:///from-env.db"}
    assert load_settings(path, env=env).database_url == "sqlite:///from-env.db"
    flagged = load_settings(
        path, env=env, flags={"database.url": "sqlite:///from-flag.db", "state_dir": None}
    )
    assert flagged.database_url == "sqlite:///from-flag.db"
    # A flag left at None was not given: the file's value stands.
    assert flagged.state_dir == "/srv/file"


def test_a_bad_flag_value_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings(env={}, flags={"server.port": 70000})


def test_the_logs_folder_is_configured_else_in_the_state_folder(tmp_path: Path) -> None:
    assert load_settings(env={"TRINITY_CONFIG": str(write(tmp_path, ""))}).logs_dir == Path(".trinity/LOGS")
    path = write(tmp_path, "state_dir: /srv/trinity\n")
    assert load_settings(path, env={}).logs_dir == Path("/srv/trinity/LOGS")
    path = write(tmp_path, "state_dir: /srv/trinity\nanalytics:\n  logs_dir: /srv/reports\n")
    assert load_settings(path, env={}).logs_dir == Path("/srv/reports")
    assert load_settings(path, env={"TRINITY_LOGS_DIR": "/elsewhere"}).logs_dir == Path("/elsewhere")


def test_a_blank_state_dir_means_the_default(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "state_dir: ''\n"), env={})
    assert settings.state_dir == ".trinity"
    assert settings.database_url == "sqlite:///.trinity/trinity.db"


def test_the_config_file_in_the_working_folder_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "database:\n  url: postgresql://trinity@db/trinity\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.database_url == "postgresql://trinity@db/trinity"
    assert settings.source == "trinity.config.yml"


def test_a_child_process_gets_the_same_settings_wherever_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, "analytics:\n  logs_dir: reports\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})  # ./trinity.config.yml, relative paths throughout
    env = child_environment(settings)
    assert env == {
        "TRINITY_CONFIG": str(config),
        "TRINITY_DATABASE_URL": f"sqlite:///{tmp_path / '.trinity' / 'trinity.db'}",
        "TRINITY_STATE_DIR": str(tmp_path / ".trinity"),
        "TRINITY_LOGS_DIR": str(tmp_path / "reports"),
    }
    monkeypatch.chdir(tmp_path.parent)
    again = load_settings(env=env)
    assert again.database_url == env["TRINITY_DATABASE_URL"]
    assert again.logs_dir == tmp_path / "reports"
    postgres = load_settings(env={"TRINITY_DATABASE_URL": "postgresql://u:secret@db/t"})
    assert child_environment(postgres)["TRINITY_DATABASE_URL"] == "postgresql://u:secret@db/t"


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 9001\n")
    assert load_settings(path, env={}).server.port == 9001
    before = path.stat().st_mtime_ns
    path.write_text("server:\n  port: 9002\n")  # the same size
    os.utime(path, ns=(before + 1_000_000, before + 1_000_000))
    assert load_settings(path, env={}).server.port == 9002
