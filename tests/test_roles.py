"""Roles against operation families: each role calls what its family allows, and is refused the
rest with extensions.code FORBIDDEN (UNAUTHENTICATED without a token), over HTTP and over the
websocket alike. Two customers never reach each other's orders, shipments, tracking or profile."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import websockets

from oms_graphql.domain.access import Role
from oms_graphql.schema.ids import to_global_id
from oms_graphql.schema.permissions import roles_of
from tests.support import (
    GraphQLClient,
    add_location,
    add_product,
    create_token,
    customer_id_of,
    eventually,
    place_order,
    receive,
    wait_for_status,
)

A, OP, V, INT, C = Role.ADMIN, Role.OPERATOR, Role.VIEWER, Role.INTEGRATION, Role.CUSTOMER
NOBODY = None  # no token

# family: (who may call it, its root fields, one document to try over HTTP or the websocket).
FAMILIES: dict[str, tuple[set[Role | None], set[str], str]] = {
    "tracking": (
        {A, OP, V, INT, C, NOBODY},
        {"Query.orderTracking"},
        '{ orderTracking(number: "NO-SUCH-ORDER", contact: "+86 13800000000") { number } }',
    ),
    "identity": ({A, OP, V, INT, C}, {"Query.me"}, "{ me { role } }"),
    "orders: read": (
        {A, OP, V, INT, C},
        {"Query.node", "Query.orders", "Query.order", "Query.orderByNumber", "Query.orderByExternalId"},
        "{ orders(first: 1) { totalCount } }",
    ),
    "customer profile: read": (
        {A, OP, V, C},
        {"Query.customer"},
        f'{{ customer(id: "{to_global_id("Customer", 987654321)}") {{ id }} }}',
    ),
    "customers: list": ({A, OP, V}, {"Query.customers"}, "{ customers(first: 1) { totalCount } }"),
    "reports: read": (
        {A, OP, V},
        {"Query.reports"},
        '{ reports { salesTrend(from: "2019-01-01T00:00:00Z", to: "2019-01-02T00:00:00Z") { orders } } }',
    ),
    "catalog and stock: read": (
        {A, OP, V, INT},
        {
            "Query.products",
            "Query.product",
            "Query.locations",
            "Query.location",
            "Query.stockLevels",
            "Query.availableToPromise",
        },
        "{ products(first: 1) { totalCount } }",
    ),
    "channels and carriers: read": (
        {A, OP, V, INT},
        {"Query.channels", "Query.channelKinds", "Query.channelListings", "Query.carriers", "Query.carrierKinds"},
        "{ channelKinds { kind } }",
    ),
    "operations: read": (
        {A, OP, V},
        {
            "Query.stockMovements",
            "Query.transfers",
            "Query.transfer",
            "Query.alerts",
            "Query.deliveryOptions",
            "Query.plugins",
        },
        "{ stockMovements(first: 1) { totalCount } }",
    ),
    "inbound messages: read": ({A, OP, INT}, {"Query.inboundMessages"}, "{ inboundMessages(first: 1) { totalCount } }"),
    "stock and catalog: change": (
        {A, OP},
        {
            "Mutation.productCreate",
            "Mutation.productUpdate",
            "Mutation.stockReceive",
            "Mutation.stockAdjust",
            "Mutation.stockCount",
            "Mutation.reorderPolicySet",
            "Mutation.reorderForecastRefresh",
            "Mutation.transferSuggest",
            "Mutation.transferCreate",
            "Mutation.transferShip",
            "Mutation.transferReceive",
        },
        f'mutation {{ productUpdate(input: {{id: "{to_global_id("Product", 987654321)}", name: "x"}}) '
        "{ userErrors { code } } }",
    ),
    "orders and shipments: change": (
        {A, OP},
        {
            "Mutation.orderCreate",
            "Mutation.orderConfirmPayment",
            "Mutation.orderHold",
            "Mutation.orderRelease",
            "Mutation.orderCancel",
            "Mutation.shipmentCreate",
            "Mutation.shipmentDispatch",
            "Mutation.shipmentMarkDelivered",
            "Mutation.shipmentCancel",
            "Mutation.fulfillmentOrderMove",
            "Mutation.fulfillmentOrderHold",
            "Mutation.fulfillmentOrderRelease",
        },
        f'mutation {{ orderCancel(input: {{id: "{to_global_id("Order", 987654321)}"}}) {{ userErrors {{ code }} }} }}',
    ),
    "configuration: change": (
        {A},
        {
            "Mutation.locationCreate",
            "Mutation.locationUpdate",
            "Mutation.channelCreate",
            "Mutation.channelUpdate",
            "Mutation.carrierCreate",
            "Mutation.carrierUpdate",
        },
        'mutation { channelUpdate(input: {channelCode: "no-such-channel"}) { userErrors { code } } }',
    ),
    "access: tokens and audit": (
        {A},
        {"Query.apiTokens", "Query.auditLog", "Mutation.apiTokenCreate", "Mutation.apiTokenRevoke"},
        "{ apiTokens(first: 1) { totalCount } }",
    ),
    "sync and webhooks": (
        {A, OP, INT},
        {
            "Mutation.channelListingSet",
            "Mutation.channelSyncOrders",
            "Mutation.channelReconcile",
            "Mutation.channelPushStock",
            "Mutation.inboundMessageReplay",
        },
        'mutation { channelSyncOrders(input: {channelCode: "no-such-channel"}) { userErrors { code } } }',
    ),
    "customers: change": (
        {A, OP},
        {"Mutation.customerMerge"},
        f'mutation {{ customerMerge(input: {{id: "{to_global_id("Customer", 987654321)}", '
        f'duplicateId: "{to_global_id("Customer", 987654322)}"}}) {{ userErrors {{ code }} }} }}',
    ),
    "customers: own profile": (
        {A, OP, C},
        {"Mutation.customerUpdate"},
        f'mutation {{ customerUpdate(input: {{id: "{to_global_id("Customer", 987654321)}", name: "x"}}) '
        "{ userErrors { code } } }",
    ),
    "customers: privacy": (
        {A},
        {"Mutation.customerExport", "Mutation.customerErase"},
        f'mutation {{ customerExport(input: {{id: "{to_global_id("Customer", 987654321)}"}}) '
        "{ userErrors { code } } }",
    ),
    "returns: read": ({A, OP, V, C}, {"Query.returns"}, "{ returns(first: 1) { totalCount } }"),
    # A viewer changes nothing, not even a return on a customer's behalf.
    "returns: request": (
        {A, OP, C},
        {"Mutation.returnRequest"},
        f'mutation {{ returnRequest(input: {{orderId: "{to_global_id("Order", 987654321)}", lines: []}}) '
        "{ userErrors { code } } }",
    ),
    "returns: process": (
        {A, OP},
        {
            "Mutation.returnApprove",
            "Mutation.returnReject",
            "Mutation.returnReceive",
            "Mutation.returnRefund",
            "Mutation.returnClose",
            "Mutation.exchangeCreate",
        },
        f'mutation {{ returnApprove(input: {{id: "{to_global_id("Return", 987654321)}"}}) '
        "{ userErrors { code } } }",
    ),
    "subscription: order events": (
        {A, OP, V, INT, C},
        {"Subscription.orderEvents"},
        "subscription { orderEvents { number } }",
    ),
    "subscription: shipment events": (
        {A, OP, V, INT, C},
        {"Subscription.shipmentEvents"},
        "subscription { shipmentEvents { status } }",
    ),
    "subscription: stock events": (
        {A, OP, V, INT},
        {"Subscription.stockEvents"},
        "subscription { stockEvents { sku } }",
    ),
    "subscription: alerts": ({A, OP, V}, {"Subscription.alerts"}, "subscription { alerts { kind } }"),
}
ROLES: list[Role | None] = [A, OP, V, INT, C, NOBODY]


def test_every_root_field_is_in_one_family_and_declares_exactly_its_roles():
    from oms_graphql.resolvers import schema

    declared: dict[str, set[Role | None]] = {}
    for root in (schema.query, schema.mutation, schema.subscription):
        definition = root.__strawberry_definition__  # type: ignore[union-attr]
        for field in definition.fields:
            name = f"{definition.name}.{schema.config.name_converter.get_graphql_name(field)}"
            declared[name] = set(roles_of(field.permission_classes))
    in_families = [name for _roles, fields, _doc in FAMILIES.values() for name in fields]
    assert sorted(in_families) == sorted(declared), "a root field is missing from FAMILIES, or listed twice"
    wrong = {
        name: (sorted(map(str, declared[name])), family)
        for family, (roles, fields, _doc) in FAMILIES.items()
        for name in fields
        if declared[name] != roles
    }
    assert wrong == {}


@pytest.fixture(scope="module")
def callers(admin, server, database_url) -> dict[Role | None, GraphQLClient]:
    """A client per role (the customer one of a customer with an order), and one without a token."""
    sku = f"ROLES-{uuid.uuid4().hex[:8].upper()}"
    add_product(admin, sku)
    order = place_order(admin, [(sku, 1, "1.00")], customer={"name": "Role Play", "phone": f"+86 136{sku[-8:]}"})
    customer_id = customer_id_of(database_url, order["id"])
    clients: dict[Role | None, GraphQLClient] = {
        role: GraphQLClient(
            server,
            create_token(database_url, role.value, f"roles {role.value.lower()}", customer_id if role == C else None),
        )
        for role in (A, OP, V, INT, C)
    }
    clients[NOBODY] = GraphQLClient(server, None)
    return clients


def _codes(errors: list[dict[str, Any]] | None) -> list[str | None]:
    return [(error.get("extensions") or {}).get("code") for error in errors or []]


def _refusal(role: Role | None) -> str:
    return "UNAUTHENTICATED" if role is None else "FORBIDDEN"


HTTP_FAMILIES = [name for name in FAMILIES if not name.startswith("subscription")]
WS_FAMILIES = [name for name in FAMILIES if name.startswith("subscription")]


@pytest.mark.parametrize("family", HTTP_FAMILIES)
def test_each_role_against_each_family_over_http(family, callers):
    roles, _fields, document = FAMILIES[family]
    outcome = {}
    for role in ROLES:
        body = callers[role].raw(document)
        codes = _codes(body.get("errors"))
        outcome[role] = codes
        if role in roles:
            assert not {"FORBIDDEN", "UNAUTHENTICATED"} & set(codes), (family, role, body)
            assert body.get("data") is not None, (family, role, body)
        else:
            assert codes == [_refusal(role)], (family, role, body)
            assert "Not allowed" in body["errors"][0]["message"]


async def _subscribe(ws_url: str, token: str | None, document: str) -> dict[str, Any] | None:
    """The first message a subscription gets within a moment, or None while it stays live."""
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": document}}))
        try:
            return json.loads(await asyncio.wait_for(ws.recv(), timeout=0.6))
        except TimeoutError:
            return None


def _errors_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    payload = message.get("payload")
    return payload if isinstance(payload, list) else (payload or {}).get("errors") or []


@pytest.mark.parametrize("family", WS_FAMILIES)
def test_each_role_against_each_subscription_over_the_websocket(family, server, callers):
    roles, _fields, document = FAMILIES[family]
    ws_url = server.replace("http", "ws") + "/graphql"

    async def every_role() -> dict[Role | None, dict[str, Any] | None]:
        return {role: await _subscribe(ws_url, callers[role].token, document) for role in ROLES}

    for role, message in asyncio.run(every_role()).items():
        if role in roles:
            # Live: nothing refused it. Other tests share the server, so an event may already
            # have arrived (an alert of theirs): data, never an error.
            live = message is None or (message["type"] == "next" and not _errors_of(message))
            assert live, (family, role, message)
        else:
            assert message is not None and _codes(_errors_of(message)) == [_refusal(role)], (family, role, message)


# --- two customers ---------------------------------------------------------------

CARRIER_CREATE = """mutation($input: CarrierCreateInput!) { carrierCreate(input: $input) {
  carrier { code } userErrors { field message code } } }"""
FULFILLMENT = "query($id: ID!) { order(id: $id) { fulfillmentOrders { id } } }"
SHIPMENT_CREATE = """mutation($input: ShipmentCreateInput!) { shipmentCreate(input: $input) {
  shipment { id trackingNumber } userErrors { field message code } } }"""
SHIPMENT_DISPATCH = "mutation($id: ID!) { shipmentDispatch(input: {id: $id}) { userErrors { code message } } }"
SHIPMENT_DELIVERED = "mutation($id: ID!) { shipmentMarkDelivered(input: {id: $id}) { userErrors { code } } }"


@pytest.fixture
def two_customers(admin, server, database_url, uid) -> dict[str, dict[str, Any]]:
    """Customers "a" and "b", each with an allocated order and a PENDING shipment of it."""
    sku, where = f"TWO-{uid}", f"TWO-{uid}"
    add_product(admin, sku)
    add_location(admin, where, priority=60, kind="STORE", canPickup=True, autoDispatch=False)
    receive(admin, sku, where, 4)
    carrier = f"pickup-two-{uid}".lower()
    created = admin.mutate(
        "carrierCreate",
        CARRIER_CREATE,
        {"input": {"code": carrier, "name": "Pickup", "kind": "pickup", "settings": {}}},
    )
    assert created["userErrors"] == [], created
    people = {}
    for who, digit in (("a", "1"), ("b", "2")):
        phone = f"+86 137{int(uid, 16) % 10**7:07d}{digit}"
        order = place_order(admin, [(sku, 1, "9.00")], paid=True, customer={"name": f"Buyer {who}", "phone": phone})
        wait_for_status(admin, order["id"], "ALLOCATED")
        [fulfillment] = admin(FULFILLMENT, {"id": order["id"]})["order"]["fulfillmentOrders"]
        made = admin.mutate(
            "shipmentCreate",
            SHIPMENT_CREATE,
            {"input": {"fulfillmentOrderId": fulfillment["id"], "carrierCode": carrier}},
        )
        assert made["userErrors"] == [], made
        customer_id = customer_id_of(database_url, order["id"])
        people[who] = {
            "order": order,
            "phone": phone,
            "shipment": made["shipment"]["id"],
            "customer": to_global_id("Customer", customer_id),
            "fulfillment": fulfillment["id"],
            "client": GraphQLClient(server, create_token(database_url, "CUSTOMER", f"buyer {who}", customer_id)),
        }
    return people


def test_two_customers_never_reach_each_others_orders_shipments_tracking_or_profile(two_customers):
    a, b = two_customers["a"], two_customers["b"]
    me = a["client"]
    theirs = b["order"]

    assert me("query($id: ID!) { order(id: $id) { number } }", {"id": a["order"]["id"]})["order"]
    for query, variables in [
        ("query($id: ID!) { order(id: $id) { number } }", {"id": theirs["id"]}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": theirs["id"]}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": b["shipment"]}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": b["fulfillment"]}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": b["customer"]}),
        ("query($id: ID!) { customer(id: $id) { id } }", {"id": b["customer"]}),
        ("query($n: String!) { orderByNumber(number: $n) { number } }", {"n": theirs["number"]}),
        (
            "query($n: String!, $c: String!) { orderTracking(number: $n, contact: $c) { number } }",
            {"n": theirs["number"], "c": a["phone"]},
        ),
    ]:
        data = me(query, variables)
        assert list(data.values()) == [None], (query, data)
    # Their order's shipments are not in any list of mine.
    listed = me("{ orders(first: 100) { edges { node { number shipments { id } } } } }")["orders"]["edges"]
    assert [edge["node"]["number"] for edge in listed] == [a["order"]["number"]]
    assert [s["id"] for edge in listed for s in edge["node"]["shipments"]] == [a["shipment"]]
    # Filtering by the other's customer id finds nothing either.
    filtered = me("query($c: ID!) { orders(first: 10, filter: {customerId: $c}) { totalCount } }", {"c": b["customer"]})
    assert filtered["orders"]["totalCount"] == 0


def test_a_customer_subscribed_hears_only_its_own_orders_and_shipments(two_customers, admin, server):
    a, b = two_customers["a"], two_customers["b"]
    ws_url = server.replace("http", "ws") + "/graphql"
    orders_doc = "subscription { orderEvents { number status } }"
    shipments_doc = "subscription { shipmentEvents { shipmentId orderId status } }"

    async def listen() -> tuple[list[dict], list[dict]]:
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"token": a["client"].token}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            for key, document in (("o", orders_doc), ("s", shipments_doc)):
                await ws.send(json.dumps({"id": key, "type": "subscribe", "payload": {"query": document}}))
            await asyncio.sleep(0.3)

            def delivered(shipment_id: str) -> bool:
                payload = admin.mutate("shipmentMarkDelivered", SHIPMENT_DELIVERED, {"id": shipment_id})
                return payload["userErrors"] == []

            def act() -> None:  # theirs first, then mine: mine arriving means theirs had its chance
                for person in (b, a):
                    dispatched = admin.mutate("shipmentDispatch", SHIPMENT_DISPATCH, {"id": person["shipment"]})
                    assert dispatched["userErrors"] == [], dispatched
                    # The dispatch may finish in a job: mark it delivered once it has.
                    eventually(lambda shipment_id=person["shipment"]: delivered(shipment_id))

            await asyncio.to_thread(act)
            heard: dict[str, list[dict]] = {"o": [], "s": []}
            while not (
                any(e["status"] == "DELIVERED" for e in heard["s"])
                and any(e["status"] == "DELIVERED" for e in heard["o"])
            ):
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                except TimeoutError:
                    raise AssertionError(f"heard only {heard}") from None
                assert message["type"] == "next" and "errors" not in message["payload"], message
                data = message["payload"]["data"]
                heard[message["id"]].append(data["orderEvents"] if message["id"] == "o" else data["shipmentEvents"])
            return heard["o"], heard["s"]

    order_events, shipment_events = asyncio.run(listen())
    assert {e["number"] for e in order_events} == {a["order"]["number"]}
    assert {e["shipmentId"] for e in shipment_events} == {a["shipment"]}
