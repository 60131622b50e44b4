"""orderEvents and alerts over websocket (graphql-transport-ws): authentication in connection_init,
in-process delivery, and delivery across processes via Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from tests.conftest import REDIS_URL, requires_redis
from tests.fakes.server import free_port
from tests.support import (
    GraphQLClient,
    add_location,
    add_product,
    create_token,
    customer_id_of,
    place_order,
    receive,
    wait_for_status,
    wait_until_ready,
)

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


# With a real client library (gql, speaking graphql-transport-ws) and the token where
# front-end code puts it: Apollo and urql examples send connectionParams
# {Authorization: "Bearer ..."}, some send {headers: {Authorization}} or {authToken}.

ORDER_EVENTS = "subscription($f: OrderEventsFilter) { orderEvents(filter: $f) { number fromStatus status } }"
ALERTS = "subscription { alerts { kind sku locationCode } }"
POLICY = "mutation($input: ReorderPolicySetInput!) { reorderPolicySet(input: $input) { userErrors { code } } }"


def gql_transport(server: str, **options: Any) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=server.replace("http", "ws", 1) + "/graphql",
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        **options,
    )


async def gql_events(transport: WebsocketsTransport, query: str, variables: dict, act, until) -> list[dict]:
    """Subscribe through gql, run ``act`` once the subscription is live, return events up to ``until(event)``."""
    async with Client(transport=transport) as session:
        stream = session.subscribe(GraphQLRequest(query, variable_values=variables))
        pending = asyncio.ensure_future(anext(stream))
        try:
            await asyncio.sleep(0.3)  # the subscription registers with the hub
            await asyncio.to_thread(act)
            events = []
            while True:
                event = await asyncio.wait_for(pending, timeout=20)
                events.append(event)
                if until(event):
                    return events
                pending = asyncio.ensure_future(anext(stream))
        finally:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
            await stream.aclose()


def an_order_to_confirm(admin: GraphQLClient, uid: str, **customer: Any) -> dict:
    sku, code = f"GQL-{uid}", f"GQL-{uid}"
    add_product(admin, sku)
    add_location(admin, code)
    receive(admin, sku, code, 3)
    return place_order(admin, [(sku, 1, "6.00")], **customer)


def confirmed_event_of(order: dict):
    # Not simply the first event: the order's creation may be relayed after the subscription starts.
    return lambda event: (
        event["orderEvents"]["number"] == order["number"] and event["orderEvents"]["status"] == "CONFIRMED"
    )


TOKEN_FORMS = {
    "Authorization": lambda token: {"init_payload": {"Authorization": f"Bearer {token}"}},
    "authorization": lambda token: {"init_payload": {"authorization": f"Bearer {token}"}},
    "AUTHORIZATION": lambda token: {"init_payload": {"AUTHORIZATION": f"Bearer {token}"}},
    "Authorization without Bearer": lambda token: {"init_payload": {"Authorization": token}},
    "headers.Authorization": lambda token: {"init_payload": {"headers": {"Authorization": f"Bearer {token}"}}},
    "headers.authorization": lambda token: {"init_payload": {"headers": {"authorization": f"Bearer {token}"}}},
    "authToken": lambda token: {"init_payload": {"authToken": token}},
    "authToken with Bearer": lambda token: {"init_payload": {"authToken": f"Bearer {token}"}},
    "token": lambda token: {"init_payload": {"token": token}},
    "upgrade request header": lambda token: {"headers": {"Authorization": f"Bearer {token}"}},
}


@pytest.mark.parametrize("form", TOKEN_FORMS)
def test_a_client_library_subscribes_with_the_token_where_front_ends_put_it(form, admin, viewer, server, uid):
    order = an_order_to_confirm(admin, uid)

    events = asyncio.run(
        gql_events(
            gql_transport(server, **TOKEN_FORMS[form](viewer.token)),
            ORDER_EVENTS,
            {"f": {"orderId": order["id"]}},
            lambda: admin(CONFIRM, {"id": order["id"]}),
            confirmed_event_of(order),
        )
    )

    assert events[-1]["orderEvents"] == {"number": order["number"], "fromStatus": "PENDING", "status": "CONFIRMED"}


def test_alerts_reach_a_client_that_sends_a_capitalised_authorization(admin, viewer, server, uid):
    sku, code = f"GQLA-{uid}", f"GQLA-{uid}"
    add_product(admin, sku)
    add_location(admin, code)
    receive(admin, sku, code, 3)

    events = asyncio.run(
        gql_events(
            gql_transport(server, init_payload={"Authorization": f"Bearer {viewer.token}"}),
            ALERTS,
            {},
            lambda: admin(POLICY, {"input": {"sku": sku, "locationCode": code, "reorderPoint": 8}}),
            lambda event: event["alerts"]["sku"] == sku,
        )
    )

    assert events[-1]["alerts"] == {"kind": "LOW_STOCK", "sku": sku, "locationCode": code}


@pytest.mark.parametrize(
    "init_payload",
    [
        {"Authorization": "Bearer oms_not-a-real-token"},
        {"authorization": "oms_not-a-real-token"},
        {"headers": {"Authorization": "Bearer oms_not-a-real-token"}},
        {"authToken": "oms_not-a-real-token"},
        {"Authorization": "Bearer undefined"},
    ],
)
def test_a_token_that_is_sent_but_invalid_closes_the_socket_with_4403(init_payload, server):
    async def attempt() -> None:
        async with Client(transport=gql_transport(server, init_payload=init_payload)):
            pass

    with pytest.raises(TransportConnectionFailed) as refused:
        asyncio.run(attempt())

    closed = refused.value.__cause__
    assert isinstance(closed, websockets.ConnectionClosed) and closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4403, "Forbidden")


@pytest.mark.parametrize("init_payload", [{}, {"authorization": ""}, {"Authorization": "Bearer "}])
def test_without_a_token_a_client_library_is_anonymous_and_refused_by_role(init_payload, server):
    async def attempt() -> None:
        async with Client(transport=gql_transport(server, init_payload=init_payload)) as session:
            async for _ in session.subscribe(GraphQLRequest(ORDER_EVENTS)):
                pass

    with pytest.raises(TransportQueryError, match="Not allowed"):
        asyncio.run(attempt())


def test_a_customer_subscribed_with_a_client_library_hears_only_its_own_orders(admin, server, database_url, uid):
    theirs = an_order_to_confirm(admin, uid, customer={"name": "Them", "phone": f"+86 1{uid[:6]}4"})
    sku = f"GQL-{uid}"
    mine = place_order(admin, [(sku, 1, "6.00")], customer={"name": "Me", "phone": f"+86 1{uid[:6]}3"})
    token = create_token(database_url, "CUSTOMER", "gql shopper", customer_id=customer_id_of(database_url, mine["id"]))

    def confirm_theirs_then_mine() -> None:
        admin(CONFIRM, {"id": theirs["id"]})
        wait_for_status(admin, theirs["id"], "ALLOCATED")
        admin(CONFIRM, {"id": mine["id"]})

    events = asyncio.run(
        gql_events(
            gql_transport(server, init_payload={"Authorization": f"Bearer {token}"}),
            ORDER_EVENTS,
            {},
            confirm_theirs_then_mine,
            lambda event: event["orderEvents"]["status"] == "ALLOCATED",
        )
    )

    assert {e["orderEvents"]["number"] for e in events} == {mine["number"]}
    assert [e["orderEvents"]["status"] for e in events][-2:] == ["CONFIRMED", "ALLOCATED"]


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
        wait_until_ready(process, base)
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
