"""The egress policy's decisions: rule forms, defaults for the stack's services, allow exceptions."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

import pytest

from trinity.core.config import ConfigError, load_settings
from trinity.core.egress import IPAddress, egress_policy, local_addresses, parse_rule
from trinity.core.settings import Settings

NAMES = {"db.internal": ["10.1.2.3"], "localhost": ["127.0.0.1", "::1"], "prefect": ["10.9.9.9"]}


def fake_resolve(host: str) -> Sequence[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        return [ipaddress.ip_address(address) for address in NAMES.get(host, [])]


def settings(**security_http: list[str]) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": "postgresql://app:pw@localhost:5432/trinity"},
            "redis": {"url": "redis://db.internal"},
            "prefect": {"api_url": "http://prefect:4200/api"},
            "server": {"host": "0.0.0.0", "port": 8000},
            "security": {"http": security_http},
        }
    )


def refusal(policy_settings: Settings, address: str, port: int) -> str | None:
    policy = egress_policy(policy_settings, resolve=fake_resolve)
    rule = policy.refusal(ipaddress.ip_address(address), port)
    return rule.describe() if rule else None


@pytest.mark.parametrize(
    ("address", "port", "refused_by"),
    [
        ("169.254.169.254", 80, "'169.254.0.0/16' (link-local)"),
        ("::ffff:169.254.169.254", 80, "'169.254.0.0/16' (link-local)"),
        ("fe80::1", 443, "'fe80::/10' (link-local)"),
        ("0.0.0.0", 80, "'0.0.0.0/32' (this machine)"),
        ("127.0.0.1", 5432, "'localhost:5432' (Trinity's database)"),
        ("127.0.0.2", 5432, "'localhost:5432' (Trinity's database)"),
        ("::1", 5432, "'localhost:5432' (Trinity's database)"),
        ("10.1.2.3", 6379, "'db.internal:6379' (Redis)"),
        ("10.9.9.9", 4200, "'prefect:4200' (the Prefect API)"),
        ("127.0.0.1", 8000, "'0.0.0.0:8000' (the Trinity API)"),
        ("127.0.0.1", 8080, None),
        ("10.1.2.3", 443, None),
        ("93.184.216.34", 443, None),
    ],
)
def test_defaults(address: str, port: int, refused_by: str | None) -> None:
    assert refusal(settings(), address, port) == refused_by


def test_a_local_service_is_denied_on_every_local_address() -> None:
    others = [a for a in local_addresses() if not (a.is_loopback or a.is_unspecified or a.is_link_local)]
    for address in others[:3]:
        assert refusal(settings(), str(address), 5432) == "'localhost:5432' (Trinity's database)"


def test_configured_deny_and_allow() -> None:
    configured = settings(deny=["10.0.0.0/8", "example.internal:443"], allow=["10.1.2.3", "127.0.0.1:5432"])
    assert refusal(configured, "10.4.4.4", 80) == "'10.0.0.0/8'"
    assert refusal(configured, "10.1.2.3", 80) is None  # an exception to 10.0.0.0/8
    assert refusal(configured, "10.1.2.3", 6379) is None  # allow opens a default too
    assert refusal(configured, "127.0.0.1", 5432) is None
    assert refusal(configured, "127.0.0.2", 5432) == "'localhost:5432' (Trinity's database)"


@pytest.mark.parametrize(
    ("text", "network", "host", "port"),
    [
        ("10.0.0.0/8", "10.0.0.0/8", None, None),
        ("169.254.169.254", "169.254.169.254/32", None, None),
        ("db.internal:5432", None, "db.internal", 5432),
        ("[::1]:8000", "::1/128", None, 8000),
        ("127.0.0.1:4200", "127.0.0.1/32", None, 4200),
        ("Metadata.Internal", None, "metadata.internal", None),
    ],
)
def test_rule_forms(text: str, network: str | None, host: str | None, port: int | None) -> None:
    rule = parse_rule(text)
    assert (str(rule.network) if rule.network else None, rule.host, rule.port) == (network, host, port)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "an empty rule"),
        ("db:port", "'port' is not a port number"),
        ("db:70000", "port 70000 is out of range"),
        ("http://db/", "is a URL; write its host and port"),
        ("a b", "neither a CIDR"),
    ],
)
def test_bad_rules_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_rule(text)


def test_a_bad_rule_in_the_file_names_the_setting(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "trinity.config.yml"
    path.write_text("security:\n  http:\n    deny: ['db:port']\n")
    with pytest.raises(ConfigError, match=r"security\.http\.deny: .*'db:port'"):
        load_settings(path, env={})
