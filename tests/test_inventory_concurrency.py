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
                    select(StockLevel.on_hand, StockLevel.reserved)
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
