"""Background jobs on a real broker: `oms serve` enqueues, a separate `oms worker` runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from oms_graphql.app import make_readyz
from oms_graphql.db.engine import Database
from tests.conftest import REDIS_URL, requires_redis
from tests.support import GraphQLClient, add_location, add_product, create_token, place_order, receive, wait_for_status
from tests.test_subscriptions import oms_serve

AMQP_URL = os.environ.get("OMS_TEST_AMQP_URL")


@contextmanager
def oms_worker(database_url: str, broker_url: str, namespace: str) -> Iterator[None]:
    env = {
        **os.environ,
        "OMS_DATABASE_URL": database_url,
        "OMS_BROKER_URL": broker_url,
        "OMS_BROKER_NAMESPACE": namespace,
        "OMS_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "oms_graphql.cli", "worker", "--threads", "2"], env=env)
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def paid_order_is_allocated_by_a_separate_worker(database_url: str, broker_url: str, uid: str) -> None:
    # A namespace of its own, so nothing left in Redis by another run reaches this worker.
    namespace = f"oms-test-{uuid.uuid4().hex[:8]}"
    with oms_serve(database_url, broker_url, OMS_BROKER_NAMESPACE=namespace) as api:
        client = GraphQLClient(api, create_token(database_url, "ADMIN", "jobs"))
        sku = f"JOB-{uid}"
        add_product(client, sku)
        add_location(client, f"JOB-{uid}")
        receive(client, sku, f"JOB-{uid}", 2)
        order = place_order(client, [(sku, 2, "3.00")], paid=True)
        assert wait_for_status(client, order["id"], "CONFIRMED")  # nothing runs jobs yet
        with oms_worker(database_url, broker_url, namespace):
            allocated = wait_for_status(client, order["id"], "ALLOCATED")
    assert allocated["allocations"] == [{"sku": sku, "quantity": 2, "location": {"code": f"JOB-{uid}"}}]


@requires_redis
def test_jobs_run_on_a_separate_worker_over_redis(database_url, uid):
    assert REDIS_URL
    paid_order_is_allocated_by_a_separate_worker(database_url, REDIS_URL, uid)


@pytest.mark.skipif(not (AMQP_URL and REDIS_URL), reason="needs OMS_TEST_AMQP_URL and the PostgreSQL/Redis setup")
def test_jobs_run_on_a_separate_worker_over_rabbitmq(database_url, uid):
    assert AMQP_URL
    paid_order_is_allocated_by_a_separate_worker(database_url, AMQP_URL, uid)


def test_readyz_answers_503_when_the_database_is_unreachable(settings):
    unreachable = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    app = Starlette(routes=[Route("/readyz", make_readyz(unreachable))])

    async def probe() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oms") as client:
            return await client.get("/readyz")

    response = asyncio.run(probe())
    assert response.status_code == 503
    assert response.json()["problems"]["database"]
