"""Returns through GraphQL: request, approve, receive (restock, write off), refund to the cent,
exchange, the order's effects, the ledger after each step, and bad input that writes nothing."""

from __future__ import annotations

from tests.support import (
    GraphQLClient,
    add_location,
    add_product,
    create_token,
    customer_id_of,
    place_order,
    receive,
    run_async,
    wait_for_status,
)

RETURN_FIELDS = """return { id number status refundTotal { amount } refundDue { amount }
  lines { lineNo sku quantity receivedQuantity resellableQuantity damagedQuantity missingQuantity condition reason } }
  userErrors { field message code }"""
REQUEST = f"""mutation($input: ReturnRequestInput!) {{ returnRequest(input: $input) {{ {RETURN_FIELDS} }} }}"""
APPROVE = f"""mutation($id: ID!) {{ returnApprove(input: {{id: $id}}) {{ {RETURN_FIELDS} }} }}"""
REJECT = f"""mutation($id: ID!) {{ returnReject(input: {{id: $id, reason: "worn"}}) {{ {RETURN_FIELDS} }} }}"""
RECEIVE = f"""mutation($input: ReturnReceiveInput!) {{ returnReceive(input: $input) {{ {RETURN_FIELDS} }} }}"""
REFUND = f"""mutation($input: ReturnRefundInput!) {{ returnRefund(input: $input) {{
  refund {{ amount {{ amount currency }} }} {RETURN_FIELDS} }} }}"""
EXCHANGE = """mutation($input: ExchangeCreateInput!) { exchangeCreate(input: $input) {
  return { number status lines { lineNo quantity } }
  replacementOrder { id number status total { amount } lines { sku quantity } allocations { quantity } }
  priceDifference { amount currency } userErrors { field message code } } }"""
ORDER = """query($id: ID!) { order(id: $id) { status total { amount } refundTotal { amount }
  lines { lineNo sku returnedQuantity } returns { number status } events { kind message } } }"""
FULFILLMENT = "query($id: ID!) { order(id: $id) { fulfillmentOrders { id } } }"
LEVEL = """query($sku: String!, $at: String!) { stockLevels(first: 5, filter: {sku: $sku, locationCode: $at}) {
  edges { node { onHand reserved } } } }"""
CARRIER = """mutation($input: CarrierCreateInput!) { carrierCreate(input: $input) { userErrors { message } } }"""
SHIP = """mutation($fo: ID!, $carrier: String!) { shipmentCreate(input: {fulfillmentOrderId: $fo, carrierCode: $carrier,
  serviceCode: "SAME_DAY"}) { shipment { id } userErrors { field message code } } }"""
DISPATCH = "mutation($id: ID!) { shipmentDispatch(input: {id: $id}) { userErrors { message } } }"


def shipped_order(admin: GraphQLClient, uid: str, tag: str, lines: list[tuple[str, int, str]], **extra) -> dict:
    """A paid order of ``lines`` (sku suffix, quantity, unit price), shipped by the own fleet; with its
    location code and SKUs."""
    where = f"RT-WH-{tag}-{uid}"
    add_location(admin, where, autoDispatch=False)
    skus = {}
    for suffix, quantity, _price in lines:
        sku = skus[suffix] = f"RT-{tag}-{suffix}-{uid}"
        add_product(admin, sku)
        receive(admin, sku, where, quantity + 5)
    carrier = f"fleet-rt-{tag}-{uid}".lower()
    assert (
        admin(CARRIER, {"input": {"code": carrier, "name": "Own fleet", "kind": "fleet", "settings": {}}})[
            "carrierCreate"
        ]["userErrors"]
        == []
    )
    order = place_order(admin, [(skus[s], q, p) for s, q, p in lines], paid=True, **extra)
    return _ship(admin, order, where, skus, carrier)


def _ship(admin, order, where, skus, carrier) -> dict:
    wait_for_status(admin, order["id"], "ALLOCATED")
    [fo] = admin(FULFILLMENT, {"id": order["id"]})["order"]["fulfillmentOrders"]
    created = admin.mutate("shipmentCreate", SHIP, {"fo": fo["id"], "carrier": carrier})
    assert created["userErrors"] == [], created
    assert admin.mutate("shipmentDispatch", DISPATCH, {"id": created["shipment"]["id"]})["userErrors"] == []
    wait_for_status(admin, order["id"], "SHIPPED")
    return {**order, "location": where, "skus": skus}


def order_with_discounts(admin: GraphQLClient, uid: str, tag: str) -> dict:
    """3 × 33.33 and 1 × 20.01, order discount 5.00, shipping 7.00, tax 0.99: total 122.99.

    By hand: the 2.99 beyond the lines is shared by amount: 2.99 × 99.99/120 = 2.4915 → 2.49
    and 2.99 × 20.01/120 = 0.4986 → 0.49, the cent left over to the larger remainder (B): A
    is worth 102.48 (34.16 a unit, the last two 68.32 together) and B 20.51."""
    where = f"RT-WH-{tag}-{uid}"
    add_location(admin, where, autoDispatch=False)
    skus = {"A": f"RT-{tag}-A-{uid}", "B": f"RT-{tag}-B-{uid}"}
    for sku in skus.values():
        add_product(admin, sku)
        receive(admin, sku, where, 10)
    carrier = f"fleet-rt-{tag}-{uid}".lower()
    assert (
        admin(CARRIER, {"input": {"code": carrier, "name": "Own fleet", "kind": "fleet", "settings": {}}})[
            "carrierCreate"
        ]["userErrors"]
        == []
    )
    order = place_order(
        admin,
        [(skus["A"], 3, "33.33"), (skus["B"], 1, "20.01")],
        paid=True,
        discount="5.00",
        shippingFee="7.00",
        tax="0.99",
    )
    assert order["total"]["amount"] == "122.99"
    return _ship(admin, order, where, skus, carrier)


def on_hand(admin, sku: str, where: str) -> int:
    [edge] = admin(LEVEL, {"sku": sku, "at": where})["stockLevels"]["edges"]
    return edge["node"]["onHand"]


def ledger_differences(database_url: str, skus: set[str]) -> list:
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.inventory import verify_ledger

    async def check() -> list:
        database = Database(database_url)
        try:
            async with database.session() as session:
                return [d for d in await verify_ledger(session) if d.sku in skus]
        finally:
            await database.dispose()

    return run_async(check())


def approved(admin, order_id: str, lines: list[dict]) -> dict:
    requested = admin.mutate("returnRequest", REQUEST, {"input": {"orderId": order_id, "lines": lines}})
    assert requested["userErrors"] == [], requested
    assert requested["return"]["status"] == "REQUESTED"
    done = admin.mutate("returnApprove", APPROVE, {"id": requested["return"]["id"]})
    assert done["userErrors"] == [] and done["return"]["status"] == "APPROVED"
    return done["return"]


def test_partial_then_full_return_restocks_writes_off_refunds_to_the_cent_and_completes_the_order(
    admin, database_url, uid
):
    order = order_with_discounts(admin, uid, "F")
    a, b, where = order["skus"]["A"], order["skus"]["B"], order["location"]
    before_a = on_hand(admin, a, where)

    first = approved(admin, order["id"], [{"lineNo": 1, "quantity": 1, "reason": "SIZE_FIT"}])
    received = admin.mutate(
        "returnReceive",
        RECEIVE,
        {"input": {"id": first["id"], "lines": [{"lineNo": 1, "quantity": 1, "condition": "RESELLABLE"}]}},
    )["return"]
    assert received["status"] == "RECEIVED" and received["refundDue"] == {"amount": "34.16"}
    assert received["lines"][0]["condition"] == "RESELLABLE" and received["lines"][0]["receivedQuantity"] == 1
    assert on_hand(admin, a, where) == before_a + 1  # back on the shelf

    refunded = admin.mutate("returnRefund", REFUND, {"input": {"id": first["id"]}})
    assert refunded["userErrors"] == []
    assert refunded["refund"]["amount"] == {"amount": "34.16", "currency": "CNY"}
    assert refunded["return"]["status"] == "REFUNDED" and refunded["return"]["refundDue"] == {"amount": "0.00"}
    data = admin(ORDER, {"id": order["id"]})["order"]
    assert data["status"] == "SHIPPED" and data["refundTotal"] == {"amount": "34.16"}
    assert [line["returnedQuantity"] for line in data["lines"]] == [1, 0]

    second = approved(
        admin,
        order["id"],
        [{"lineNo": 1, "quantity": 2, "reason": "DEFECTIVE"}, {"lineNo": 2, "quantity": 1, "reason": "CHANGED_MIND"}],
    )
    received = admin.mutate(
        "returnReceive",
        RECEIVE,
        {
            "input": {
                "id": second["id"],
                "lines": [
                    {"lineNo": 1, "quantity": 1, "condition": "RESELLABLE"},
                    {"lineNo": 1, "quantity": 1, "condition": "DAMAGED"},
                    {"lineNo": 2, "quantity": 1, "condition": "RESELLABLE", "restockLocationCode": where},
                ],
            }
        },
    )["return"]
    mixed = received["lines"][0]
    assert (mixed["resellableQuantity"], mixed["damagedQuantity"], mixed["condition"]) == (1, 1, None)
    assert received["refundDue"] == {"amount": "88.83"}  # 68.32 + 20.51
    assert on_hand(admin, a, where) == before_a + 2  # the damaged one came back and was written off

    assert admin.mutate("returnRefund", REFUND, {"input": {"id": second["id"]}})["userErrors"] == []
    data = admin(ORDER, {"id": order["id"]})["order"]
    assert data["refundTotal"] == data["total"] == {"amount": "122.99"}
    assert data["status"] == "COMPLETED"  # every shipped unit came back and was refunded
    assert [r["status"] for r in data["returns"]] == ["REFUNDED", "REFUNDED"]
    kinds = [event["kind"] for event in data["events"]]
    assert kinds.count("RETURN_RECEIVED") == 2 and kinds.count("REFUNDED") == 2 and "RETURN_REQUESTED" in kinds

    more = admin.mutate("returnRefund", REFUND, {"input": {"id": second["id"], "amount": "0.01"}})
    assert [(e["field"], e["code"]) for e in more["userErrors"]] == [(["input", "amount"], "TOO_MUCH")]
    assert ledger_differences(database_url, {a, b}) == []


def test_bad_returns_are_refused_and_write_nothing(admin, uid):
    order = shipped_order(admin, uid, "B", [("A", 2, "10.00")])

    too_many = admin.mutate(
        "returnRequest",
        REQUEST,
        {"input": {"orderId": order["id"], "lines": [{"lineNo": 1, "quantity": 3, "reason": "OTHER"}]}},
    )
    no_line = admin.mutate(
        "returnRequest",
        REQUEST,
        {"input": {"orderId": order["id"], "lines": [{"lineNo": 9, "quantity": 1, "reason": "OTHER"}]}},
    )
    assert [(e["field"], e["code"]) for e in too_many["userErrors"]] == [
        (["input", "lines", "0", "quantity"], "TOO_MANY")
    ]
    assert [(e["field"], e["code"]) for e in no_line["userErrors"]] == [
        (["input", "lines", "0", "lineNo"], "NOT_FOUND")
    ]
    assert admin(ORDER, {"id": order["id"]})["order"]["returns"] == []

    requested = admin.mutate(
        "returnRequest",
        REQUEST,
        {"input": {"orderId": order["id"], "lines": [{"lineNo": 1, "quantity": 2, "reason": "LATE"}]}},
    )["return"]
    early_refund = admin.mutate("returnRefund", REFUND, {"input": {"id": requested["id"]}})
    early_receive = admin.mutate(
        "returnReceive",
        RECEIVE,
        {"input": {"id": requested["id"], "lines": [{"lineNo": 1, "quantity": 1, "condition": "RESELLABLE"}]}},
    )
    assert [e["code"] for e in early_refund["userErrors"]] == ["INVALID_TRANSITION"]
    assert [e["code"] for e in early_receive["userErrors"]] == ["INVALID_TRANSITION"]
    # All shipped units are on this open return: no room for another.
    again = admin.mutate(
        "returnRequest",
        REQUEST,
        {"input": {"orderId": order["id"], "lines": [{"lineNo": 1, "quantity": 1, "reason": "LATE"}]}},
    )
    assert [e["code"] for e in again["userErrors"]] == ["TOO_MANY"]

    assert admin.mutate("returnApprove", APPROVE, {"id": requested["id"]})["userErrors"] == []
    over = admin.mutate(
        "returnReceive",
        RECEIVE,
        {"input": {"id": requested["id"], "lines": [{"lineNo": 1, "quantity": 3, "condition": "RESELLABLE"}]}},
    )
    assert [e["code"] for e in over["userErrors"]] == ["TOO_MANY"]
    ok = admin.mutate(
        "returnReceive",
        RECEIVE,
        {"input": {"id": requested["id"], "lines": [{"lineNo": 1, "quantity": 2, "condition": "MISSING"}]}},
    )
    twice = admin.mutate(
        "returnReceive",
        RECEIVE,
        {"input": {"id": requested["id"], "lines": [{"lineNo": 1, "quantity": 1, "condition": "RESELLABLE"}]}},
    )
    assert ok["userErrors"] == [] and ok["return"]["refundDue"] == {"amount": "0.00"}  # nothing came back
    assert [e["code"] for e in twice["userErrors"]] == ["INVALID_TRANSITION"]
    nothing = admin.mutate("returnRefund", REFUND, {"input": {"id": requested["id"]}})
    assert [e["code"] for e in nothing["userErrors"]] == ["NOTHING_TO_REFUND"]
    above = admin.mutate("returnRefund", REFUND, {"input": {"id": requested["id"], "amount": "20.01"}})
    assert [e["code"] for e in above["userErrors"]] == ["TOO_MUCH"]
    huge = admin.mutate("returnRefund", REFUND, {"input": {"id": requested["id"], "amount": "1e999"}})
    assert [(e["field"], e["code"]) for e in huge["userErrors"]] == [(["input", "amount"], "TOO_LARGE")]
    goodwill = admin.mutate("returnRefund", REFUND, {"input": {"id": requested["id"], "amount": "5.00"}})
    assert goodwill["userErrors"] == [] and goodwill["return"]["refundTotal"] == {"amount": "5.00"}

    rejected_then = admin.mutate("returnReject", REJECT, {"id": requested["id"]})
    assert [e["code"] for e in rejected_then["userErrors"]] == ["INVALID_TRANSITION"]


def test_an_unshipped_order_has_nothing_to_return(admin, uid):
    sku, where = f"RT-U-{uid}", f"RT-U-WH-{uid}"
    add_product(admin, sku)
    add_location(admin, where, autoDispatch=False)
    receive(admin, sku, where, 3)
    order = place_order(admin, [(sku, 1, "10.00")], paid=True)
    wait_for_status(admin, order["id"], "ALLOCATED")
    refused = admin.mutate(
        "returnRequest",
        REQUEST,
        {"input": {"orderId": order["id"], "lines": [{"lineNo": 1, "quantity": 1, "reason": "OTHER"}]}},
    )
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(["input", "orderId"], "INVALID_TRANSITION")]


def test_an_exchange_returns_one_sku_and_reserves_the_replacement_at_once(admin, uid):
    order = order_with_discounts(admin, uid, "X")
    other = f"RT-X-C-{uid}"
    add_product(admin, other)
    receive(admin, other, order["location"], 2)

    unknown = admin.mutate(
        "exchangeCreate",
        EXCHANGE,
        {
            "input": {
                "orderId": order["id"],
                "returnLines": [{"lineNo": 1, "quantity": 1, "reason": "SIZE_FIT"}],
                "newLines": [{"sku": f"NOPE-{uid}", "quantity": 1, "unitPrice": "40.00"}],
            }
        },
    )
    assert [(e["field"], e["code"]) for e in unknown["userErrors"]] == [
        (["input", "newLines", "0", "sku"], "NOT_FOUND")
    ]
    assert admin(ORDER, {"id": order["id"]})["order"]["returns"] == []  # nothing written

    done = admin.mutate(
        "exchangeCreate",
        EXCHANGE,
        {
            "input": {
                "orderId": order["id"],
                "returnLines": [{"lineNo": 1, "quantity": 1, "reason": "SIZE_FIT"}],
                "newLines": [{"sku": other, "quantity": 1, "unitPrice": "40.00"}],
            }
        },
    )
    assert done["userErrors"] == [], done
    assert done["return"]["status"] == "APPROVED"
    replacement = done["replacementOrder"]
    assert replacement["status"] == "ALLOCATED" and replacement["allocations"] == [{"quantity": 1}]
    assert done["priceDifference"] == {"amount": "5.84", "currency": "CNY"}  # 40.00 − 34.16


def test_a_customer_returns_its_own_order_only(admin, server, database_url, uid):
    buyer = {"name": "Sun Li", "email": f"sun.li.{uid}@example.com"}
    order = shipped_order(admin, uid, "C", [("A", 1, "10.00")], customer=buyer)
    mine = GraphQLClient(
        server, create_token(database_url, "CUSTOMER", "buyer", customer_id=customer_id_of(database_url, order["id"]))
    )
    other = place_order(
        admin, [(order["skus"]["A"], 1, "10.00")], customer={"name": "Zhao Lei", "email": f"zhao.{uid}@example.com"}
    )
    stranger = GraphQLClient(
        server,
        create_token(database_url, "CUSTOMER", "stranger", customer_id=customer_id_of(database_url, other["id"])),
    )
    lines = [{"lineNo": 1, "quantity": 1, "reason": "CHANGED_MIND"}]

    theirs = stranger.mutate("returnRequest", REQUEST, {"input": {"orderId": order["id"], "lines": lines}})
    assert [e["code"] for e in theirs["userErrors"]] == ["FORBIDDEN"]
    own = mine.mutate("returnRequest", REQUEST, {"input": {"orderId": order["id"], "lines": lines}})
    assert own["userErrors"] == [] and own["return"]["status"] == "REQUESTED"

    listed = mine("{ returns(first: 10) { edges { node { number } } } }")["returns"]["edges"]
    assert [edge["node"]["number"] for edge in listed] == [own["return"]["number"]]
    assert stranger("{ returns(first: 10) { edges { node { number } } } }")["returns"]["edges"] == []
    approve = mine.raw(APPROVE, {"id": own["return"]["id"]})
    assert approve["errors"][0]["message"].startswith("Not allowed")  # approving is staff work
