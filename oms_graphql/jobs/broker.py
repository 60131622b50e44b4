"""Choose and configure the Dramatiq broker."""

from __future__ import annotations

import importlib
from typing import Any

import dramatiq
import structlog
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

from oms_graphql.config import get_settings
from oms_graphql.jobs.metrics import JobMetrics

log = structlog.get_logger(__name__)
_configured: str | None = None
ACTOR_MODULES = (
    "oms_graphql.jobs.orders",
    "oms_graphql.jobs.inventory",
    "oms_graphql.jobs.channels",
    "oms_graphql.jobs.channel_pulls",
    "oms_graphql.jobs.delivery",
    "oms_graphql.jobs.reports",
)


def _middleware() -> list[Any]:
    return [
        AgeLimit(),
        TimeLimit(time_limit=5 * 60 * 1000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=20, min_backoff=500, max_backoff=5 * 60 * 1000),
        JobMetrics(),
    ]


def make_broker(url: str, namespace: str = "dramatiq") -> dramatiq.Broker:
    if url == "memory":
        return StubBroker(middleware=_middleware())
    if url.startswith("redis://") or url.startswith("rediss://"):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, namespace=namespace, middleware=_middleware())
    if url.startswith("amqp://") or url.startswith("amqps://"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=_middleware())
    raise ValueError(f"OMS_BROKER_URL={url!r} is not memory, redis://… or amqp://…")


def setup(url: str) -> dramatiq.Broker:
    """Install the broker for ``url`` and declare every actor on it (once per process)."""
    global _configured
    if _configured == url:
        return dramatiq.get_broker()
    broker = make_broker(url, get_settings().broker_namespace)
    dramatiq.set_broker(broker)
    for name in ACTOR_MODULES:
        module = importlib.import_module(name)
        importlib.reload(module) if _configured else None
    _configured = url
    return broker


def current_broker() -> dramatiq.Broker:
    return dramatiq.get_broker()


def send_job(actor_name: str, kwargs: dict[str, Any]) -> None:
    """Send a job by actor name (used by the outbox relay)."""
    current_broker().get_actor(actor_name).send(**kwargs)
