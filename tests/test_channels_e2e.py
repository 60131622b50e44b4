"""Every channel end to end, the same way: the real plugin talks over HTTP to its fake
marketplace, the app ingests through its jobs, and we look through GraphQL.

For each of taobao, jd, amazon and pos: an order placed at the fake arrives with its lines,
totals, currency and address; later changes at the fake update that one order; a stock change
here is pushed to the fake after the channel's share and buffer; and a dispatched shipment is
confirmed to the channel.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.channel_support import (
    FakeChannel,
    channel_confirmations,
    dispatch_order,
    ensure_product,
    level,
    messages,
    order_count,
    serve_fake,
    set_listing,
    wait_order,
)
from tests.support import add_location, eventually, receive

KINDS = ["taobao", "jd", "amazon", "pos"]


@pytest.fixture(scope="module")
def warehouse(admin) -> str:
    code = f"WH-E2E-{datetime.now(UTC):%H%M%S%f}"
    add_location(admin, code, priority=1)
    return code


@pytest.fixture(params=KINDS)
def fake(request, admin) -> Iterator[FakeChannel]:
    with serve_fake(request.param) as driver:
        yield driver
        driver.deactivate(admin)  # no pulls or pushes to a fake that is gone


@pytest.fixture
def stock_at(admin, uid, fake, warehouse) -> str:
    """Where the channel's orders take stock from: a store of its own for the POS, else the warehouse."""
    if not fake.sells_from_store:
        return warehouse
    store = f"STORE-E2E-{uid}"
    add_location(admin, store, kind="STORE")
    return store


def products(admin, uid: str, count: int, location: str, quantity: int) -> list[str]:
    skus = [f"E2E-{uid}-{index}" for index in range(1, count + 1)]
    for sku in skus:
        ensure_product(admin, sku)
        if quantity:
            receive(admin, sku, location, quantity)
    return skus


def amount(value: dict) -> Decimal:
    return Decimal(value["amount"])


# --- 1. an order placed at the channel arrives --------------------------------

# Per channel: status after ingestion, lines (index of our SKU or None, quantity, unit price,
# refunded), (total, tax), currency, and who/where it ships to. Figures are the samples'.
ARRIVALS = {
    # Taobao's payment 251.65 less the line refunded before we saw it.
    "taobao": ("ALLOCATED", [(0, 2, "129", 0), (1, 1, "19.90", 1)], ("231.75", "0"), "CNY", "林晓雯", "杭州市", "CN"),
    "jd": ("ALLOCATED", [(0, 2, "199", 0), (1, 1, "59.90", 0)], ("402.90", "0"), "CNY", "陈思远", "深圳市", "CN"),
    "amazon": ("ALLOCATED", [(0, 1, "14.99", 0)], ("14.99", "0"), "USD", "José Ñúñez-O’Brien", "Austin", "US"),
    # A web sale of the store, to be shipped (an open SHIPMENT fulfilment): allocated like any
    # order; the gift wrap is money only, no SKU; 1.28 sales tax.
    "pos": (
        "ALLOCATED",
        [(0, 2, "6.50", 0), (None, 1, "3.00", 0)],
        ("21.67", "1.28"),
        "USD",
        "Zoë Ramírez",
        "New York",
        "US",
    ),
}


def test_an_order_placed_at_the_channel_arrives_with_lines_totals_and_address(admin, server, uid, fake, stock_at):
    status, lines, total, currency, name, city, country = ARRIVALS[fake.kind]
    skus = products(admin, uid, 2, stock_at, 10)
    code = f"e2e-new-{fake.kind}-{uid}".lower()
    fake.create(admin, code, store=stock_at)

    external_id = fake.place(admin, code, skus)
    order = fake.deliver(admin, server, code, external_id, status)

    assert order["channel"] == {"code": code} and order["externalId"] == external_id
    assert order["currency"] == currency and order["total"] == {
        "amount": order["total"]["amount"],
        "currency": currency,
    }
    assert (amount(order["total"]), amount(order["tax"])) == (Decimal(total[0]), Decimal(total[1]))
    got = sorted(
        ((line["sku"] or "", line["quantity"], amount(line["unitPrice"]), line["refundedQuantity"]))
        for line in order["lines"]
    )
    want = sorted(
        ("" if index is None else skus[index], quantity, Decimal(price), refunded)
        for index, quantity, price, refunded in lines
    )
    assert got == want
    assert all(line["unitPrice"]["currency"] == currency for line in order["lines"])
    address = order["shippingAddress"]
    assert (address["name"], address["city"], address["country"]) == (name, city, country)
    # Stock: the units not refunded are reserved.
    taken = {skus[index]: quantity - refunded for index, quantity, _, refunded in lines if index is not None}
    assert {a["sku"]: a["quantity"] for a in order["allocations"]} == {s: q for s, q in taken.items() if q}
    for sku, quantity in taken.items():
        assert level(admin, sku, stock_at) == {"onHand": 10, "reserved": quantity, "available": 10 - quantity}
    assert order_count(admin, code) == 1 and messages(admin, code, "FAILED") == []


# --- 2. later changes at the channel update the same order -----------------------

# (how it is placed, [(change at the fake, how it reaches us, expected status)])
CHANGES = {
    "taobao": (False, [("pay", None, "ALLOCATED"), ("cancel", None, "CANCELLED")]),
    "jd": (True, [("hold", None, "ON_HOLD"), ("cancel", None, "CANCELLED")]),
    "amazon": (False, [("pay", None, "ALLOCATED"), ("cancel", None, "CANCELLED")]),
    "pos-webhook": (False, [("pay", "webhook", "ALLOCATED")]),
    "pos-search": (False, [("cancel", "search", "CANCELLED")]),
}


@pytest.mark.parametrize(
    ("fake", "scenario"),
    [(kind.split("-")[0], kind) for kind in CHANGES],
    ids=list(CHANGES),
    indirect=["fake"],
)
def test_later_changes_at_the_channel_update_the_one_order(admin, server, uid, fake, stock_at, scenario):
    paid, steps = CHANGES[scenario]
    skus = products(admin, uid, 2, stock_at, 10)
    code = f"e2e-upd-{scenario}-{uid}".lower()
    fake.create(admin, code, store=stock_at)
    external_id = fake.place(admin, code, skus, paid=paid)

    first = fake.deliver(admin, server, code, external_id, "ALLOCATED" if paid else "PENDING")
    assert first["paidAt"] if paid else first["paidAt"] is None and first["allocations"] == []
    for change, via, status in steps:
        getattr(fake, change)(external_id)
        order = fake.deliver(admin, server, code, external_id, status, via=via)
        assert order["id"] == first["id"] and order_count(admin, code) == 1, (change, order)
        if change == "pay":
            assert order["paidAt"]
        if change == "hold":
            assert [hold["reason"] for hold in order["holds"] if hold["releasedAt"] is None] == ["CHANNEL_HOLD"]

    if status == "CANCELLED":  # whatever was reserved went back
        assert [level(admin, sku, stock_at) for sku in skus] == [{"onHand": 10, "reserved": 0, "available": 10}] * 2
    else:  # paid: reserved once, however many times the change reached us
        assert level(admin, skus[0], stock_at) == {"onHand": 10, "reserved": 2, "available": 8}
    assert messages(admin, code, "FAILED") == []


# --- 3. a stock change here is pushed to the channel ---------------------------


def test_a_stock_change_is_pushed_to_the_channel_after_share_and_buffer(admin, uid, fake, stock_at, warehouse):
    [sku] = products(admin, uid, 1, stock_at, 0)
    code = f"e2e-push-{fake.kind}-{uid}".lower()
    fake.create(admin, code, store=stock_at, stockSharePercent=50, stockBuffer=1)
    channel_sku_id, item_id = fake.catalog_listing(uid)
    set_listing(admin, code, channel_sku_id, sku, item_id)
    if fake.sells_from_store:
        receive(admin, sku, warehouse, 40)  # the POS sells the store's shelf, not the warehouse

    receive(admin, sku, stock_at, 11)
    assert last_push(fake, channel_sku_id, 4) == 4  # floor(11 × 50%) − 1

    receive(admin, sku, stock_at, 10)
    assert last_push(fake, channel_sku_id, 9) == 9  # floor(21 × 50%) − 1
    assert set(fake.pushed(channel_sku_id)) <= {0, 4, 9}, fake.pushed(channel_sku_id)


def last_push(fake: FakeChannel, channel_sku_id: str, expected: int, timeout: float = 20) -> int:
    """Wait until the latest quantity the fake received for the SKU is ``expected``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fake.pushed(channel_sku_id)[-1:] == [expected]:
            return expected
        time.sleep(0.1)
    raise AssertionError(f"the fake received {fake.pushed(channel_sku_id)} for {channel_sku_id}, not {expected} last")


# --- 4. a dispatched shipment is confirmed to the channel -------------------------


def test_a_dispatched_shipment_is_confirmed_to_the_channel(admin, server, uid, fake, stock_at, warehouse, database_url):
    if fake.sells_from_store:
        # The store has one unit of the two sold: the web sale ships from the warehouse, which has them all.
        skus = products(admin, uid, 2, stock_at, 1)
        for sku in skus:
            receive(admin, sku, warehouse, 10)
    else:
        skus = products(admin, uid, 2, stock_at, 10)
    code = f"e2e-ship-{fake.kind}-{uid}".lower()
    fake.create(admin, code, store=stock_at)
    external_id = fake.place(admin, code, skus)
    order = fake.deliver(admin, server, code, external_id, "ALLOCATED")
    if fake.sells_from_store:
        assert {a["location"]["code"] for a in order["allocations"]} == {warehouse}
    tracking = f"TRK{uid}"

    assert dispatch_order(database_url, order["number"], fake.carrier, tracking) >= 1

    recorded = eventually(
        lambda: (
            (rows := channel_confirmations(database_url, order["number"]))
            and all(row["confirmed_at"] for row in rows)
            and rows
        ),
        timeout=20,
    )
    assert all(row["error"] is None and row["attempts"] == 1 for row in recorded), recorded
    shipped = wait_order(admin, code, external_id, "SHIPPED")
    assert {s["trackingNumber"] for s in shipped["shipments"]} == {tracking}
    sent = eventually(lambda: fake.confirmed(external_id))
    assert {(s["carrier"], s["tracking"]) for s in sent} == {(fake.carrier, tracking)}
