"""Reservations never oversell: 50 one-unit orders race for 10 units from two OS processes (PostgreSQL)."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from decimal import Decimal

from sqlalchemy import func, select

from tests.conftest import requires_postgres
from tests.support import run_async

PROCESSES = 2
ORDERS_PER_PROCESS = 25
UNITS = 10


async def _place_orders(database_url: str, sku: str, count: int, tag: str) -> None:
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.allocation import allocate_order
    from oms_graphql.domain.orders import AddressDetails, LineDetails, NewOrder, create_order

    database = Database(database_url)

    async def one(index: int) -> None:
        # What the API and the allocation job do, in one transaction per order.
        async with database.session() as session, session.begin():
            order, _ = await create_order(
                session,
                NewOrder(
                    channel_code="manual",
                    currency="CNY",
                    external_id=f"{tag}-{index}",
                    paid=True,
                    shipping_address=AddressDetails(country="CN", line1="1 Race Road"),
                    lines=[LineDetails(quantity=1, unit_price=Decimal("9.90"), sku=sku)],
                ),
            )
            await allocate_order(session, order.id)

    try:
        await asyncio.gather(*(one(index) for index in range(count)))
    finally:
        await database.dispose()


def _worker(database_url: str, sku: str, count: int, tag: str, start: threading.Barrier) -> None:
    start.wait(timeout=60)
    asyncio.run(_place_orders(database_url, sku, count, tag))


async def _prepare(database_url: str, sku: str, code: str) -> None:
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.catalog import LocationDetails, ProductDetails, create_location, create_product
    from oms_graphql.domain.inventory import Reference, receive_stock
    from oms_graphql.domain.orders import AddressDetails, channel_by_code

    database = Database(database_url)
    try:
        async with database.session() as session, session.begin():
            await channel_by_code(session, "manual")
            await create_product(session, ProductDetails(sku=sku, name="Hot item"))
            await create_location(
                session,
                LocationDetails(
                    code=code,
                    name="Race WH",
                    kind="WAREHOUSE",
                    address=AddressDetails(country="CN", line1="1 Race Road"),
                ),
            )
        async with database.session() as session, session.begin():
            await receive_stock(
                session, sku=sku, location_code=code, quantity=UNITS, reference=Reference("RECEIPT", text="race stock")
            )
    finally:
        await database.dispose()


async def _lowest_available(database_url: str, sku: str, stop: threading.Event) -> int:
    """Sample available while the race runs; return the lowest value seen."""
    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Product, StockLevel

    database = Database(database_url)
    lowest = UNITS
    try:
        while not stop.is_set():
            async with database.session() as session:
                value = await session.scalar(
                    select(StockLevel.on_hand - StockLevel.reserved - StockLevel.safety_stock)
                    .join(Product, Product.id == StockLevel.product_id)
                    .where(Product.sku == sku)
                )
            lowest = min(lowest, int(value))
            await asyncio.sleep(0.005)
    finally:
        await database.dispose()
    return lowest


async def _outcome(database_url: str, sku: str) -> tuple[dict[str, int], tuple[int, int], int]:
    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Order, OrderLine, Product, StockLevel, StockMovement

    database = Database(database_url)
    try:
        async with database.session() as session:
            statuses = dict(
                (
                    await session.execute(
                        select(Order.status, func.count())
                        .where(Order.id.in_(select(OrderLine.order_id).where(OrderLine.sku == sku)))
                        .group_by(Order.status)
                    )
                ).all()
            )
            level = (
                await session.execute(
                    select(func.sum(StockLevel.on_hand), func.sum(StockLevel.reserved))
                    .join(Product, Product.id == StockLevel.product_id)
                    .where(Product.sku == sku)
                )
            ).one()
            reserve_rows = await session.scalar(
                select(func.count())
                .select_from(StockMovement)
                .join(Product, Product.id == StockMovement.product_id)
                .where(Product.sku == sku, StockMovement.reason == "RESERVE")
            )
    finally:
        await database.dispose()
    return statuses, (int(level[0]), int(level[1])), int(reserve_rows or 0)


@requires_postgres
def test_fifty_concurrent_orders_from_two_processes_reserve_exactly_the_ten_units_there_are(database_url, uid):
    sku, code = f"HOT-{uid}", f"RACE-{uid}"
    run_async(_prepare(database_url, sku, code))

    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(PROCESSES)
    workers = [
        spawn.Process(target=_worker, args=(database_url, sku, ORDERS_PER_PROCESS, f"{uid}-p{n}", start))
        for n in range(PROCESSES)
    ]
    stop = threading.Event()
    lowest: list[int] = []
    sampler = threading.Thread(target=lambda: lowest.append(asyncio.run(_lowest_available(database_url, sku, stop))))
    sampler.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    stop.set()
    sampler.join(timeout=30)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    statuses, (on_hand, reserved), reserve_rows = run_async(_outcome(database_url, sku))
    assert statuses == {"ALLOCATED": UNITS, "BACKORDERED": PROCESSES * ORDERS_PER_PROCESS - UNITS}
    assert (on_hand, reserved) == (UNITS, UNITS)
    assert reserve_rows == UNITS
    assert lowest and lowest[0] >= 0
    # The autouse fixture then checks every level against the ledger.


# --- batches of orders over the same hot SKUs ----------------------------------

BATCH_PROCESSES = 3
BATCH_ORDERS_PER_PROCESS = 30
BATCH_SIZE = 10
HOT_UNITS = 10  # of each hot SKU at each of the two locations


async def _prepare_hot(database_url: str, skus: list[str], codes: list[str]) -> None:
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.catalog import LocationDetails, ProductDetails, create_location, create_product
    from oms_graphql.domain.inventory import Reference, receive_stock
    from oms_graphql.domain.orders import AddressDetails, channel_by_code

    database = Database(database_url)
    try:
        async with database.session() as session, session.begin():
            await channel_by_code(session, "manual")
            for sku in skus:
                await create_product(session, ProductDetails(sku=sku, name="Hot item"))
            for code in codes:
                await create_location(
                    session,
                    LocationDetails(
                        code=code,
                        name="Race WH",
                        kind="WAREHOUSE",
                        auto_dispatch=False,
                        address=AddressDetails(country="CN", line1="1 Race Road"),
                    ),
                )
        async with database.session() as session, session.begin():
            for sku in skus:
                for code in codes:
                    await receive_stock(
                        session, sku=sku, location_code=code, quantity=HOT_UNITS, reference=Reference("RECEIPT")
                    )
    finally:
        await database.dispose()


async def _place_and_allocate_batches(database_url: str, skus: list[str], tag: str, start) -> None:
    """Place this process's orders (both hot SKUs, one unit each), then allocate them in batches."""
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.allocation import allocate_orders
    from oms_graphql.domain.orders import AddressDetails, LineDetails, NewOrder, create_order

    database = Database(database_url)
    try:
        async with database.session() as session, session.begin():
            order_ids = []
            for index in range(BATCH_ORDERS_PER_PROCESS):
                order, _ = await create_order(
                    session,
                    NewOrder(
                        channel_code="manual",
                        currency="CNY",
                        external_id=f"{tag}-{index}",
                        paid=True,
                        shipping_address=AddressDetails(country="CN", line1="1 Race Road"),
                        # Each process lists the SKUs in its own order: the lock order is still one.
                        lines=[LineDetails(quantity=1, unit_price=Decimal("9.90"), sku=sku) for sku in skus],
                    ),
                )
                order_ids.append(order.id)
        start.wait(timeout=60)
        for first in range(0, len(order_ids), BATCH_SIZE):
            async with database.session() as session, session.begin():
                await allocate_orders(session, order_ids[first : first + BATCH_SIZE])
    finally:
        await database.dispose()


def _batch_worker(database_url: str, skus: list[str], tag: str, start) -> None:
    asyncio.run(_place_and_allocate_batches(database_url, skus, tag, start))


@requires_postgres
def test_concurrent_batches_over_the_same_hot_skus_never_oversell_nor_deadlock(database_url, uid):
    skus, codes = [f"HOT-A-{uid}", f"HOT-B-{uid}"], [f"RACE-1-{uid}", f"RACE-2-{uid}"]
    run_async(_prepare_hot(database_url, skus, codes))

    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(BATCH_PROCESSES)
    workers = [
        spawn.Process(target=_batch_worker, args=(database_url, skus[:: 1 if n % 2 else -1], f"{uid}-b{n}", start))
        for n in range(BATCH_PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    # A deadlock would have failed a process (PostgreSQL aborts one of the two transactions).
    assert [worker.exitcode for worker in workers] == [0] * BATCH_PROCESSES

    # 2 × HOT_UNITS of each SKU and every order wants one of each: exactly that many orders get theirs.
    for sku in skus:
        statuses, (on_hand, reserved), reserve_rows = run_async(_outcome(database_url, sku))
        assert statuses == {
            "ALLOCATED": 2 * HOT_UNITS,
            "BACKORDERED": BATCH_PROCESSES * BATCH_ORDERS_PER_PROCESS - 2 * HOT_UNITS,
        }
        assert (on_hand, reserved) == (2 * HOT_UNITS, 2 * HOT_UNITS)
        assert reserve_rows >= 2 * HOT_UNITS
    # The autouse fixture then checks every level against the ledger.
