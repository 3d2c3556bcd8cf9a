"""The load balancer in front of the Prefect API servers of a replicated ``trinity up``: HAProxy.

Debian's ``haproxy`` package (2.6) runs in the foreground under the supervisor with the
configuration written here. It checks each API server's ``/api/health`` every second and takes a
server out after two failed checks; a request whose connection is refused (a server that just
died, before the checks noticed) is sent to another server, so losing one API server is not seen
by workers and clients.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

HAPROXY = "haproxy"
HEALTH_PATH = "/api/health"
INSTALL_HINT = "install Debian's package: apt-get install -y haproxy"
CONFIG_FILE = "haproxy.cfg"


def haproxy_binary() -> str | None:
    """The path of the ``haproxy`` program, or None when it is not installed."""
    # Debian puts it in /usr/sbin, which is not on every user's PATH.
    return shutil.which(HAPROXY) or shutil.which(HAPROXY, path="/usr/sbin:/usr/local/sbin")


def missing_message() -> str:
    """The one line ``trinity up`` prints when the load balancer is not installed."""
    return (
        "prefect.api_replicas > 1 puts HAProxy in front of the Prefect API servers, "
        f"and it is not installed: {INSTALL_HINT}"
    )


def haproxy_config(*, listen_host: str, listen_port: int, servers: Sequence[tuple[str, int]]) -> str:
    """An HAProxy configuration that spreads ``listen_host:listen_port`` over ``servers``."""
    backend = "\n".join(
        f"    server api{index} {host}:{port} check" for index, (host, port) in enumerate(servers, start=1)
    )
    bind = f"[{listen_host}]" if ":" in listen_host else listen_host
    return f"""# Written by `trinity up` at every start; edits are overwritten.
global
    log stdout format raw local0 notice
    maxconn 4096

defaults
    mode http
    log global
    option dontlognull
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    # Websockets (events in, logs out) live long.
    timeout tunnel 1h
    # A refused connection is tried again (up to 3 times), on another server after the first.
    # Only then: a request a server dropped without answering may have been carried out (a state
    # proposed, a run created), and sending it again would do it twice; the client decides.
    retries 3
    option redispatch 1
    retry-on conn-failure

frontend prefect
    bind {bind}:{listen_port}
    default_backend prefect_api

backend prefect_api
    balance roundrobin
    option httpchk GET {HEALTH_PATH}
    http-check expect status 200
    default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2 on-marked-down shutdown-sessions
{backend}
"""


def write_config(
    path: Path, *, listen_host: str, listen_port: int, servers: Sequence[tuple[str, int]]
) -> Path:
    """Write :func:`haproxy_config` to ``path``; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(haproxy_config(listen_host=listen_host, listen_port=listen_port, servers=servers))
    return path


def haproxy_argv(binary: str, config: Path) -> list[str]:
    """The command line of HAProxy in the foreground (``-db``), as the supervisor wants its children."""
    return [binary, "-db", "-f", str(config)]
