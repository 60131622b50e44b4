"""orderEvents over websocket (graphql-transport-ws): in-process, and across processes via Redis."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import websockets

from tests.conftest import REDIS_URL, requires_redis
from tests.fakes.server import free_port
from tests.support import GraphQLClient, add_location, add_product, create_token, place_order, receive

SUBSCRIBE = """subscription($f: OrderEventsFilter) { orderEvents(filter: $f) {
  number fromStatus status order { status total { amount } } } }"""
CONFIRM = "mutation($id: ID!) { orderConfirmPayment(input: {id: $id}) { userErrors { code } } }"


async def collect_events(ws_url: str, token: str, variables: dict, count: int, act) -> list[dict]:
    """Subscribe, run ``act`` once the subscription is live, and return ``count`` events."""
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": variables}})
        )
        await asyncio.sleep(0.3)  # the subscription registers with the hub
        await asyncio.to_thread(act)
        events = []
        while len(events) < count:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
            assert message["type"] == "next", message
            events.append(message["payload"]["data"]["orderEvents"])
        return events


def test_status_changes_are_pushed_to_subscribers(admin, server, uid):
    sku = f"SUB-{uid}"
    add_product(admin, sku)
    add_location(admin, f"SUB-{uid}")
    receive(admin, sku, f"SUB-{uid}", 3)
    order = place_order(admin, [(sku, 1, "8.00")])

    events = asyncio.run(
        collect_events(
            server.replace("http", "ws") + "/graphql",
            admin.token,
            # The order's creation (None → PENDING) may be relayed after the subscription starts.
            {"f": {"orderId": order["id"], "status": ["CONFIRMED", "ALLOCATED"]}},
            2,
            lambda: admin(CONFIRM, {"id": order["id"]}),
        )
    )
    assert [(e["fromStatus"], e["status"]) for e in events] == [
        ("PENDING", "CONFIRMED"),
        ("CONFIRMED", "ALLOCATED"),
    ]
    assert events[0]["number"] == order["number"]
    assert events[1]["order"] == {"status": "ALLOCATED", "total": {"amount": "8.00"}}


def test_a_subscription_without_a_token_is_refused(server):
    async def attempt() -> dict:
        async with websockets.connect(
            server.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"]
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
            return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))

    message = asyncio.run(attempt())
    assert message["type"] == "error" or message["payload"].get("errors")


@contextmanager
def oms_serve(database_url: str, broker_url: str, **extra_env: str) -> Iterator[str]:
    """A separate `oms serve` process sharing the database, broker and pub/sub."""
    port = free_port()
    env = {
        **os.environ,
        "OMS_DATABASE_URL": database_url,
        "OMS_BROKER_URL": broker_url,
        "OMS_REDIS_URL": REDIS_URL or "",
        "OMS_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    process = subprocess.Popen([sys.executable, "-m", "oms_graphql.cli", "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("oms serve did not become ready")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


@requires_redis
def test_a_change_committed_in_one_process_reaches_a_subscriber_of_another(database_url, admin, uid):
    assert REDIS_URL
    token = create_token(database_url, "ADMIN", "cross-process")
    with oms_serve(database_url, REDIS_URL) as first, oms_serve(database_url, REDIS_URL) as second:
        writer = GraphQLClient(first, token)
        sku = f"XP-{uid}"
        add_product(writer, sku)
        order = place_order(writer, [(sku, 1, "4.00")])
        events = asyncio.run(
            collect_events(
                second.replace("http", "ws") + "/graphql",
                token,
                {"f": {"orderId": order["id"]}},
                1,
                lambda: writer(CONFIRM, {"id": order["id"]}),
            )
        )
    assert events[0]["fromStatus"] == "PENDING" and events[0]["status"] == "CONFIRMED"
    assert events[0]["number"] == order["number"]


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
