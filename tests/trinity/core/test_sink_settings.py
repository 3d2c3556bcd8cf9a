"""The ``sinks`` and ``metrics`` sections: the issue's keys, defaults, and located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from trinity.core.config import load_settings
from trinity.core.settings import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trinity.config.yml"
    path.write_text(text)
    return path


def test_the_issue_example_is_read_as_written(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
sinks:
  influxdb:
    url: http://127.0.0.1:8086
    api: v1            # v1: /write with database (+ retention_policy, username, password)
    database: trinity  # v2: /api/v2/write with org, bucket, token
  elasticsearch:
    hosts: [http://127.0.0.1:9200]
    index_prefix: trinity
""",
    )
    settings = load_settings(path, env={})

    influx, elastic = settings.sinks.influxdb, settings.sinks.elasticsearch
    assert influx is not None
    assert elastic is not None
    assert (influx.url, influx.api, influx.database) == ("http://127.0.0.1:8086", "v1", "trinity")
    assert elastic.hosts == ["http://127.0.0.1:9200"]
    assert elastic.index_prefix == "trinity"
    assert settings.sinks.configured
    assert settings.metrics.require_auth is False


def test_secrets_come_from_the_environment_and_stay_hidden(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
sinks:
  influxdb: {api: v2, url: "http://i:8086", org: ops, bucket: b, token: "${INFLUX_TOKEN}"}
  elasticsearch: {hosts: "http://e:9200", username: u, password: "${ES_PASSWORD}"}
metrics: {require_auth: true}
""",
    )
    settings = load_settings(path, env={"INFLUX_TOKEN": "t0ken", "ES_PASSWORD": "pw"})

    influx, elastic = settings.sinks.influxdb, settings.sinks.elasticsearch
    assert influx is not None
    assert influx.token is not None
    assert influx.token.get_secret_value() == "t0ken"
    assert elastic is not None
    assert elastic.hosts == ["http://e:9200"]
    assert elastic.password is not None
    assert elastic.password.get_secret_value() == "pw"
    assert "t0ken" not in repr(settings)
    assert "pw'" not in repr(settings)
    assert settings.metrics.require_auth is True


def test_no_sinks_by_default() -> None:
    settings = load_settings(env={})
    assert settings.sinks.influxdb is None
    assert settings.sinks.elasticsearch is None
    assert not settings.sinks.configured


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sinks: {influxdb: {api: v1}}", "sinks.influxdb: Value error, api v1 needs a database"),
        ("sinks: {influxdb: {api: v2, org: o}}", "api v2 needs bucket, token"),
        ("sinks: {influxdb: {api: v3, database: d}}", "sinks.influxdb.api: Input should be 'v1' or 'v2'"),
        ("sinks: {elasticsearch: {index_prefix: Bad Prefix}}", "not a usable index prefix"),
        ("sinks: {elasticsearch: {hosts: []}}", "sinks.elasticsearch.hosts"),
        ("sinks: {influxdb: {database: d, colour: red}}", "sinks.influxdb.colour: Extra inputs"),
    ],
)
def test_bad_sink_settings_are_located(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"trinity\.config\.yml: ") as caught:
        load_settings(path, env={})
    assert message in str(caught.value)


def test_a_block_reference_needs_nothing_else(tmp_path: Path) -> None:
    path = _write(tmp_path, "sinks: {influxdb: {block: ops-influx}, elasticsearch: {block: ops-es}}")
    settings = load_settings(path, env={})
    assert settings.sinks.influxdb is not None
    assert settings.sinks.influxdb.block == "ops-influx"
