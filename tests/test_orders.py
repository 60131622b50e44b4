"""Order lifecycle through the GraphQL endpoint, with the real database and job workers."""

from __future__ import annotations

from tests.support import (
    ORDER_CREATE,
    add_location,
    add_product,
    eventually,
    order_input,
    place_order,
    receive,
    wait_for_status,
)

CONFIRM = """mutation($id: ID!) { orderConfirmPayment(input: {id: $id}) {
  order { status paidAt } userErrors { field message code } } }"""
CANCEL = """mutation($id: ID!) { orderCancel(input: {id: $id, reason: "customer asked"}) {
  order { status } userErrors { field message code } } }"""
HOLD = """mutation($id: ID!, $reason: HoldReason!) { orderHold(input: {id: $id, reason: $reason, note: "check"}) {
  order { status holds { reason releasedAt } } userErrors { field message code } } }"""
RELEASE = """mutation($id: ID!) { orderRelease(input: {id: $id}) {
  order { status } userErrors { field message code } } }"""
LEVEL = """query($sku: String!, $code: String!) { stockLevels(filter: {sku: $sku, locationCode: $code}) {
  edges { node { onHand reserved available } } } }"""


def level(client, sku: str, code: str) -> dict:
    return client(LEVEL, {"sku": sku, "code": code})["stockLevels"]["edges"][0]["node"]


def stocked(client, uid: str, units: int = 10, price: str = "25.50") -> tuple[str, str]:
    sku, code = f"SKU-{uid}", f"WH-{uid}"
    add_product(client, sku, price)
    add_location(client, code)
    receive(client, sku, code, units)
    return sku, code


def test_manual_order_totals_are_computed_from_lines_discount_and_shipping(admin, uid):
    sku, _ = stocked(admin, uid)
    payload = admin.mutate(
        "orderCreate",
        ORDER_CREATE,
        {"input": order_input([(sku, 3, "25.50")], shippingFee="12.00", discount="5.00", note="call before delivery")},
    )
    order = payload["order"]
    assert payload["userErrors"] == [] and payload["created"] is True
    assert order["status"] == "PENDING"
    assert order["subtotal"] == {"amount": "76.50"}
    assert order["total"] == {"amount": "83.50", "currency": "CNY"}
    assert len(order["number"]) == 13 and order["number"][6] == "-"


def test_paying_an_order_allocates_it_from_the_preferred_location(admin, uid):
    sku, code = stocked(admin, uid, units=5)
    add_location(admin, f"FAR-{uid}", priority=90)
    receive(admin, sku, f"FAR-{uid}", 5)
    order = place_order(admin, [(sku, 2, "25.50")])
    confirmed = admin.mutate("orderConfirmPayment", CONFIRM, {"id": order["id"]})
    assert confirmed["userErrors"] == [] and confirmed["order"]["status"] == "CONFIRMED"
    allocated = wait_for_status(admin, order["id"], "ALLOCATED")
    assert allocated["allocations"] == [{"sku": sku, "quantity": 2, "location": {"code": code}}]
    assert level(admin, sku, code) == {"onHand": 5, "reserved": 2, "available": 3}


def test_the_same_channel_order_twice_is_created_once(admin, uid):
    sku, _ = stocked(admin, uid)
    first = admin.mutate("orderCreate", ORDER_CREATE, {"input": order_input([(sku, 1, "9.90")], externalId=uid)})
    second = admin.mutate("orderCreate", ORDER_CREATE, {"input": order_input([(sku, 1, "9.90")], externalId=uid)})
    assert first["created"] is True and second["created"] is False
    assert first["order"]["id"] == second["order"]["id"]
    found = admin("query($e: String!) { orders(filter: {search: $e}) { totalCount } }", {"e": uid})
    assert found["orders"]["totalCount"] == 1


def test_cancelling_releases_reserved_stock_and_a_cancelled_order_cannot_be_cancelled_again(admin, uid):
    sku, code = stocked(admin, uid, units=4)
    order = place_order(admin, [(sku, 3, "25.50")], paid=True)
    wait_for_status(admin, order["id"], "ALLOCATED")
    assert level(admin, sku, code)["reserved"] == 3
    cancelled = admin.mutate("orderCancel", CANCEL, {"id": order["id"]})
    assert cancelled == {"order": {"status": "CANCELLED"}, "userErrors": []}
    assert level(admin, sku, code) == {"onHand": 4, "reserved": 0, "available": 4}
    again = admin.mutate("orderCancel", CANCEL, {"id": order["id"]})
    assert again["order"] is None
    assert again["userErrors"][0]["code"] == "INVALID_TRANSITION"
    assert again["userErrors"][0]["field"] == ["input", "id"]
    assert wait_for_status(admin, order["id"], "CANCELLED")


def test_illegal_transitions_are_refused_and_leave_the_order_unchanged(admin, uid):
    sku, _ = stocked(admin, uid)
    order = place_order(admin, [(sku, 1, "25.50")])
    refused = admin.mutate("orderRelease", RELEASE, {"id": order["id"]})
    assert refused["userErrors"][0]["code"] == "INVALID_TRANSITION"
    admin.mutate("orderCancel", CANCEL, {"id": order["id"]})
    paid = admin.mutate("orderConfirmPayment", CONFIRM, {"id": order["id"]})
    assert paid["userErrors"][0]["code"] == "INVALID_TRANSITION"
    held = admin.mutate("orderHold", HOLD, {"id": order["id"], "reason": "MANUAL"})
    assert held["userErrors"][0]["code"] == "INVALID_TRANSITION"
    assert wait_for_status(admin, order["id"], "CANCELLED")


def test_a_held_order_resumes_where_it_was_once_its_last_hold_is_released(admin, uid):
    sku, _ = stocked(admin, uid)
    order = place_order(admin, [(sku, 1, "25.50")])
    held = admin.mutate("orderHold", HOLD, {"id": order["id"], "reason": "RISK"})
    assert held["order"]["status"] == "ON_HOLD"
    admin.mutate("orderHold", HOLD, {"id": order["id"], "reason": "BUYER_NOTE"})
    # Paid while held: it stays held, and resumes as a paid order.
    paid = admin.mutate("orderConfirmPayment", CONFIRM, {"id": order["id"]})
    assert paid["order"]["status"] == "ON_HOLD" and paid["order"]["paidAt"]
    released = admin.mutate("orderRelease", RELEASE, {"id": order["id"]})
    assert released["order"]["status"] == "CONFIRMED"
    wait_for_status(admin, order["id"], "ALLOCATED")


def test_an_order_without_stock_waits_backordered_then_allocates_when_stock_arrives(admin, uid):
    sku, code = stocked(admin, uid, units=1)
    first = place_order(admin, [(sku, 1, "25.50")], paid=True)
    wait_for_status(admin, first["id"], "ALLOCATED")
    waiting = place_order(admin, [(sku, 2, "25.50")], paid=True)
    wait_for_status(admin, waiting["id"], "BACKORDERED")
    receive(admin, sku, code, 5)
    allocated = wait_for_status(admin, waiting["id"], "ALLOCATED")
    assert allocated["allocations"][0]["quantity"] == 2
    assert level(admin, sku, code) == {"onHand": 6, "reserved": 3, "available": 3}


def test_orders_are_found_by_number_name_phone_status_and_channel(admin, uid):
    sku, _ = stocked(admin, uid)
    order = place_order(
        admin,
        [(sku, 1, "25.50")],
        customer={"name": f"Zhou {uid}", "phone": f"+86 139{uid[:4]}0"},
        externalId=f"EXT-{uid}",
    )
    query = """query($f: OrderFilter) { orders(first: 10, filter: $f) { totalCount edges { node { number } } } }"""
    for search in (order["number"], f"Zhou {uid}", uid[:4]):
        result = admin(query, {"f": {"search": search}})["orders"]
        assert [e["node"]["number"] for e in result["edges"]] == [order["number"]], search
    by_status = admin(query, {"f": {"search": f"Zhou {uid}", "status": ["CANCELLED"]}})["orders"]
    assert by_status["totalCount"] == 0
    by_channel = admin(query, {"f": {"search": f"Zhou {uid}", "channelCode": "manual"}})["orders"]
    assert by_channel["totalCount"] == 1
    by_number = admin("query($n: String!) { orderByNumber(number: $n) { externalId } }", {"n": order["number"]})
    assert by_number["orderByNumber"]["externalId"] == f"EXT-{uid}"
    by_external = admin(
        'query($e: String!) { orderByExternalId(channelCode: "manual", externalId: $e) { number } }',
        {"e": f"EXT-{uid}"},
    )
    assert by_external["orderByExternalId"]["number"] == order["number"]


def test_pages_have_cursors_and_total_count_and_are_capped(admin, uid):
    sku, _ = stocked(admin, uid)
    numbers = [place_order(admin, [(sku, 1, "1.00")], customer={"name": f"Page {uid}"})["number"] for _ in range(5)]
    query = """query($after: String, $f: OrderFilter) { orders(first: 2, after: $after, filter: $f,
      sort: PLACED_AT_ASC) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { number } } } }"""
    seen, after = [], None
    while True:
        page = admin(query, {"after": after, "f": {"search": f"Page {uid}"}})["orders"]
        assert page["totalCount"] == 5
        seen += [edge["node"]["number"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == numbers
    too_many = admin.raw("{ orders(first: 101) { totalCount } }")
    assert "between 0 and 100" in too_many["errors"][0]["message"]


def test_node_returns_any_object_by_global_id(admin, uid):
    sku, _ = stocked(admin, uid)
    order = place_order(admin, [(sku, 1, "25.50")])
    node = admin("query($id: ID!) { node(id: $id) { id ... on Order { number } } }", {"id": order["id"]})["node"]
    assert node == {"id": order["id"], "number": order["number"]}
    location_id = admin("query($c: String!) { location(code: $c) { id } }", {"c": f"WH-{uid}"})["location"]["id"]
    location = admin("query($id: ID!) { node(id: $id) { ... on Location { code } } }", {"id": location_id})["node"]
    assert location == {"code": f"WH-{uid}"}
    assert admin('{ node(id: "bm9wZToxMjM") { id } }')["node"] is None


def test_eventually_helper_reports_the_last_value():
    try:
        eventually(lambda: 0, timeout=0.1)
    except AssertionError as error:
        assert "last value: 0" in str(error)
    else:
        raise AssertionError("eventually should have failed")
