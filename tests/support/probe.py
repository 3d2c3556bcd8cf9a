"""``python -m tests.support.probe postgres|redis URL``: exit 0 when the server at URL answers.

The readiness checks of ``scripts/lib.sh``, which starts what the tests need when it is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import psycopg
import redis


def postgres(url: str) -> None:
    """Connect to PostgreSQL and disconnect."""
    psycopg.connect(url, connect_timeout=3).close()


def redis_server(url: str) -> None:
    """Ping Redis."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    finally:
        client.close()


PROBES: dict[str, Callable[[str], None]] = {"postgres": postgres, "redis": redis_server}


def main(argv: list[str]) -> int:
    """0 when the server answers, 1 when it does not (the reason on stderr)."""
    kind, url = argv
    try:
        PROBES[kind](url)
    except (psycopg.Error, redis.exceptions.RedisError, OSError) as exc:
        print(f"{kind} at {url}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
