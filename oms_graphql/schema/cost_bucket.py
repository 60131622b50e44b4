"""Each caller's cost bucket (a leaky bucket, as Shopify's throttle): it holds
``capacity`` points, refills at ``rate`` points a second, and an operation takes
its cost from it or is refused.

In-process by default; with ``OMS_REDIS_URL`` the buckets live in Redis, so
several ``oms serve`` processes behind a load balancer share them (one Lua script
reads, refills and takes atomically, on Redis's clock).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import structlog

from oms_graphql.config import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    available: float  # what is left in the bucket after this operation (or before it, when refused)


class CostBucket:
    """The in-process buckets: one per key, the least recently used forgotten past ``max_keys``."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._levels: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()[:32]

    @staticmethod
    def for_settings(settings: Settings) -> CostBucket:
        return RedisCostBucket(settings.redis_url, settings.broker_namespace) if settings.redis_url else CostBucket()

    async def take(self, key: str, cost: float, *, capacity: float, rate: float) -> Decision:
        now = time.monotonic()
        with self._lock:
            available, at = self._levels.pop(key, (capacity, now))
            available = min(capacity, available + (now - at) * rate)
            allowed = cost <= available
            if allowed:
                available -= cost
            self._levels[key] = (available, now)
            while len(self._levels) > self.max_keys:
                self._levels.popitem(last=False)
        return Decision(allowed, available)


# KEYS[1]: the bucket; ARGV: capacity, rate per second, cost. Returns {allowed, available}.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'available', 'at')
local available = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
available = math.min(capacity, available + math.max(0, now - at) * rate)
local allowed = 0
if cost <= available then
  available = available - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'available', tostring(available), 'at', tostring(now))
local ttl = 60
if rate > 0 then ttl = math.ceil(capacity / rate) + 60 end
redis.call('EXPIRE', KEYS[1], ttl)
return {allowed, tostring(available)}
"""


class RedisCostBucket(CostBucket):
    """The buckets in Redis, shared by every process of one install."""

    def __init__(self, url: str, namespace: str) -> None:
        super().__init__()
        self.url = url
        self.prefix = f"{namespace}:oms-cost:"
        self._client: Any = None

    async def take(self, key: str, cost: float, *, capacity: float, rate: float) -> Decision:
        import redis.asyncio as redis

        try:
            if self._client is None:
                self._client = redis.from_url(self.url)
            allowed, available = await self._client.eval(_TAKE, 1, self.prefix + key, capacity, rate, cost)
            return Decision(bool(int(allowed)), float(available))
        except Exception as error:  # Redis down: fall back to this process's bucket, never refuse everyone
            log.warning("cost bucket: Redis unavailable, using the in-process bucket", error=repr(error))
            self._client = None
            return await super().take(key, cost, capacity=capacity, rate=rate)
