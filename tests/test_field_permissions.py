"""Field-level permissions: every field has a declared rule, and each role reads what it may.

A customer reading its own order sees its lines, totals, shipments and tracking and the
channel's name and code, never the merchant's configuration (channel settings, secrets set,
sync errors, location internals) nor staff names; VIEWER and INTEGRATION read personal data
masked; staff who run orders read everything as stored.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from graphql import (
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)

from oms_graphql.domain.access import Role
from oms_graphql.domain.masking import mask_email, mask_name, mask_phone, public_actor
from oms_graphql.schema.field_rules import FIELD_RULES, MERCHANT_TYPES, STRUCTURAL_SUFFIXES
from oms_graphql.schema.ids import to_global_id
from oms_graphql.schema.permissions import declared_rule, roles_of, rule_of, rule_table
from tests.support import (
    GraphQLClient,
    add_location,
    add_product,
    create_token,
    customer_id_of,
    place_order,
    receive,
    wait_for_status,
)

ROLES: list[Role | None] = [*Role, None]  # None: no token


def _graphql_name(schema: Any, field: Any) -> str:
    return schema.config.name_converter.get_graphql_name(field)


def root_fields_per_role(schema: Any) -> dict[Role | None, list[tuple[str, str]]]:
    """(root type, field) pairs each role may call, from the roots' declared permissions."""
    allowed: dict[Role | None, list[tuple[str, str]]] = {role: [] for role in ROLES}
    for root in (schema.query, schema.mutation, schema.subscription):
        definition = root.__strawberry_definition__
        for field in definition.fields:
            for role in roles_of(field.permission_classes):
                allowed[role].append((definition.name, _graphql_name(schema, field)))
    return allowed


def reachable_types(graphql_schema: GraphQLSchema, roots: list[tuple[str, str]]) -> set[str]:
    """Every object type reachable from these root fields (interfaces and unions: all their types)."""
    seen: set[str] = set()
    todo = []
    for root_name, field_name in roots:
        root = graphql_schema.type_map[root_name]
        assert isinstance(root, GraphQLObjectType)
        todo.append(get_named_type(root.fields[field_name].type))
    while todo:
        named = todo.pop()
        if isinstance(named, (GraphQLInterfaceType, GraphQLUnionType)):
            todo.extend(graphql_schema.get_possible_types(named))
            continue
        if not isinstance(named, GraphQLObjectType) or named.name in seen:
            continue
        seen.add(named.name)
        todo.extend(get_named_type(field.type) for field in named.fields.values())
    return seen


@pytest.fixture(scope="module")
def built():
    from oms_graphql.resolvers import schema

    return schema, schema._schema


def test_every_field_a_role_can_reach_has_a_declared_rule_and_its_guard(built):
    schema, graphql_schema = built
    table = rule_table(FIELD_RULES)
    undeclared, unguarded, refused_non_null = set(), set(), set()
    for role, roots in root_fields_per_role(schema).items():
        for type_name in reachable_types(graphql_schema, roots):
            if type_name.endswith(STRUCTURAL_SUFFIXES):
                continue
            graphql_type = graphql_schema.type_map[type_name]
            assert isinstance(graphql_type, GraphQLObjectType)
            for field_name, field in graphql_type.fields.items():
                rule = declared_rule(table, MERCHANT_TYPES, type_name, field_name)
                if rule is None:
                    undeclared.add(f"{type_name}.{field_name} (reached by {role or 'no token'})")
                    continue
                if rule.restricts and rule_of(graphql_schema, type_name, field_name) != rule:
                    unguarded.add(f"{type_name}.{field_name}")
                # A refusal blanks a non-null field's parent: outside merchant-only types, mask instead.
                if role in rule.refused and isinstance(field.type, GraphQLNonNull) and type_name not in MERCHANT_TYPES:
                    refused_non_null.add(f"{type_name}.{field_name}")
    assert sorted(undeclared) == []
    assert sorted(unguarded) == []
    assert sorted(refused_non_null) == []


def test_the_walk_reaches_what_each_role_is_meant_to(built):
    schema, graphql_schema = built
    per_role = {role: reachable_types(graphql_schema, roots) for role, roots in root_fields_per_role(schema).items()}
    # Subscriptions are walked too: their event types are reachable.
    assert {"Order", "Channel", "Location", "Shipment", "Customer", "Address", "Hold", "OrderEvent"} <= per_role[
        Role.CUSTOMER
    ]
    assert {"OrderStatusChanged", "ShipmentStatusChanged"} <= per_role[Role.CUSTOMER]
    assert per_role[None] == {"OrderTracking", "TrackingShipment", "TrackingEvent"}
    assert "StockEvent" in per_role[Role.INTEGRATION] and "Alert" not in per_role[Role.INTEGRATION] - MERCHANT_TYPES


def test_a_rule_table_declaring_a_field_twice_is_refused():
    from oms_graphql.schema.permissions import EVERYONE, MERCHANT

    with pytest.raises(ValueError, match=r"Order\.note"):
        rule_table({"Order": {EVERYONE: "number note", MERCHANT: "note"}})


def test_masks_keep_enough_to_recognise_and_nothing_to_reach():
    assert mask_phone("+86 13812345678") == "+86 138****5678"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+8613812345678") == "+86138****5678"
    assert mask_email("Wang.Fang@example.com") == "W***@example.com"
    assert mask_name("王芳") == "王*" and mask_name("Wang Fang") == "W********"
    assert [public_actor(a) for a in ("admin:alice", "operator:ops", "customer:me", "dispatch", "channel:tb")] == [
        "staff",
        "staff",
        "customer",
        "system",
        "system",
    ]


# --- over HTTP ----------------------------------------------------------------

HOLD = """mutation($id: ID!) { orderHold(input: {id: $id, reason: MANUAL, note: "buyer sounds like a reseller"}) {
  userErrors { code } } }"""
ORDER = """query($id: ID!) { order(id: $id) { number status total { amount currency }
  lines { sku quantity unitPrice { amount } }
  customer { name phone }
  shippingAddress { city line1 phone }
  channel { code name settings secretSettingsSet lastError stockBuffer active }
  events { toStatus actor message }
  holds { reason raisedBy note }
  allocations { quantity reason location { name canPickup address { city line1 } priority autoDispatch } }
  fulfillmentOrders { status location { name } }
} }"""
RELEASE = "mutation($id: ID!) { orderRelease(input: {id: $id}) { userErrors { code } } }"
REFUSED_TO_CUSTOMERS = {
    ("channel", "settings"),
    ("channel", "secretSettingsSet"),
    ("channel", "lastError"),
    ("channel", "stockBuffer"),
    ("channel", "active"),
    ("events", "message"),
    ("holds", "note"),
    ("allocations", "reason"),
    ("location", "priority"),
    ("location", "autoDispatch"),
}


@pytest.fixture(scope="module")
def held_order(admin, server, database_url) -> dict[str, Any]:
    """A paid order of a customer of its own, allocated, then held by a member of staff."""
    import uuid

    uid = uuid.uuid4().hex[:8].upper()
    sku, where = f"FP-{uid}", f"FP-{uid}"
    add_product(admin, sku)
    add_location(admin, where, priority=50)
    receive(admin, sku, where, 3)
    phone = f"+86 139{int(uid, 16) % 10**8:08d}"
    order = place_order(
        admin,
        [(sku, 1, "12.00")],
        paid=True,
        customer={"name": "Li Lei", "phone": phone, "email": f"li.{uid.lower()}@example.com"},
        shippingAddress={
            "country": "CN",
            "city": "Shanghai",
            "line1": "7 Nanjing Rd",
            "name": "Li Lei",
            "phone": phone,
        },
    )
    wait_for_status(admin, order["id"], "ALLOCATED")
    assert admin.mutate("orderHold", HOLD, {"id": order["id"]})["userErrors"] == []
    customer_id = customer_id_of(database_url, order["id"])
    shopper = GraphQLClient(server, create_token(database_url, "CUSTOMER", f"shopper {uid}", customer_id=customer_id))
    return {"order": order, "phone": phone, "where": where, "customer": shopper, "customer_id": customer_id}


def _refusals(body: dict[str, Any]) -> set[tuple[str, str]]:
    refused = set()
    for error in body.get("errors") or []:
        assert error["extensions"]["code"] == "FORBIDDEN", error
        path = [step for step in error["path"] if isinstance(step, str)]
        refused.add((path[-2], path[-1]))
    return refused


def test_a_customer_reads_its_order_but_not_the_merchants_configuration_or_staff_names(held_order, admin):
    body = held_order["customer"].raw(ORDER, {"id": held_order["order"]["id"]})
    order = body["data"]["order"]

    assert order["number"] == held_order["order"]["number"] and order["status"] == "ON_HOLD"
    assert order["total"] == {"amount": "12.00", "currency": "CNY"} and order["lines"][0]["quantity"] == 1
    assert order["channel"]["code"] == "manual" and order["channel"]["name"]
    assert order["shippingAddress"] == {"city": "Shanghai", "line1": "7 Nanjing Rd", "phone": held_order["phone"]}
    assert order["customer"] == {"name": "Li Lei", "phone": held_order["phone"].replace(" ", "")}  # its own
    assert order["allocations"][0]["location"]["name"] == f"Location {held_order['where']}"
    assert order["fulfillmentOrders"][0]["location"]["name"] == f"Location {held_order['where']}"
    for field in ("settings", "secretSettingsSet", "lastError", "stockBuffer", "active"):
        assert order["channel"][field] is None
    assert order["holds"] == [{"reason": "UNDER_REVIEW", "raisedBy": "staff", "note": None}]
    assert {event["actor"] for event in order["events"]} <= {"staff", "system"}
    assert "staff" in {event["actor"] for event in order["events"]}
    assert _refusals(body) == REFUSED_TO_CUSTOMERS
    text = str(body)
    assert "test admin" not in text and "reseller" not in text


def test_staff_who_run_orders_read_the_same_fields_as_stored(held_order, admin):
    body = admin.raw(ORDER, {"id": held_order["order"]["id"]})
    assert "errors" not in body
    order = body["data"]["order"]
    assert order["holds"] == [
        {"reason": "MANUAL", "raisedBy": "admin:test admin", "note": "buyer sounds like a reseller"}
    ]
    assert order["channel"]["settings"] == {} and order["channel"]["active"] is True
    assert order["allocations"][0]["location"]["priority"] == 50
    assert order["customer"]["phone"] == held_order["phone"].replace(" ", "")


@pytest.mark.parametrize("role", ["VIEWER", "INTEGRATION"])
def test_viewers_and_integrations_read_personal_data_masked(role, held_order, server, database_url):
    reader = GraphQLClient(server, create_token(database_url, role, f"masked {role.lower()}"))
    body = reader.raw(ORDER, {"id": held_order["order"]["id"]})
    assert "errors" not in body, body["errors"]
    order = body["data"]["order"]
    phone = held_order["phone"]
    masked_phone = f"{phone[:7]}****{phone[-4:]}"
    stored_masked = masked_phone.replace(" ", "")  # the profile keeps the phone in E.164
    assert order["customer"] == {"name": "L*****", "phone": stored_masked}
    assert order["shippingAddress"] == {"city": "Shanghai", "line1": "****", "phone": masked_phone}
    # A location's address is the merchant's, not a person's: not masked.
    assert order["allocations"][0]["location"]["address"]["line1"] == "1 Test Road"
    assert order["channel"]["settings"] == {}  # the merchant's own configuration (secrets are never returned)
    staff_name = {"VIEWER": "admin:test admin", "INTEGRATION": "staff"}[role]
    assert order["holds"][0]["raisedBy"] == staff_name

    customer_id = to_global_id("Customer", held_order["customer_id"])
    profile = reader.raw(
        "query($id: ID!) { node(id: $id) { ... on Customer { name phone email } } }", {"id": customer_id}
    )
    assert profile["data"]["node"]["phone"] == stored_masked
    assert profile["data"]["node"]["email"].startswith("l***@example.com") and "errors" not in profile


def test_a_customers_subscription_gets_the_same_field_rules(held_order, admin, server):
    """Runs last: it releases the module's order."""
    document = """subscription($f: OrderEventsFilter) { orderEvents(filter: $f) {
      number status message order { status channel { code settings } holds { reason raisedBy } } } }"""
    ws_url = server.replace("http", "ws") + "/graphql"

    async def listen() -> dict[str, Any]:
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"token": held_order["customer"].token}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            variables = {"f": {"orderId": held_order["order"]["id"]}}
            await ws.send(
                json.dumps({"id": "1", "type": "subscribe", "payload": {"query": document, "variables": variables}})
            )
            await asyncio.sleep(0.3)
            released = await asyncio.to_thread(admin.mutate, "orderRelease", RELEASE, {"id": held_order["order"]["id"]})
            assert released["userErrors"] == [], released
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
            assert message["type"] == "next", message
            return message["payload"]

    payload = asyncio.run(listen())
    event = payload["data"]["orderEvents"]
    assert event["number"] == held_order["order"]["number"] and event["message"] is None
    assert event["order"]["channel"] == {"code": "manual", "settings": None}
    assert event["order"]["holds"][0]["raisedBy"] == "staff"
    assert _refusals(payload) == {("orderEvents", "message"), ("channel", "settings")}
