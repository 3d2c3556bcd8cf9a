"""Where ``http`` tasks may connect: the rules of ``security.http`` and the ones always in force.

A rule is a network (``10.0.0.0/8``, ``fe80::/10``, ``169.254.169.254``: any port) or a host and a
port (``db.internal:5432``, ``127.0.0.1:4200``, ``[::1]:8000``). A request is refused when one of
its resolved addresses matches a ``deny`` rule and no ``allow`` rule; ``allow`` only makes
exceptions to ``deny``.

Denied by default, whatever the file says (``allow`` can still open them):

* link-local addresses, 169.254.0.0/16 and fe80::/10 (cloud metadata services live there), and the
  unspecified addresses 0.0.0.0 and ::, which reach the machine itself;
* the stack's own services: the Prefect API, the Trinity API, Trinity's and Prefect's databases
  and Redis, by host and port. A service on this machine (loopback, the machine's own addresses or
  a wildcard bind) is denied at its port on every address of this machine, since a service bound
  to 0.0.0.0 answers on all of them.

This module decides; resolving names and connecting is the caller's (``flows.actions.http``).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psutil

if TYPE_CHECKING:
    from trinity.core.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ResolveFn = Callable[[str], Sequence[IPAddress]]

ALWAYS_DENIED = (
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
    ("0.0.0.0/32", "this machine"),
    ("::/128", "this machine"),
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "postgres": 5432, "redis": 6379}
_DEFAULT_PORTS |= {"rediss": 6380, "mysql": 3306}


@dataclass(frozen=True)
class Rule:
    """One entry of ``deny`` or ``allow`` (or a default), as written, with why it is there."""

    text: str
    network: IPNetwork | None = None
    host: str | None = None
    port: int | None = None
    why: str = ""

    def describe(self) -> str:
        return f"'{self.text}' ({self.why})" if self.why else f"'{self.text}'"


def parse_rule(text: str, why: str = "") -> Rule:
    """A rule from its text; raises ValueError saying what was expected."""
    raw = text.strip()
    if not raw:
        raise ValueError("an empty rule; expected a CIDR (10.0.0.0/8) or host:port (db:5432)")
    try:
        return Rule(raw, network=ipaddress.ip_network(raw, strict=False), why=why)
    except ValueError:
        pass
    if "://" in raw:
        raise ValueError(f"'{raw}' is a URL; write its host and port (db.internal:5432) or a CIDR")
    host, port = _split_host_port(raw)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"'{raw}': port {port} is out of range")
    if not host or any(char.isspace() or char in "/@?#" for char in host):
        raise ValueError(f"'{raw}' is neither a CIDR (10.0.0.0/8) nor host:port (db.internal:5432)")
    try:
        network = ipaddress.ip_network(host)
    except ValueError:
        return Rule(raw, host=host.lower(), port=port, why=why)
    return Rule(raw, network=network, port=port, why=why)


def _split_host_port(raw: str) -> tuple[str, int | None]:
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        return host, _port(raw, rest.removeprefix(":")) if rest else None
    if raw.count(":") == 1:
        host, _, port = raw.partition(":")
        return host, _port(raw, port)
    return raw, None


def _port(raw: str, text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"'{raw}': '{text}' is not a port number")
    return int(text)


def normalised(address: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 addresses (``::ffff:169.254.169.254``) as the IPv4 address they are."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=1)
def local_addresses() -> frozenset[IPAddress]:
    """Every address of this machine: loopback, its interfaces' addresses, the unspecified ones."""
    found: set[IPAddress] = {ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")}
    for addresses in psutil.net_if_addrs().values():
        for entry in addresses:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    found.add(normalised(ipaddress.ip_address(entry.address.split("%")[0])))
                except ValueError:
                    continue
    return frozenset(found)


def is_local(address: IPAddress) -> bool:
    """Whether a connection to ``address`` reaches this machine."""
    address = normalised(address)
    return address.is_loopback or address in local_addresses()


class EgressPolicy:
    """``deny`` and ``allow`` rules; :meth:`refusal` says which rule refuses an address and port."""

    def __init__(self, deny: Sequence[Rule], allow: Sequence[Rule], resolve: ResolveFn) -> None:
        self.deny = list(deny)
        self.allow = list(allow)
        self._resolve = resolve

    def _matches(self, rule: Rule, address: IPAddress, port: int, *, spread: bool) -> bool:
        """Whether ``rule`` covers the address and port; ``spread``: a rule for a port of this
        machine covers that port on every local address (a service bound to 0.0.0.0 answers there)."""
        if rule.port is not None and rule.port != port:
            return False
        if rule.network is not None:
            if address in rule.network:
                return True
            local_rule = is_local(rule.network.network_address)
            return spread and rule.port is not None and local_rule and is_local(address)
        assert rule.host is not None
        targets = self._resolve(rule.host)
        if any(address == target for target in targets):
            return True
        local_rule = any(is_local(target) for target in targets)
        return spread and rule.port is not None and local_rule and is_local(address)

    def refusal(self, address: IPAddress, port: int) -> Rule | None:
        """The rule that refuses a connection to ``address``:``port``, or None when it is allowed."""
        address = normalised(address)
        denied = next((rule for rule in self.deny if self._matches(rule, address, port, spread=True)), None)
        if denied is None or any(self._matches(rule, address, port, spread=False) for rule in self.allow):
            return None
        return denied


def resolve_host(host: str) -> list[IPAddress]:
    """The addresses a name resolves to (an IP literal is itself); empty when it does not resolve."""
    try:
        return [normalised(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return list(
        dict.fromkeys(normalised(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos)
    )


def service_rule(url: str | None, why: str) -> Rule | None:
    """A deny rule for the host and port of a service's URL (None when it has no network address)."""
    if not url or "://" not in url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    scheme = parts.scheme.split("+")[0].lower()
    port = port or _DEFAULT_PORTS.get(scheme)
    host = parts.hostname
    text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return parse_rule(text if port else host, why)


def default_rules(services: Iterable[tuple[str | None, str]]) -> list[Rule]:
    """The rules always in force: :data:`ALWAYS_DENIED` and each (service URL, what it is)."""
    rules = [parse_rule(text, why) for text, why in ALWAYS_DENIED]
    for url, why in services:
        rule = service_rule(url, why)
        if rule is not None and rule not in rules:
            rules.append(rule)
    return rules


def egress_policy(
    settings: Settings, *, prefect_api_url: str | None = None, resolve: ResolveFn = resolve_host
) -> EgressPolicy:
    """The policy of ``security.http`` plus the defaults for this stack's services.

    ``prefect_api_url`` is the Prefect API this process talks to, when it is not the configured one.
    """
    server = settings.server
    services = [
        (prefect_api_url, "the Prefect API"),
        (settings.prefect.api_url, "the Prefect API"),
        (f"http://{_bracketed(server.host)}:{server.port}", "the Trinity API"),
        (settings.database_url, "Trinity's database"),
        (settings.prefect.database_url, "Prefect's database"),
        (settings.redis.url, "Redis"),
        (settings.prefect.messaging, "Prefect's messaging Redis"),
    ]
    configured = settings.security.http
    deny = default_rules(services) + [parse_rule(text) for text in configured.deny]
    return EgressPolicy(deny, [parse_rule(text) for text in configured.allow], resolve)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
