"""The allocation engine through GraphQL: one location when one can ship everything, else
the fewest; among those the cheapest and nearest; stock balance; drop-ship suppliers;
store pickup; and a reason a person can read."""

from __future__ import annotations

import re
from decimal import Decimal

from oms_graphql.domain import allocation_plan, geo
from oms_graphql.domain.allocation_plan import Destination, Site, Want
from oms_graphql.plugins.carrier_contract import DeliveryKind
from tests.channel_support import level
from tests.support import add_location, add_product, eventually, place_order, receive, run_async, wait_for_status

ALLOCATIONS = """query($id: ID!) { order(id: $id) { status
  allocations { sku quantity score reason location { code } }
  fulfillmentOrders { location { code } lines { sku quantity } } } }"""
PRODUCT_CREATE = """mutation($input: ProductCreateInput!) {
  productCreate(input: $input) { product { sku dropShip } userErrors { field message code } } }"""

CITIES = {
    "SH": {"country": "CN", "region": "上海", "city": "上海", "line1": "1 Warehouse Rd"},
    "BJ": {"country": "CN", "region": "北京", "city": "北京", "line1": "1 Warehouse Rd"},
    "GZ": {"country": "CN", "region": "广东", "city": "广州", "line1": "1 Warehouse Rd"},
    "CD": {"country": "CN", "region": "四川", "city": "成都", "line1": "1 Warehouse Rd"},
}
HANGZHOU = {"country": "CN", "region": "浙江省", "city": "杭州市", "line1": "9 West Lake Rd", "name": "Li Lei"}


def warehouse(admin, code: str, city: str, priority: int = 50, **extra) -> str:
    add_location(admin, code, priority=priority, address=CITIES[city], autoDispatch=False, **extra)
    return code


def allocated(admin, order_id: str) -> dict:
    wait_for_status(admin, order_id, "ALLOCATED", "BACKORDERED")
    return admin(ALLOCATIONS, {"id": order_id})["order"]


def test_one_location_that_ships_everything_beats_a_nearer_one_that_ships_part(admin, uid):
    a, b = f"AL-A-{uid}", f"AL-B-{uid}"
    near, far = warehouse(admin, f"AL-SH-{uid}", "SH"), warehouse(admin, f"AL-BJ-{uid}", "BJ")
    for sku in (a, b):
        add_product(admin, sku)
        receive(admin, sku, far, 5)
    receive(admin, a, near, 5)

    order = place_order(admin, [(a, 1, "10.00"), (b, 1, "10.00")], paid=True, shippingAddress=HANGZHOU)

    result = allocated(admin, order["id"])
    assert result["status"] == "ALLOCATED"
    assert [fo["location"]["code"] for fo in result["fulfillmentOrders"]] == [far]
    reason = result["allocations"][0]["reason"]
    assert reason.startswith(f"{far}: ships all 2 lines, ") and "km, est. ¥" in reason


def test_among_locations_that_ship_everything_the_nearest_and_cheapest_wins_and_says_why(admin, uid):
    sku = f"AL-N-{uid}"
    add_product(admin, sku)
    shanghai, beijing = warehouse(admin, f"AL-SH-{uid}", "SH"), warehouse(admin, f"AL-BJ-{uid}", "BJ")
    receive(admin, sku, shanghai, 5)
    receive(admin, sku, beijing, 5)

    # The buyer's address has names only: the packaged gazetteer places 杭州.
    order = place_order(admin, [(sku, 2, "10.00")], paid=True, shippingAddress=HANGZHOU)

    [allocation] = allocated(admin, order["id"])["allocations"]
    assert allocation["location"]["code"] == shanghai
    reason = allocation["reason"]
    match = re.fullmatch(
        rf"{shanghai}: ships all 1 line, (\d+) km, est\. ¥([\d.]+); {beijing}: ([\d,]+) km, est\. ¥([\d.]+)", reason
    )
    assert match, reason
    near_km, near_price, far_km, far_price = match.groups()
    assert 100 < int(near_km) < 250 and 1000 < int(far_km.replace(",", "")) < 1300
    assert float(near_price) < float(far_price)
    assert allocation["score"] is not None and allocation["score"] > 0


def test_no_location_has_everything_so_the_fewest_locations_ship_it(admin, uid):
    a, b, c = (f"AL-S{n}-{uid}" for n in "ABC")
    for sku in (a, b, c):
        add_product(admin, sku)
    # First by priority: single-SKU warehouses, which the first version took line by line (3 parcels).
    only_a, only_b = (
        warehouse(admin, f"AL-1-{uid}", "SH", priority=1),
        warehouse(admin, f"AL-2-{uid}", "SH", priority=1),
    )
    only_c = warehouse(admin, f"AL-3-{uid}", "SH", priority=1)
    both = warehouse(admin, f"AL-AB-{uid}", "BJ", priority=90)
    receive(admin, a, only_a, 5)
    receive(admin, b, only_b, 5)
    receive(admin, c, only_c, 5)
    receive(admin, a, both, 5)
    receive(admin, b, both, 5)

    order = place_order(admin, [(a, 1, "10.00"), (b, 1, "10.00"), (c, 1, "10.00")], paid=True)

    result = allocated(admin, order["id"])
    assert sorted(fo["location"]["code"] for fo in result["fulfillmentOrders"]) == sorted([both, only_c])
    by_sku = {row["sku"]: row for row in result["allocations"]}
    assert by_sku[c]["reason"].startswith(f"{only_c}: 1 of 3 lines, ") and "split 2 ways" in by_sku[c]["reason"]
    assert by_sku[a]["reason"].startswith(f"{both}: 2 of 3 lines, ")


def test_a_location_is_not_taken_below_its_reorder_point_when_another_can_serve(admin, uid):
    sku = f"AL-R-{uid}"
    add_product(admin, sku)
    low, plenty = (
        warehouse(admin, f"AL-LOW-{uid}", "SH", priority=10),
        warehouse(admin, f"AL-OK-{uid}", "SH", priority=20),
    )
    receive(admin, sku, low, 12)
    receive(admin, sku, plenty, 12)
    policy = admin.mutate(
        "reorderPolicySet",
        "mutation($input: ReorderPolicySetInput!) { reorderPolicySet(input: $input) { userErrors { message } } }",
        {"input": {"sku": sku, "locationCode": low, "reorderPoint": 10}},
    )
    assert policy["userErrors"] == []

    order = place_order(admin, [(sku, 3, "10.00")], paid=True)

    [allocation] = allocated(admin, order["id"])["allocations"]
    assert allocation["location"]["code"] == plenty


def test_drop_ship_skus_ship_from_suppliers_only_and_other_skus_never_do(admin, uid):
    drop, own = f"AL-DS-{uid}", f"AL-OWN-{uid}"
    created = admin.mutate(
        "productCreate",
        PRODUCT_CREATE,
        {"input": {"sku": drop, "name": "Drop-shipped", "dropShip": True}},
    )
    assert created["product"] == {"sku": drop, "dropShip": True}
    add_product(admin, own)
    supplier = warehouse(admin, f"AL-SUP-{uid}", "GZ", kind="SUPPLIER")
    shelf = warehouse(admin, f"AL-WH-{uid}", "SH")
    receive(admin, drop, supplier, 10)
    receive(admin, drop, shelf, 10)  # stock of a drop-ship SKU on our own shelf is not sold
    receive(admin, own, supplier, 10)
    receive(admin, own, shelf, 10)

    order = place_order(admin, [(drop, 1, "10.00"), (own, 1, "10.00")], paid=True)

    result = allocated(admin, order["id"])
    assert {row["sku"]: row["location"]["code"] for row in result["allocations"]} == {drop: supplier, own: shelf}

    only_at_supplier = f"AL-SO-{uid}"
    add_product(admin, only_at_supplier)
    receive(admin, only_at_supplier, supplier, 10)
    waiting = place_order(admin, [(only_at_supplier, 1, "10.00")], paid=True)
    assert allocated(admin, waiting["id"])["status"] == "BACKORDERED"


def test_a_pickup_order_is_served_by_its_pickup_store(admin, uid):
    sku = f"AL-P-{uid}"
    add_product(admin, sku)
    store = warehouse(admin, f"AL-ST-{uid}", "BJ", kind="STORE", canPickup=True, priority=90)
    nearer = warehouse(admin, f"AL-WH-{uid}", "SH", priority=1)
    receive(admin, sku, store, 3)
    receive(admin, sku, nearer, 3)

    order = place_order(admin, [(sku, 1, "10.00")], paid=True, deliveryOption="PICKUP", pickupLocationCode=store)

    [allocation] = allocated(admin, order["id"])["allocations"]
    assert allocation["location"]["code"] == store
    assert allocation["reason"].startswith(f"{store}: ships all 1 line, 0 km, est. ¥0.00")


# --- the planner alone (pure) ---------------------------------------------------


def _site(n: int, code: str, city: str, stock: dict[int, int], kind: str = "WAREHOUSE") -> Site:
    return Site(n, code, kind, 100, geo.locate("CN", None, city), stock)


def test_the_planner_needs_no_more_locations_than_the_fewest_and_never_more_units_than_free():
    wants = [
        Want(1, 1, "A", 3, 500, 100, frozenset(), False),
        Want(2, 2, "B", 2, 500, 100, frozenset(), False),
    ]
    sites = [
        _site(1, "SH", "上海", {1: 3}),
        _site(2, "HZ", "杭州", {1: 1, 2: 1}),
        _site(3, "BJ", "北京", {1: 3, 2: 2}),
        _site(4, "GZ", "广州", {2: 2}),
    ]
    to = Destination(geo.locate("CN", "浙江", "杭州"), DeliveryKind.STANDARD, "CNY")
    [best, *_] = allocation_plan.plans(wants, sites, to)
    assert best.codes == ("BJ",)
    # Without Beijing no single site has all of it: two sites, and only what they hold.
    two = allocation_plan.plans(wants, sites[:2] + sites[3:], to)
    assert [sorted(plan.codes) for plan in two] == [["GZ", "SH"]]
    for plan in two:
        for part in plan.parts:
            for want, units in part.takes:
                assert units <= part.site.available[want.product_id]
        assert sum(units for part in plan.parts for w, units in part.takes if w.sku == "A") == 3
    assert allocation_plan.plans(wants, sites[:2], to) == []  # B is short
    # Only three sites together have it all.
    sites[0].available[1] = 2
    [three] = allocation_plan.plans(wants, sites[:2] + sites[3:], to)
    assert sorted(three.codes) == ["GZ", "HZ", "SH"]


# --- a batch of orders (allocate_orders) --------------------------------------

BATCH_STOCK = {"SH": {"A": 3, "B": 1}, "BJ": {"A": 2, "B": 4, "C": 1}, "GZ": {"B": 1, "C": 2}}
# (sku, units) lines per order, in placing order: later orders see what the earlier ones left.
BATCH_ORDERS = [
    [("A", 4)],  # no one warehouse has 4: a split
    [("A", 1), ("B", 2)],
    [("C", 2), ("B", 1)],
    [("A", 3)],  # 2 A are left, in BJ: short
    [("B", 2), ("C", 1)],
    [("A", 2), ("C", 1)],
    [("B", 2)],
    [("C", 1)],  # none left: short
]


async def _batch_world(database_url: str, uid: str) -> None:
    """Three warehouses holding three SKUs, committed; the orders are placed by each scenario."""
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.catalog import LocationDetails, ProductDetails, create_location, create_product
    from oms_graphql.domain.inventory import Reference, receive_stock
    from oms_graphql.domain.orders import AddressDetails, channel_by_code

    database = Database(database_url)
    try:
        async with database.session() as session, session.begin():
            await channel_by_code(session, "manual")
            for sku in "ABC":
                await create_product(session, ProductDetails(sku=f"B{sku}-{uid}", name=sku, weight_grams=500))
            for priority, city in enumerate(BATCH_STOCK):
                await create_location(
                    session,
                    LocationDetails(
                        code=f"B{city}-{uid}",
                        name=city,
                        kind="WAREHOUSE",
                        priority=priority,
                        auto_dispatch=city == "GZ",
                        address=AddressDetails(**CITIES[city]),
                    ),
                )
        async with database.session() as session, session.begin():
            for city, stock in BATCH_STOCK.items():
                for sku, units in stock.items():
                    await receive_stock(
                        session,
                        sku=f"B{sku}-{uid}",
                        location_code=f"B{city}-{uid}",
                        quantity=units,
                        reference=Reference("RECEIPT", text="batch stock"),
                    )
    finally:
        await database.dispose()


async def _place(session, uid: str, orders: list[list[tuple[str, int]]]) -> list[int]:
    from oms_graphql.domain.orders import AddressDetails, LineDetails, NewOrder, create_order

    ids = []
    for lines in orders:
        order, _ = await create_order(
            session,
            NewOrder(
                channel_code="manual",
                currency="CNY",
                paid=True,
                shipping_address=AddressDetails(**HANGZHOU),
                lines=[
                    LineDetails(quantity=units, unit_price=Decimal("10"), sku=f"B{sku}-{uid}") for sku, units in lines
                ],
            ),
        )
        ids.append(order.id)
    return ids


async def _what_allocation_wrote(session, uid: str, order_ids: list[int]) -> dict:
    """Everything the allocation left, with order ids replaced by their place in ``order_ids``."""
    from sqlalchemy import select

    from oms_graphql.db.models import (
        Allocation,
        FulfillmentOrder,
        Location,
        Order,
        OrderEvent,
        OrderLine,
        OutboxEntry,
        Product,
        StockLevel,
        StockMovement,
    )

    index = {order_id: n for n, order_id in enumerate(order_ids)}
    numbers = {
        number: index[order_id]
        for order_id, number in await session.execute(select(Order.id, Order.number).where(Order.id.in_(order_ids)))
    }
    fulfillment = {
        fo_id: index[order_id]
        for fo_id, order_id in await session.execute(
            select(FulfillmentOrder.id, FulfillmentOrder.order_id).where(FulfillmentOrder.order_id.in_(order_ids))
        )
    }
    ours = Product.sku.like(f"%-{uid}")
    levels = sorted(
        (
            await session.execute(
                select(Product.sku, Location.code, StockLevel.on_hand, StockLevel.reserved, StockLevel.sync_version)
                .join(Product, Product.id == StockLevel.product_id)
                .join(Location, Location.id == StockLevel.location_id)
                .where(ours)
            )
        ).all()
    )
    ledger = [
        (sku, code, reason, delta, numbers.get(text))
        for sku, code, reason, delta, text in await session.execute(
            select(
                Product.sku, Location.code, StockMovement.reason, StockMovement.reserved_delta, StockMovement.reference
            )
            .join(Product, Product.id == StockMovement.product_id)
            .join(Location, Location.id == StockMovement.location_id)
            .where(ours, StockMovement.reason == "RESERVE")
            .order_by(StockMovement.id)
        )
    ]
    allocations = sorted(
        (index[order_id], line_no, code, sku, quantity, reason, score)
        for order_id, line_no, code, sku, quantity, reason, score in await session.execute(
            select(
                Allocation.order_id,
                OrderLine.line_no,
                Location.code,
                Product.sku,
                Allocation.quantity,
                Allocation.reason,
                Allocation.score,
            )
            .join(OrderLine, OrderLine.id == Allocation.order_line_id)
            .join(Location, Location.id == Allocation.location_id)
            .join(Product, Product.id == Allocation.product_id)
            .where(Allocation.order_id.in_(order_ids))
        )
    )
    statuses = [
        status
        for _id, status in sorted(
            (await session.execute(select(Order.id, Order.status).where(Order.id.in_(order_ids)))).all()
        )
    ]
    history = [
        (index[order_id], kind, before, after, message)
        for order_id, kind, before, after, message in await session.execute(
            select(
                OrderEvent.order_id, OrderEvent.kind, OrderEvent.from_status, OrderEvent.to_status, OrderEvent.message
            )
            .where(OrderEvent.order_id.in_(order_ids))
            .order_by(OrderEvent.order_id, OrderEvent.id)
        )
    ]
    outbox = []
    for kind, topic, payload in await session.execute(
        select(OutboxEntry.kind, OutboxEntry.topic, OutboxEntry.payload).order_by(OutboxEntry.id)
    ):
        if topic == "stock" and payload["sku"].endswith(f"-{uid}"):
            outbox.append(
                (
                    topic,
                    numbers.get(payload["reference"]),
                    {k: v for k, v in payload.items() if k not in ("at", "reference")},
                )
            )
        elif topic == "order" and payload["orderId"] in index:
            outbox.append(
                (
                    topic,
                    index[payload["orderId"]],
                    payload["kind"],
                    payload["fromStatus"],
                    payload["status"],
                    payload["message"],
                )
            )
        elif kind == "job" and payload.get("order_id") in index:
            outbox.append((topic, index[payload["order_id"]]))
        elif topic == "dispatch_fulfillment_orders" and set(payload["fulfillment_order_ids"]) & set(fulfillment):
            outbox.append((topic, sorted(fulfillment[f] for f in payload["fulfillment_order_ids"])))
        elif topic == "stock_changed":
            outbox.append((topic, payload["product_id"]))
    return {
        "statuses": statuses,
        "allocations": allocations,
        "levels": levels,
        "ledger": ledger,
        "history": history,
        "outbox": sorted(outbox, key=repr),
    }


def test_a_batch_allocated_together_gets_exactly_what_one_by_one_gives(database_url, uid):
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.allocation import allocate_order, allocate_orders

    run_async(_batch_world(database_url, uid))

    async def allocate(together: bool) -> dict:
        # The orders are placed and allocated in one transaction that is rolled back afterwards,
        # so both ways start from the same stock.
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                order_ids = await _place(session, uid, BATCH_ORDERS)
                if together:
                    outcomes = await allocate_orders(session, list(reversed(order_ids)))
                else:
                    outcomes = [await allocate_order(session, order_id) for order_id in order_ids]
                assert [(o.order_id, o.changed) for o in outcomes] == [(order_id, True) for order_id in order_ids]
                wrote = await _what_allocation_wrote(session, uid, order_ids)
                await session.rollback()
                return wrote
        finally:
            await database.dispose()

    one_by_one = run_async(allocate(together=False))
    together = run_async(allocate(together=True))

    assert set(one_by_one["statuses"]) == {"ALLOCATED", "BACKORDERED"}
    assert any(len({row[2] for row in one_by_one["allocations"] if row[0] == n}) > 1 for n in range(8))  # a split
    # One dispatch job for every auto-dispatch fulfillment order of the transaction, either way.
    [dispatch_job] = [entry for entry in one_by_one["outbox"] if entry[0] == "dispatch_fulfillment_orders"]
    assert dispatch_job[1]
    for figure in one_by_one:
        assert together[figure] == one_by_one[figure], figure


def test_a_batch_backorders_exactly_the_orders_that_are_short(database_url, uid):
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.allocation import allocate_orders

    run_async(_batch_world(database_url, uid))
    orders = [[("A", 2)], [("A", 4)], [("A", 3)], [("A", 1), ("B", 1)], [("C", 3)], [("B", 6)]]

    async def scenario() -> tuple[list, dict]:
        database = Database(database_url)
        try:
            # Placed and allocated in one transaction, as the allocation job would not have run yet.
            async with database.session() as session, session.begin():
                order_ids = await _place(session, uid, orders)
                outcomes = await allocate_orders(session, order_ids)
            async with database.session() as session:
                return [(o.status, o.changed) for o in outcomes], await _what_allocation_wrote(session, uid, order_ids)
        finally:
            await database.dispose()

    outcomes, wrote = run_async(scenario())

    # 5 A in all: 2, then 4 is short, then 3; nothing left for the fourth order's A.
    assert outcomes == [
        ("ALLOCATED", True),
        ("BACKORDERED", True),
        ("ALLOCATED", True),
        ("BACKORDERED", True),
        ("ALLOCATED", True),
        ("ALLOCATED", True),
    ]
    backordered = [(n, message) for n, kind, _before, after, message in wrote["history"] if after == "BACKORDERED"]
    assert backordered == [(1, f"Not enough stock of BA-{uid}"), (3, f"Not enough stock of BA-{uid}")]
    assert {n for n, *_ in wrote["allocations"]} == {0, 2, 4, 5}
    reserved = {(sku, code): reserved for sku, code, _on_hand, reserved, _version in wrote["levels"]}
    assert sum(units for (sku, _), units in reserved.items() if sku == f"BA-{uid}") == 5
    assert sum(units for (sku, _), units in reserved.items() if sku == f"BB-{uid}") == 6


def test_backorders_are_served_oldest_first_in_batches_and_never_oversold(admin, uid):
    from datetime import UTC, datetime, timedelta

    sku, where = f"AL-BO-{uid}", warehouse(admin, f"AL-BO-{uid}", "SH")
    add_product(admin, sku)
    now = datetime.now(UTC)
    # Stored in this order, but placed at the channel in another: the one placed first is served first.
    placed_hours_ago = [1, 4, 2, 3, 5]
    waiting = {
        hours: place_order(admin, [(sku, 2, "10.00")], paid=True, placedAt=(now - timedelta(hours=hours)).isoformat())
        for hours in placed_hours_ago
    }
    for order in waiting.values():
        assert allocated(admin, order["id"])["status"] == "BACKORDERED"

    receive(admin, sku, where, 7)  # room for the three placed first (5, 4 and 3 hours ago), and 1 unit over

    def statuses() -> dict[int, str]:
        return {hours: admin(ALLOCATIONS, {"id": o["id"]})["order"]["status"] for hours, o in waiting.items()}

    served = {5: "ALLOCATED", 4: "ALLOCATED", 3: "ALLOCATED", 2: "BACKORDERED", 1: "BACKORDERED"}
    assert eventually(lambda: statuses() == served)
    assert level(admin, sku, where) == {"onHand": 7, "reserved": 6, "available": 1}  # never more than there is
