"""The topology ``trinity up`` starts, from ``prefect.api_replicas``, ``prefect.messaging`` and ``workers``.

With one API replica (the default) Prefect is one ``prefect server start`` with its services, as
it always was. With more, ``trinity up`` starts Prefect's scale-out shape instead:

* ``api_replicas`` times ``prefect server start --no-services`` on free ports of 127.0.0.1;
* one ``prefect server services start`` (the scheduler, the event persister, ...);
* prefect-redis as the messaging broker, cache, causal ordering, lease storage and Docket, so the
  processes share what Prefect otherwise keeps in memory;
* HAProxy (:mod:`trinity.load_balancer`) at the stack's Prefect port, in front of the API
  servers; every client, worker and the banner use its URL.

Each part is a child of the supervisor, restarted when it dies. ``trinity status --json`` lists
them as ``parts`` (:func:`part_of`).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trinity.core.settings import Settings
from trinity.load_balancer import CONFIG_FILE, haproxy_argv, haproxy_binary, missing_message, write_config
from trinity.stack_setup import StackError
from trinity.supervisor import ChildSpec, http_ok

if TYPE_CHECKING:
    from trinity.stack_config import StackConfig

KIND_PREFECT_API = "prefect-api"
KIND_PREFECT_SERVICES = "prefect-services"
KIND_LOAD_BALANCER = "load-balancer"
KIND_TRINITY_API = "trinity-api"
KIND_WORKER = "worker"
# The API servers listen here only: they are reached through the load balancer.
BACKEND_HOST = "127.0.0.1"
# The Docket that `prefect server services start` runs its perpetual services in (Prefect 3.8
# names it so in prefect.cli._server_utils._run_all_services); its workers' heartbeats say that
# the services process is up and connected to Redis.
SERVICES_DOCKET = "prefect"


class TopologyError(StackError):
    """The topology cannot start on this machine; the message says what to install or change."""


@dataclass(frozen=True)
class Topology:
    """How many of each process ``trinity up`` starts, and the Redis they share."""

    api_replicas: int = 1
    messaging: str | None = None
    workers: int = 1

    @property
    def replicated(self) -> bool:
        """More than one Prefect API server: the services run apart, behind a load balancer."""
        return self.api_replicas > 1

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        """The topology of the resolved settings (validated there: :class:`PrefectSettings`)."""
        prefect = settings.prefect
        return cls(api_replicas=prefect.api_replicas, messaging=prefect.messaging, workers=settings.workers)

    def check_installed(self) -> None:
        """Raise :class:`TopologyError` when a program the topology needs is not installed."""
        if self.replicated and haproxy_binary() is None:
            raise TopologyError(missing_message())


def messaging_environment(messaging: str | None) -> dict[str, str]:
    """Prefect server settings that put its messaging, cache, ordering, leases and Docket in Redis."""
    if not messaging:
        return {}
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_URL": messaging,
        "PREFECT_SERVER_DOCKET_URL": messaging,
    }


def free_port(host: str = BACKEND_HOST) -> int:
    """A port nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def replicated_prefect_specs(config: StackConfig, prefect_env: dict[str, str]) -> list[ChildSpec]:
    """The API servers, the services process and the load balancer, in start order.

    The first API server runs the database migrations before the others start. Writes the load
    balancer's configuration into the state folder.
    """
    topology = config.topology
    binary = haproxy_binary()
    if binary is None:
        raise TopologyError(missing_message())
    ports = [free_port() for _ in range(topology.api_replicas)]
    specs = [api_server_spec(index, port, prefect_env) for index, port in enumerate(ports, start=1)]
    messaging = topology.messaging or ""
    specs.append(
        ChildSpec(
            name="prefect-services",
            kind=KIND_PREFECT_SERVICES,
            argv=[sys.executable, "-m", "prefect", "server", "services", "start"],
            env=prefect_env,
            health=lambda since: services_heartbeat(messaging, since),
        )
    )
    lb_config = write_config(
        config.state_dir / CONFIG_FILE,
        listen_host=config.host,
        listen_port=config.prefect_port,
        servers=[(BACKEND_HOST, port) for port in ports],
    )
    specs.append(
        ChildSpec(
            name="load-balancer",
            kind=KIND_LOAD_BALANCER,
            argv=haproxy_argv(binary, lb_config),
            env=prefect_env,
            health=lambda since: http_ok(f"{config.prefect_api_url}/health"),
            url=config.prefect_ui_url,
            port=config.prefect_port,
        )
    )
    return specs


def api_server_spec(index: int, port: int, prefect_env: dict[str, str]) -> ChildSpec:
    """One ``prefect server start --no-services`` of a replicated stack."""
    url = f"http://{BACKEND_HOST}:{port}"
    argv = [sys.executable, "-m", "prefect", "server", "start", "--no-services"]
    return ChildSpec(
        name=f"prefect-api-{index}",
        kind=KIND_PREFECT_API,
        argv=[*argv, "--host", BACKEND_HOST, "--port", str(port)],
        env=prefect_env,
        health=lambda since: http_ok(f"{url}/api/health"),
        url=url,
        port=port,
    )


def worker_names(topology: Topology, base: str) -> list[tuple[str, str]]:
    """(child name, Prefect worker name) of each Trinity worker process; one keeps today's names."""
    if topology.workers == 1:
        return [("trinity-worker", base)]
    return [(f"trinity-worker-{i}", f"{base}-{i}") for i in range(1, topology.workers + 1)]


def services_heartbeat(messaging: str, since: float) -> bool:
    """True when a worker of the services' Docket has beaten in Redis since ``since``."""
    if not messaging:
        return False
    return asyncio.run(_services_seen(messaging, since))


async def _services_seen(messaging: str, since: float) -> bool:
    # Here, not at the top: Docket and its Redis client take seconds to import, and every CLI
    # command that finds the stack imports this module; only `trinity up` checks the services.
    from docket import Docket
    from redis.exceptions import RedisError

    try:
        async with Docket(name=SERVICES_DOCKET, url=messaging) as docket:
            workers = await docket.workers()
    except (OSError, RedisError):
        return False
    return any(worker.last_seen.timestamp() >= since for worker in workers)


def part_of(child: dict[str, object]) -> dict[str, object]:
    """One entry of ``trinity status --json``'s ``parts``, from a child of the status file."""
    return {
        "name": child.get("name"),
        "kind": child.get("kind"),
        "pid": child.get("pid"),
        "url": child.get("url"),
        "healthy": bool(child.get("healthy")),
    }
