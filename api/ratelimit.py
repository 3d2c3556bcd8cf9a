"""Rate limits: a sliding window (log of request times), per principal or per client address.

The same limiter counts requests per API key (``security.rate_limit``), failed authentications
per client address (``security.auth_failure_rate_limit``: :meth:`check` before trying the
credentials, :meth:`hit` when they fail) and token requests per client address
(``security.token_rate_limit``).

In-process by default. With ``redis.url`` configured the log lives in Redis (one sorted set per
principal, updated atomically by a Lua script), so every API process shares the same budget. If
Redis is unreachable the request is let through and a warning logged: a limiter outage must not
become an API outage.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from typing import Any, Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

logger = logging.getLogger("trinity.api")


class RateLimiter(Protocol):
    limit: int
    window: float

    async def hit(self, key: str) -> float | None:
        """Record one request; None when allowed, else the seconds until one is allowed."""

    async def check(self, key: str) -> float | None:
        """Like :meth:`hit` without recording anything."""

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """Exact sliding window in this process: at most ``limit`` requests per ``window`` seconds."""

    def __init__(self, *, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self._max_keys = max_keys
        self._log: dict[str, deque[float]] = {}

    async def hit(self, key: str) -> float | None:
        now = time.monotonic()
        log = self._log.get(key)
        if log is None:
            if len(self._log) >= self._max_keys:
                self._evict_idle(now)
            log = self._log[key] = deque()
        cutoff = now - self.window
        while log and log[0] <= cutoff:
            log.popleft()
        if len(log) >= self.limit:
            return log[0] + self.window - now
        log.append(now)
        return None

    async def check(self, key: str) -> float | None:
        log = self._log.get(key)
        if not log:
            return None
        now = time.monotonic()
        cutoff = now - self.window
        while log and log[0] <= cutoff:
            log.popleft()
        return log[0] + self.window - now if len(log) >= self.limit else None

    def _evict_idle(self, now: float) -> None:
        cutoff = now - self.window
        for key in [k for k, log in self._log.items() if not log or log[-1] <= cutoff]:
            del self._log[key]

    async def close(self) -> None:
        self._log.clear()


# KEYS[1]: the principal's log; ARGV: now (ms), window (ms), limit. Drops what left the window and
# returns the ms until the oldest entry leaves it when the log is full.
_FULL_WAIT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end
"""

# Records the request (ARGV[4]: its member) when there is room; -1: allowed.
_SLIDING_WINDOW = (
    _FULL_WAIT
    + """redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, window)
return -1
"""
)

# The same without recording.
_SLIDING_WINDOW_CHECK = _FULL_WAIT + "return -1\n"


class RedisRateLimiter:
    """The same sliding window, shared through Redis."""

    def __init__(self, *, url: str, db: int, limit: int, window: float, prefix: str = "trinity:rl:") -> None:
        self.limit = limit
        self.window = window
        self._prefix = prefix
        self._redis: Any = redis.Redis.from_url(url, db=db, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script: Any = self._redis.register_script(_SLIDING_WINDOW)
        self._check_script: Any = self._redis.register_script(_SLIDING_WINDOW_CHECK)

    async def hit(self, key: str) -> float | None:
        now_ms = int(time.time() * 1000)
        member = f"{now_ms}-{uuid.uuid4().hex[:8]}"
        return await self._run(self._script, key, [now_ms, int(self.window * 1000), self.limit, member])

    async def check(self, key: str) -> float | None:
        now_ms = int(time.time() * 1000)
        return await self._run(self._check_script, key, [now_ms, int(self.window * 1000), self.limit])

    async def _run(self, script: Any, key: str, args: list[Any]) -> float | None:
        try:
            wait_ms = await script(keys=[self._prefix + key], args=args)
        except (RedisError, OSError) as exc:
            logger.warning("rate limiter: Redis unavailable, allowing request (%s)", exc)
            return None
        return None if int(wait_ms) < 0 else int(wait_ms) / 1000

    async def close(self) -> None:
        await self._redis.aclose()


def build_rate_limiter(
    *, rate: tuple[int, float] | None, redis_url: str | None, redis_db: int, prefix: str = "trinity:rl:"
) -> RateLimiter | None:
    """The limiter for the configured rate (None: no limit); ``prefix`` names its Redis keys."""
    if rate is None:
        return None
    limit, window = rate
    if redis_url:
        return RedisRateLimiter(url=redis_url, db=redis_db, limit=limit, window=window, prefix=prefix)
    return MemoryRateLimiter(limit=limit, window=window)
