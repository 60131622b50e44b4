"""Fulfillment orders through GraphQL: one per location an order is allocated to; moved, held, released."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from oms_graphql.domain.errors import DomainError
from tests.support import add_location, add_product, place_order, receive, wait_for_status
from tests.test_ingestion import dispatch_order

FULFILLMENT = """query($id: ID!) { order(id: $id) { number status holds { reason }
  allocations { sku quantity status location { code } }
  fulfillmentOrders { id status location { code } lines { lineNo sku quantity shippedQuantity }
                      holds { reason note releasedAt } shipments { trackingNumber } order { number } } } }"""
MOVE = """mutation($id: ID!, $to: String!) { fulfillmentOrderMove(input: {id: $id, locationCode: $to}) {
  fulfillmentOrder { id status location { code } lines { sku quantity } } userErrors { field message code } } }"""
HOLD = """mutation($id: ID!) { fulfillmentOrderHold(input: {id: $id, reason: RISK, note: "check the buyer"}) {
  fulfillmentOrder { status holds { reason note } } userErrors { field message code } } }"""
RELEASE = """mutation($id: ID!) { fulfillmentOrderRelease(input: {id: $id}) {
  fulfillmentOrder { status } userErrors { field message code } } }"""
LEVEL = """query($sku: String!, $code: String!) { stockLevels(filter: {sku: $sku, locationCode: $code}) {
  edges { node { onHand reserved available } } } }"""


def level(client, sku: str, code: str) -> dict:
    [edge] = client(LEVEL, {"sku": sku, "code": code})["stockLevels"]["edges"]
    return edge["node"]


def allocated_order(admin, uid: str, stock: dict[str, dict[str, int]], lines: list[tuple[str, int]]) -> dict:
    """Locations (priority in the order given) with stock of each SKU, and an allocated order."""
    for priority, (code, skus) in enumerate(stock.items()):
        add_location(admin, code, priority=priority)
        for sku, units in skus.items():
            receive(admin, sku, code, units)
    order = place_order(admin, [(sku, units, "5.00") for sku, units in lines], paid=True)
    wait_for_status(admin, order["id"], "ALLOCATED")
    return admin(FULFILLMENT, {"id": order["id"]})["order"] | {"id": order["id"]}


def test_an_order_has_one_fulfillment_order_per_location_and_one_moves_elsewhere(admin, uid):
    a, b, sku = f"FO-A-{uid}", f"FO-B-{uid}", f"FO-{uid}"
    add_product(admin, sku)
    order = allocated_order(admin, uid, {a: {sku: 5}, b: {sku: 5}}, [(sku, 3)])
    [fulfillment] = order["fulfillmentOrders"]
    assert fulfillment["status"] == "OPEN" and fulfillment["location"] == {"code": a}
    assert fulfillment["lines"] == [{"lineNo": 1, "sku": sku, "quantity": 3, "shippedQuantity": 0}]
    assert fulfillment["order"] == {"number": order["number"]}

    moved = admin.mutate("fulfillmentOrderMove", MOVE, {"id": fulfillment["id"], "to": b})

    assert moved["userErrors"] == []
    assert moved["fulfillmentOrder"]["location"] == {"code": b}
    assert level(admin, sku, a) == {"onHand": 5, "reserved": 0, "available": 5}
    assert level(admin, sku, b) == {"onHand": 5, "reserved": 3, "available": 2}
    after = admin(FULFILLMENT, {"id": order["id"]})["order"]
    assert after["status"] == "ALLOCATED"
    assert [(x["location"]["code"], x["quantity"]) for x in after["allocations"]] == [(b, 3)]


def test_a_move_to_a_location_without_the_stock_changes_nothing(admin, uid):
    a, b, sku = f"FO-SA-{uid}", f"FO-SB-{uid}", f"FO-S-{uid}"
    add_product(admin, sku)
    order = allocated_order(admin, uid, {a: {sku: 5}, b: {sku: 2}}, [(sku, 3)])
    [fulfillment] = order["fulfillmentOrders"]

    refused = admin.mutate("fulfillmentOrderMove", MOVE, {"id": fulfillment["id"], "to": b})
    same = admin.mutate("fulfillmentOrderMove", MOVE, {"id": fulfillment["id"], "to": a})
    nowhere = admin.mutate("fulfillmentOrderMove", MOVE, {"id": fulfillment["id"], "to": "NO-SUCH-PLACE"})

    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["input", "locationCode"], "INSUFFICIENT_STOCK")
    ]
    assert [e["code"] for e in same["userErrors"]] == ["SAME_LOCATION"]
    assert [e["field"] for e in nowhere["userErrors"]] == [["input", "locationCode"]]
    assert level(admin, sku, a)["reserved"] == 3 and level(admin, sku, b)["reserved"] == 0


def test_moving_onto_a_location_the_order_already_ships_from_merges_them(admin, uid):
    a, b, x, y = f"FO-MA-{uid}", f"FO-MB-{uid}", f"FO-X-{uid}", f"FO-Y-{uid}"
    add_product(admin, x)
    add_product(admin, y)
    order = allocated_order(admin, uid, {a: {x: 2}, b: {y: 2}}, [(x, 2), (y, 1)])
    by_location = {f["location"]["code"]: f for f in order["fulfillmentOrders"]}
    assert set(by_location) == {a, b}  # A has the x, B the y: a split
    receive(admin, x, b, 2)  # B could now ship it all

    merged = admin.mutate("fulfillmentOrderMove", MOVE, {"id": by_location[a]["id"], "to": b})

    assert merged["userErrors"] == []
    assert merged["fulfillmentOrder"]["id"] == by_location[b]["id"]
    assert sorted((line["sku"], line["quantity"]) for line in merged["fulfillmentOrder"]["lines"]) == [(x, 2), (y, 1)]
    statuses = {f["id"]: f["status"] for f in admin(FULFILLMENT, {"id": order["id"]})["order"]["fulfillmentOrders"]}
    assert statuses == {by_location[a]["id"]: "CANCELLED", by_location[b]["id"]: "OPEN"}


def test_a_held_fulfillment_order_leaves_the_order_as_it_is_and_a_shipped_one_cannot_move(admin, uid, database_url):
    a, b, sku = f"FO-HA-{uid}", f"FO-HB-{uid}", f"FO-H-{uid}"
    add_product(admin, sku)
    order = allocated_order(admin, uid, {a: {sku: 5}, b: {sku: 5}}, [(sku, 1)])
    [fulfillment] = order["fulfillmentOrders"]

    held = admin.mutate("fulfillmentOrderHold", HOLD, {"id": fulfillment["id"]})
    during = admin(FULFILLMENT, {"id": order["id"]})["order"]
    with pytest.raises(DomainError, match="ON_HOLD"):  # a held one is not dispatched
        dispatch_order(database_url, order["number"], "SF", f"SF{uid}")
    released = admin.mutate("fulfillmentOrderRelease", RELEASE, {"id": fulfillment["id"]})
    again = admin.mutate("fulfillmentOrderRelease", RELEASE, {"id": fulfillment["id"]})

    assert held["fulfillmentOrder"] == {"status": "ON_HOLD", "holds": [{"reason": "RISK", "note": "check the buyer"}]}
    assert during["status"] == "ALLOCATED" and during["holds"] == []  # the order itself is not held
    assert released["fulfillmentOrder"] == {"status": "OPEN"}
    assert [e["code"] for e in again["userErrors"]] == ["INVALID_TRANSITION"]

    dispatch_order(database_url, order["number"], "SF", f"SF{uid}")
    shipped = admin.mutate("fulfillmentOrderMove", MOVE, {"id": fulfillment["id"], "to": b})
    assert [e["code"] for e in shipped["userErrors"]] == ["INVALID_TRANSITION"]


def test_two_moves_racing_for_the_last_units_never_oversell(admin, uid):
    a, b, sku = f"FO-RA-{uid}", f"FO-RB-{uid}", f"FO-R-{uid}"
    add_product(admin, sku)
    add_location(admin, a, priority=0)
    add_location(admin, b, priority=300)  # far enough behind that both orders take A's six units
    receive(admin, sku, a, 6)
    receive(admin, sku, b, 4)
    ids = []
    for _ in range(2):
        order = place_order(admin, [(sku, 3, "5.00")], paid=True)
        wait_for_status(admin, order["id"], "ALLOCATED")
        [fulfillment] = admin(FULFILLMENT, {"id": order["id"]})["order"]["fulfillmentOrders"]
        ids.append(fulfillment["id"])

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda fo: admin.mutate("fulfillmentOrderMove", MOVE, {"id": fo, "to": b}), ids))

    assert sorted(len(result["userErrors"]) for result in results) == [0, 1]
    assert level(admin, sku, b) == {"onHand": 4, "reserved": 3, "available": 1}
    assert level(admin, sku, a) == {"onHand": 6, "reserved": 3, "available": 3}
