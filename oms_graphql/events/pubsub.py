"""Publish/subscribe for live events: in-process, or across processes over Redis.

Subscribers always listen on the process-local ``hub``. With Redis configured,
the relay publishes to Redis only and every process forwards what Redis
delivers to its local hub, so each subscriber sees each event once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import structlog

log = structlog.get_logger(__name__)
REDIS_CHANNEL = "oms:events"


class LocalHub:
    """Fan out messages to asyncio queues; ``publish`` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict]]]] = {}

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        with self._lock:
            targets = list(self._subscribers.get(topic, ()))
        for loop, queue in targets:
            with contextlib.suppress(RuntimeError):  # the subscriber's loop has closed
                loop.call_soon_threadsafe(queue.put_nowait, message)

    async def subscribe(self, topic: str) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict] = asyncio.Queue()
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._subscribers.setdefault(topic, set()).add(entry)
        try:
            while True:
                yield await queue.get()
        finally:
            with self._lock:
                self._subscribers.get(topic, set()).discard(entry)


hub = LocalHub()


class Publisher:
    """Where the relay sends events: the local hub, or Redis."""

    def __init__(self, redis_url: str | None) -> None:
        self.redis_url = redis_url
        self._redis: Any = None

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        if not self.redis_url:
            hub.publish(topic, message)
            return
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url)
        self._redis.publish(REDIS_CHANNEL, json.dumps({"topic": topic, "message": message}))


async def forward_from_redis(redis_url: str, ready: asyncio.Event | None = None) -> None:
    """Deliver everything published on Redis to this process's hub, forever."""
    from redis import asyncio as aioredis

    while True:
        client = aioredis.Redis.from_url(redis_url)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(REDIS_CHANNEL)
                if ready:
                    ready.set()
                async for item in pubsub.listen():
                    if item.get("type") != "message":
                        continue
                    envelope = json.loads(item["data"])
                    hub.publish(envelope["topic"], envelope["message"])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("redis pub/sub connection lost; reconnecting in 1s", exc_info=True)
            await asyncio.sleep(1)
        finally:
            await client.aclose()
