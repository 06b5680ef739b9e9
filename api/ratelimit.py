"""Rate limits: at most ``limit`` hits in any ``window`` seconds for one key (a sender, an
address), a sliding window (no double burst at a window's edge). Shared by every API process through Redis in scaled mode,
kept in this process otherwise. Over the limit: 429 RATE_LIMITED with Retry-After."""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from api.errors import ApiError
from shopledger.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str  # what is limited, part of the key: "messages", "login", ...
    limit: int
    window: int  # seconds


class RateLimiter(Protocol):
    def hit(self, limit: Limit, key: str) -> float | None:
        """Count one hit; None if within the limit, else the seconds until one is allowed
        again. A refused hit is not counted."""

    def take(self, limit: Limit, key: str) -> tuple[float | None, str]:
        """:meth:`hit`, also answering a token that :meth:`give_back` takes to uncount it."""

    def give_back(self, limit: Limit, key: str, token: str) -> None:
        """Uncount a hit (e.g. a login that succeeded: only failures use up the budget)."""


class LocalRateLimiter:
    """A sliding window per key: the times of the hits in the last ``window`` seconds."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[tuple[str, str], deque[tuple[float, str]]] = {}
        self._lock = threading.Lock()

    def hit(self, limit: Limit, key: str) -> float | None:
        return self.take(limit, key)[0]

    def take(self, limit: Limit, key: str) -> tuple[float | None, str]:
        now = self._clock()
        token = uuid.uuid4().hex
        with self._lock:
            if len(self._hits) > 100_000:  # forget the keys with no hit in their window
                self._hits = {
                    k: v for k, v in self._hits.items() if v and v[-1][0] > now - limit.window
                }
            hits = self._hits.setdefault((limit.name, key), deque())
            while hits and hits[0][0] <= now - limit.window:
                hits.popleft()
            if len(hits) >= limit.limit:
                return float(hits[0][0] + limit.window - now), token
            hits.append((now, token))
        return None, token

    def give_back(self, limit: Limit, key: str, token: str) -> None:
        with self._lock:
            hits = self._hits.get((limit.name, key))
            if hits:
                kept = [hit for hit in hits if hit[1] != token]
                hits.clear()
                hits.extend(kept)


#: KEYS[1] the key's sorted set of hit times (ms); ARGV: now (ms), window (ms), limit, a
#: unique member. Answers 0 (allowed, counted) or the ms until a hit is allowed again.
_SLIDING = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


class RedisRateLimiter:
    """The same sliding window, in Redis (one atomic script per hit), shared by every API
    process. If Redis is down the limit is not enforced (logged): rate limits guard against
    abuse, they must not take the API down with them."""

    def __init__(self, client: Any, prefix: str, clock: Any = time.time) -> None:
        self._prefix = f"{prefix}:rate:"
        self._client = client
        self._clock = clock
        self._script = client.register_script(_SLIDING)

    def hit(self, limit: Limit, key: str) -> float | None:
        return self.take(limit, key)[0]

    def take(self, limit: Limit, key: str) -> tuple[float | None, str]:
        now_ms = int(self._clock() * 1000)
        token = uuid.uuid4().hex
        try:
            wait_ms = int(
                self._script(
                    keys=[f"{self._prefix}{limit.name}:{key}"],
                    args=[now_ms, limit.window * 1000, limit.limit, token],
                )
            )
        except Exception as exc:  # noqa: BLE001 - fail open, loudly
            log.warning("rate limit unavailable", extra={"limit": limit.name, "error": str(exc)})
            return None, token
        return (None if wait_ms == 0 else wait_ms / 1000), token

    def give_back(self, limit: Limit, key: str, token: str) -> None:
        try:
            self._client.zrem(f"{self._prefix}{limit.name}:{key}", token)
        except Exception as exc:  # noqa: BLE001 - the hit then simply counts
            log.warning("rate limit unavailable", extra={"limit": limit.name, "error": str(exc)})


def rate_limiter(settings: Settings) -> RateLimiter:
    if settings.redis_url is None:
        return LocalRateLimiter()
    import redis

    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    return RedisRateLimiter(client, settings.queue_prefix)


def enforce(limiter: RateLimiter, limit: Limit, key: str) -> None:
    """Raise 429 RATE_LIMITED (with Retry-After, whole seconds) when ``key`` is over."""
    wait = limiter.hit(limit, key)
    if wait is not None:
        raise refusal(limit, wait)


def refusal(limit: Limit, wait: float) -> ApiError:
    """429 RATE_LIMITED with Retry-After (whole seconds, at least 1)."""
    seconds = max(1, math.ceil(wait))
    return ApiError(
        429,
        "RATE_LIMITED",
        f"too many requests: at most {limit.limit} per {limit.window} s; retry later",
        {"retryAfter": seconds, "limit": limit.limit, "windowSeconds": limit.window},
        headers={"Retry-After": str(seconds)},
    )
