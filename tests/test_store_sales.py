"""In-store sales: a POS channel sells from one of our stores (``settings.locationCode``).

Every paid store sale takes its units from that store at once, whatever state it reaches us
in (OPEN with tenders, or COMPLETED: the usual counter sale, paid and handed over) and
however it reaches us (``order.created`` or ``order.updated`` webhook, or a SearchOrders
pull for sales rung up in the POS app). It is never allocated to a warehouse, every figure
is explained by the store's ledger, and a sale seen twice takes its units once.

Through the real app over HTTP: the POS plugin fetches each notified order from the fake
Square server (the webhook carries only ids, README 4), the jobs ingest it, we look through
GraphQL.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.channel_support import (
    REPLAY,
    create_channel,
    ensure_product,
    level,
    messages,
    order_count,
    order_of,
    pos_settings,
    set_listing,
    sync_until,
    wait_order,
)
from tests.fakes import pos
from tests.fakes.server import serve
from tests.support import GraphQLClient, add_location, eventually, receive

POS_LOCATION_ID = "L8FAKE2Q3R4S5"
MOVEMENTS = """query($sku: String!, $code: String!) {
  stockMovements(first: 50, filter: {sku: $sku, locationCode: $code}) {
    edges { node { reason onHandDelta reservedDelta reference } } } }"""


@pytest.fixture
def pos_fake() -> Iterator[tuple[str, pos.PosState]]:
    state = pos.PosState()
    with serve(pos.make_app(state)) as url:
        yield url, state


class Shop:
    """One store with 10 units of a SKU, a warehouse with 10 more, and a POS channel selling from the store."""

    def __init__(self, admin: GraphQLClient, server: str, url: str, state: pos.PosState, uid: str) -> None:
        self.admin, self.server, self.state = admin, server, state
        self.store, self.warehouse, self.sku = f"STORE-SS-{uid}", f"WH-SS-{uid}", f"SS-LATTE-{uid}"
        self.variation = f"VARSS{uid}"
        self.code = f"pos-ss-{uid}".lower()
        add_location(admin, self.store, kind="STORE")
        add_location(admin, self.warehouse, priority=1)  # a better-ranked place to allocate from
        ensure_product(admin, self.sku)
        receive(admin, self.sku, self.store, 10)
        receive(admin, self.sku, self.warehouse, 10)
        create_channel(admin, self.code, "pos", pos_settings(url, state, self.store))
        self.webhooks = 0

    def map_variation(self) -> None:
        set_listing(self.admin, self.code, self.variation, self.sku)  # POS lines carry only the variation id

    def sale(self, pos_state: str = "COMPLETED", *, paid: bool = True, minutes_ago: int = 1) -> str:
        """A copy of the sample sale at the fake POS: 2 × our SKU and a gift-wrap custom amount."""
        order = copy.deepcopy(pos.load_sample("retrieve_order.json")["order"])
        order_id = f"ss{uuid.uuid4().hex[:22]}"
        when = pos.square_time(datetime.now(UTC) - timedelta(minutes=minutes_ago))
        order.update(id=order_id, location_id=POS_LOCATION_ID, state=pos_state, created_at=when, updated_at=when)
        order["line_items"][0]["catalog_object_id"] = self.variation
        # Rung up at the till: no SHIPMENT fulfilment (the sample's is a web sale to be shipped,
        # tests/test_flows_to_delivered.py), the buyer takes the goods in the store.
        order["fulfillments"] = []
        if pos_state == "COMPLETED":
            order["closed_at"] = when
        if not paid:
            order.update(tenders=[], net_amount_due_money=dict(order["total_money"]))
        self.state.add_order(order)
        return order_id

    def complete(self, order_id: str, **fields: Any) -> None:
        """The counter hands the goods over (and takes the money, if it had not yet)."""
        sample = pos.load_sample("retrieve_order.json")["order"]
        total = self.state.orders[order_id]["total_money"]
        now = pos.square_time(datetime.now(UTC))
        self.state.update_order(
            order_id,
            state="COMPLETED",
            closed_at=now,
            tenders=[dict(sample["tenders"][0], created_at=now, amount_money=dict(total))],
            net_amount_due_money={"amount": 0, "currency": total["currency"]},
            **fields,
        )

    def notify(self, order_id: str, event: str = "order.created") -> None:
        hook = self.state.signed_webhook(order_id, event)
        response = httpx.post(f"{self.server}/webhooks/channels/{self.code}", content=hook.body, headers=hook.headers)
        assert response.status_code == 200, response.text
        self.webhooks += 1

    def settled(self) -> None:
        """Wait until every webhook posted so far, and every order body it brought, was ingested."""

        def done() -> bool:
            received = messages(self.admin, self.code, "RECEIVED")
            webhooks = [m for m in messages(self.admin, self.code) if m["kind"] == "WEBHOOK"]
            return not received and len(webhooks) == self.webhooks and all(m["status"] == "PROCESSED" for m in webhooks)

        eventually(done, timeout=20, interval=0.1)

    def store_level(self) -> dict:
        return level(self.admin, self.sku, self.store)

    def warehouse_level(self) -> dict:
        return level(self.admin, self.sku, self.warehouse)

    def movements(self, code: str) -> list[tuple[str, int, int, str | None]]:
        edges = self.admin(MOVEMENTS, {"sku": self.sku, "code": code})["stockMovements"]["edges"]
        return sorted(
            (e["node"]["reason"], e["node"]["onHandDelta"], e["node"]["reservedDelta"], e["node"]["reference"])
            for e in edges
        )

    def assert_sold_once_at_the_store(self, order: dict) -> None:
        """The store gave 2 units, once, through one ledger row naming the order; the warehouse nothing."""
        assert self.store_level() == {"onHand": 8, "reserved": 0, "available": 8}
        assert self.movements(self.store) == sorted(
            [("RECEIPT", 10, 0, None), ("SHIP", -2, 0, f"{order['number']} sold at {self.store}")]
        )
        assert self.warehouse_level() == {"onHand": 10, "reserved": 0, "available": 10}
        assert [m[0] for m in self.movements(self.warehouse)] == ["RECEIPT"]
        assert [(a["sku"], a["quantity"], a["status"], a["location"]["code"]) for a in order["allocations"]] == [
            (self.sku, 2, "SHIPPED", self.store)
        ]
        assert order_count(self.admin, self.code) == 1
        assert messages(self.admin, self.code, "FAILED") == []


@pytest.fixture
def shop(admin, server, uid, pos_fake) -> Shop:
    url, state = pos_fake
    return Shop(admin, server, url, state, uid)


# --- the defect: a counter sale that arrives COMPLETED ------------------------


def test_a_completed_counter_sale_takes_its_units_from_the_store_at_once(shop):
    shop.map_variation()
    sale = shop.sale("COMPLETED")

    shop.notify(sale, "order.created")

    order = wait_order(shop.admin, shop.code, sale, "COMPLETED", "ON_HOLD")
    assert order["status"] == "COMPLETED" and order["paidAt"] and order["holds"] == []
    shop.assert_sold_once_at_the_store(order)


def test_a_paid_open_sale_then_completed_takes_the_store_stock_once(shop):
    shop.map_variation()
    sale = shop.sale("OPEN")  # tenders paid in full, not handed over yet

    shop.notify(sale, "order.created")
    sold = wait_order(shop.admin, shop.code, sale, "SHIPPED")
    assert shop.store_level() == {"onHand": 8, "reserved": 0, "available": 8}

    shop.complete(sale)
    shop.notify(sale, "order.updated")

    completed = wait_order(shop.admin, shop.code, sale, "COMPLETED")
    assert completed["id"] == sold["id"]
    shop.assert_sold_once_at_the_store(completed)


def test_a_completed_sale_delivered_twice_takes_the_store_stock_once(shop):
    shop.map_variation()
    sale = shop.sale("COMPLETED")
    shop.notify(sale, "order.created")
    first = wait_order(shop.admin, shop.code, sale, "COMPLETED")

    shop.notify(sale, "order.created")  # the POS retries the delivery (a new event id, the same order)
    shop.settled()
    # A newer version of the same completed sale (a note added at the POS) is upserted again…
    shop.state.update_order(sale, note="receipt reprinted")
    shop.notify(sale, "order.updated")
    shop.settled()
    # …and so is a replayed message.
    stored = [m for m in messages(shop.admin, shop.code, "PROCESSED") if m["kind"] == "ORDER"]
    assert len(stored) >= 2
    replay = shop.admin.mutate("inboundMessageReplay", REPLAY, {"id": stored[-1]["id"]})
    assert replay["userErrors"] == [], replay
    shop.settled()

    again = order_of(shop.admin, shop.code, sale)
    assert again["id"] == first["id"] and again["status"] == "COMPLETED"
    shop.assert_sold_once_at_the_store(again)


# --- the rest of its kind -----------------------------------------------------


@pytest.mark.parametrize("via", ["order.updated", "search"])
def test_a_completed_sale_first_seen_by_update_or_pull_takes_the_store_stock(shop, via):
    """Sales rung up in the POS app publish no order.created (README 4): an update or a pull brings them."""
    shop.map_variation()
    sale = shop.sale("COMPLETED")

    if via == "search":
        order = sync_until(shop.admin, shop.code, sale, "COMPLETED", "ON_HOLD")
    else:
        shop.notify(sale, via)
        order = wait_order(shop.admin, shop.code, sale, "COMPLETED", "ON_HOLD")

    assert order["status"] == "COMPLETED"
    shop.assert_sold_once_at_the_store(order)


def test_an_unpaid_sale_later_paid_and_completed_in_one_go_takes_the_store_stock(shop):
    shop.map_variation()
    sale = shop.sale("OPEN", paid=False)
    shop.notify(sale, "order.created")
    pending = wait_order(shop.admin, shop.code, sale, "PENDING")
    assert pending["allocations"] == [] and shop.store_level()["onHand"] == 10

    shop.complete(sale)
    shop.notify(sale, "order.updated")

    order = wait_order(shop.admin, shop.code, sale, "COMPLETED", "ON_HOLD")
    assert order["status"] == "COMPLETED" and order["paidAt"]
    shop.assert_sold_once_at_the_store(order)


def test_a_completed_sale_of_an_unmapped_variation_waits_then_takes_the_store_stock(shop):
    sale = shop.sale("COMPLETED")
    shop.notify(sale, "order.created")
    held = wait_order(shop.admin, shop.code, sale, "ON_HOLD", "COMPLETED")
    assert held["status"] == "ON_HOLD"
    assert [h["reason"] for h in held["holds"] if h["releasedAt"] is None] == ["UNMAPPED_SKU"]
    assert shop.store_level()["onHand"] == 10

    shop.map_variation()

    order = wait_order(shop.admin, shop.code, sale, "COMPLETED")
    shop.assert_sold_once_at_the_store(order)


def test_a_completed_sale_the_store_books_cannot_cover_waits_for_a_count(shop):
    """The ledger never goes negative: the sale waits ON_HOLD (OUT_OF_STOCK) for a stock count,
    and a later version of the same completed sale does not wave it through without its stock."""
    shop.map_variation()
    adjust = """mutation($input: StockAdjustInput!) { stockAdjust(input: $input) { userErrors { message } } }"""
    payload = shop.admin.mutate(
        "stockAdjust",
        adjust,
        {"input": {"sku": shop.sku, "locationCode": shop.store, "delta": -9, "reason": "shrinkage"}},
    )
    assert payload["userErrors"] == []
    sale = shop.sale("COMPLETED")
    shop.notify(sale, "order.created")

    held = wait_order(shop.admin, shop.code, sale, "ON_HOLD", "COMPLETED")
    assert held["status"] == "ON_HOLD" and held["paidAt"]
    assert [h["reason"] for h in held["holds"] if h["releasedAt"] is None] == ["OUT_OF_STOCK"]
    shop.state.update_order(sale, note="receipt reprinted")
    shop.notify(sale, "order.updated")
    shop.settled()

    still = order_of(shop.admin, shop.code, sale)
    assert still["status"] == "ON_HOLD" and still["allocations"] == []
    assert [h["reason"] for h in still["holds"] if h["releasedAt"] is None] == ["OUT_OF_STOCK"]
    assert shop.store_level() == {"onHand": 1, "reserved": 0, "available": 1}
    assert shop.warehouse_level() == {"onHand": 10, "reserved": 0, "available": 10}
