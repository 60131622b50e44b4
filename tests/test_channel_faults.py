"""Nothing lost under faults: marketplace pulls through real `oms worker` processes on
PostgreSQL + Redis, both workers killed by SIGKILL during the first pull (and started
again), while the marketplace's gateway answers every 7th request with nginx's HTML
502 page and every answer takes 20 ms. Every order must arrive, exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from oms_graphql.db.engine import Database
from oms_graphql.db.models import Channel, Order
from tests.channel_support import create_channel, jd_settings, taobao_settings
from tests.conftest import REDIS_URL, fresh_database, requires_redis
from tests.fakes import jd, taobao
from tests.fakes.server import serve
from tests.support import GraphQLClient, create_token, run_async
from tests.test_subscriptions import oms_serve

ORDERS = 300
SPREAD = timedelta(hours=10)

# Quick enough for a test: a killed worker's pull lease lapses in seconds, and a stored
# order whose ingest job died with its worker is queued again after ten.
FAST_RECOVERY = {
    "OMS_CHANNEL_TICK_SECONDS": "0.5",
    "OMS_CHANNEL_PULL_LEASE_SECONDS": "4",
    "OMS_STUCK_MESSAGE_SECONDS": "10",
    "OMS_LOG_LEVEL": "WARNING",
}


@contextmanager
def worker_process(database_url: str, namespace: str) -> Iterator[Callable[[], subprocess.Popen]]:
    """A restartable `oms worker`; yields a function that starts (or restarts) it."""
    assert REDIS_URL
    env = {
        **os.environ,
        **FAST_RECOVERY,
        "OMS_DATABASE_URL": database_url,
        "OMS_BROKER_URL": REDIS_URL,
        "OMS_REDIS_URL": REDIS_URL,
        "OMS_BROKER_NAMESPACE": namespace,
    }
    current: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        current[:] = [subprocess.Popen([sys.executable, "-m", "oms_graphql.cli", "worker", "--threads", "2"], env=env)]
        return current[0]

    try:
        yield start
    finally:
        for process in current:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def stored_orders(database_url: str, channel_code: str) -> dict[str, int]:
    """External id → how many orders the channel has with it."""

    async def count() -> dict[str, int]:
        database = Database(database_url)
        try:
            async with database.session() as session:
                rows = await session.execute(
                    select(Order.external_id, func.count())
                    .join(Channel, Channel.id == Order.channel_id)
                    .where(Channel.code == channel_code)
                    .group_by(Order.external_id)
                )
                return {external_id: n for external_id, n in rows.all()}
        finally:
            await database.dispose()

    return run_async(count())


def pull_through_kills_and_502s(
    database_url: str, kind: str, settings: dict[str, Any], gateway: Any, calls: Callable[[], int]
) -> dict[str, Any]:
    """Create the channel, kill both workers a few seconds apart during the first pull,
    and wait for every order; return the figures of the run."""
    assert REDIS_URL
    namespace = f"oms-test-{uuid.uuid4().hex[:8]}"
    code = f"{kind}-faults-{uuid.uuid4().hex[:6]}"
    gateway.fail_every, gateway.latency = 7, 0.02
    kills = 0
    with (
        oms_serve(database_url, REDIS_URL, OMS_BROKER_NAMESPACE=namespace, OMS_CHANNEL_SCHEDULER="0") as api,
        worker_process(database_url, namespace) as start_a,
        worker_process(database_url, namespace) as start_b,
    ):
        client = GraphQLClient(api, create_token(database_url, "ADMIN", "faults"))
        workers = [start_a(), start_b()]
        create_channel(
            client,
            code,
            kind,
            settings,
            pollIntervalSeconds=5,
            syncFrom=(datetime.now(UTC) - SPREAD - timedelta(hours=1)).isoformat(),
        )
        # Kill in the middle of the first pull, once the gateway has seen some of it, and the
        # other worker a few seconds later (whichever holds the pull by then).
        deadline = time.monotonic() + 60
        while calls() < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        for index, restart in enumerate((start_a, start_b)):
            time.sleep(0.3 if index == 0 else 3)
            workers[index].send_signal(signal.SIGKILL)
            workers[index].wait(timeout=10)
            kills += 1
            workers[index] = restart()
        deadline = time.monotonic() + 150
        stored = stored_orders(database_url, code)
        while len(stored) < ORDERS and time.monotonic() < deadline:
            time.sleep(1)
            stored = stored_orders(database_url, code)
    figures = {
        "channel": kind,
        "orders at the channel": ORDERS,
        "kills": kills,
        "requests": gateway.requests,
        "502s": gateway.failures,
        "stored": len(stored),
        "duplicates": sum(n - 1 for n in stored.values()),
    }
    print("\nfault run:", ", ".join(f"{name} {value}" for name, value in figures.items()))
    figures["ids"] = set(stored)
    return figures


@pytest.fixture
def own_database() -> Iterator[str]:
    """A database of its own: no other test's channel or scheduler interferes with the counts."""
    with fresh_database() as url:
        yield url


def taobao_marketplace(stamps: list[datetime]) -> tuple[Any, Any, set[str]]:
    state = taobao.TaobaoState(load_samples=False)
    ids = {state.add_trade(status="WAIT_SELLER_SEND_GOODS", modified=stamp) for stamp in stamps}
    return state, taobao.make_app(state), ids


def jd_marketplace(stamps: list[datetime]) -> tuple[Any, Any, set[str]]:
    state = jd.JdState(load_samples=False)
    state.listing_omits_lines = True  # search rows without lines: each new order is fetched with order.get
    ids = {state.add_order(orderState="WAIT_SELLER_STOCK_OUT", modified=stamp) for stamp in stamps}
    return state, jd.make_app(state), ids


MARKETPLACES = {"taobao": (taobao_marketplace, taobao_settings), "jd": (jd_marketplace, jd_settings)}


@requires_redis
@pytest.mark.parametrize("kind", ["taobao", "jd"])
def test_a_pull_loses_nothing_when_workers_are_killed_and_the_gateway_fails(own_database, kind):
    now = datetime.now(UTC)
    stamps = [now - SPREAD * (i + 1) / (ORDERS + 1) for i in range(ORDERS)]
    marketplace, settings = MARKETPLACES[kind]
    state, app, ids = marketplace(stamps)
    with serve(app) as base:
        figures = pull_through_kills_and_502s(
            own_database, kind, settings(base, state), state.gateway, lambda: len(state.calls)
        )
    assert figures["502s"] > 0 and figures["kills"] == 2
    assert figures["ids"] == ids
    assert figures["duplicates"] == 0
