"""Allocation on PostgreSQL: the engine beside naive "first location with stock" and raw SQL.

    OMS_BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test .venv/bin/python bench/bench_allocation.py

Creates a fresh database next to the one in the URL, migrates it, seeds it, runs, drops it.

Seed: 20 warehouses in 20 Chinese cities (random priorities), 300 SKUs of 0.1-6 kg,
each stocked in 6-12 of the warehouses, and ``--orders`` CONFIRMED orders of 1-4
lines whose addresses are province and city names only (no coordinates: the
packaged gazetteer places them), drawn from every prefecture with the large
cities weighted up.

The same orders are allocated three times, the stock reset in between, by
``--workers`` processes, one transaction per order:

1. **engine**: ``domain.allocation.allocate_order`` with the default planner;
2. **naive**: the same call with a ranking that puts locations in priority order,
   so each line comes from the first location with stock (the first version);
3. **raw SQL**: the naive choice in hand-written asyncpg statements (lock the order,
   read lines and stock, guarded UPDATEs, insert fulfillment orders and
   allocations, set the status; no ledger rows, events or outbox): the floor.

For 1 and 2 it prints allocations/s, the split rate (orders shipped from more than
one location) and the total estimated shipping cost, recomputed afterwards from the
stored fulfillment orders with the rate table of ``domain.delivery`` (weight, kind,
distance band), and the % saved by the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
WAREHOUSE_CITIES = [
    ("上海", "上海"), ("北京", "北京"), ("广东", "广州"), ("广东", "深圳"), ("四川", "成都"),
    ("湖北", "武汉"), ("陕西", "西安"), ("浙江", "杭州"), ("江苏", "南京"), ("天津", "天津"),
    ("重庆", "重庆"), ("河南", "郑州"), ("湖南", "长沙"), ("辽宁", "沈阳"), ("山东", "青岛"),
    ("福建", "厦门"), ("云南", "昆明"), ("黑龙江", "哈尔滨"), ("新疆", "乌鲁木齐"), ("安徽", "合肥"),
]  # fmt: skip
BIG_CITIES = {city for _, city in WAREHOUSE_CITIES} | {"苏州", "东莞", "佛山", "宁波", "温州", "无锡", "济南", "石家庄"}
SKUS = 300
UNITS = 400
BATCH = 100  # orders per transaction in batch mode: a channel page


def naive_rank(request, candidates):
    """The first version's order: by priority, then code (each line from the first with stock)."""
    return [c.code for c in sorted(candidates, key=lambda c: (c.priority, c.code))]


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _destinations(rng: random.Random, count: int) -> list[tuple[str, str]]:
    from oms_graphql.domain import geo

    gazetteer = geo.gazetteer()
    provinces = {place.code: place.name for place in gazetteer.provinces}
    places = [(provinces.get(place.parent, ""), place.name) for place in gazetteer.prefectures]
    weights = [20 if any(name.startswith(big) for big in BIG_CITIES) else 1 for _, name in places]
    return rng.choices(places, weights=weights, k=count)


async def _seed(url: str, orders: int, seed: int) -> None:
    from sqlalchemy import insert, select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import (
        Address,
        Channel,
        Location,
        Order,
        OrderLine,
        Product,
        StockLevel,
        StockMovement,
        utcnow,
    )

    rng = random.Random(seed)
    database = Database(url)
    try:
        async with database.session() as session, session.begin():
            await session.execute(
                insert(Location),
                [
                    {
                        "code": f"WH-{n:02d}",
                        "name": f"{city} warehouse",
                        "kind": "WAREHOUSE",
                        "country": "CN",
                        "region": region,
                        "city": city,
                        "line1": "1 Logistics Park",
                        "priority": rng.randint(1, 100),
                        "auto_dispatch": False,
                        "regions_served": [],
                    }
                    for n, (region, city) in enumerate(WAREHOUSE_CITIES)
                ],
            )
            await session.execute(
                insert(Product),
                [
                    {"sku": f"SKU-{n:04d}", "name": f"Item {n}", "weight_grams": rng.randint(100, 6000), "handling": []}
                    for n in range(SKUS)
                ],
            )
            location_ids = list((await session.scalars(select(Location.id).order_by(Location.id))).all())
            product_ids = list((await session.scalars(select(Product.id).order_by(Product.id))).all())
            levels = [
                {"product_id": product_id, "location_id": location_id, "on_hand": UNITS}
                for product_id in product_ids
                for location_id in rng.sample(location_ids, rng.randint(6, 12))
            ]
            await session.execute(insert(StockLevel), levels)
            await session.execute(
                insert(StockMovement),
                [
                    {
                        "product_id": level["product_id"],
                        "location_id": level["location_id"],
                        "reason": "RECEIPT",
                        "on_hand_delta": UNITS,
                        "reserved_delta": 0,
                        "in_transit_delta": 0,
                    }
                    for level in levels
                ],
            )
            channel_id = await session.scalar(select(Channel.id).where(Channel.code == "manual"))
            places = _destinations(rng, orders)
            address_ids = (
                await session.scalars(
                    insert(Address).returning(Address.id),
                    [
                        {"country": "CN", "region": region, "city": city, "line1": f"{n} Main St", "name": "Buyer"}
                        for n, (region, city) in enumerate(places)
                    ],
                )
            ).all()
            now = utcnow()
            order_ids = (
                await session.scalars(
                    insert(Order).returning(Order.id),
                    [
                        {
                            "number": f"B{n:08d}",
                            "channel_id": channel_id,
                            "status": "CONFIRMED",
                            "shipping_address_id": address_id,
                            "currency": "CNY",
                            "subtotal": Decimal(0),
                            "discount": Decimal(0),
                            "shipping_fee": Decimal(0),
                            "tax": Decimal(0),
                            "total": Decimal(0),
                            "placed_at": now,
                            "paid_at": now,
                        }
                        for n, address_id in enumerate(address_ids)
                    ],
                )
            ).all()
            lines = []
            for order_id in order_ids:
                count = rng.choices((1, 2, 3, 4), weights=(50, 30, 15, 5))[0]
                for line_no, product_id in enumerate(rng.sample(product_ids, count), start=1):
                    lines.append(
                        {
                            "order_id": order_id,
                            "line_no": line_no,
                            "product_id": product_id,
                            "sku": f"SKU-{product_id}",
                            "quantity": rng.choices((1, 2, 3), weights=(70, 20, 10))[0],
                            "unit_price": Decimal("10"),
                        }
                    )
            await session.execute(insert(OrderLine), lines)
    finally:
        await database.dispose()


async def _reset(url: str) -> None:
    """Back to every order CONFIRMED and no stock reserved (the RECEIPT ledger rows stay)."""
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with connection.transaction():
            for statement in (
                "DELETE FROM allocations",
                "DELETE FROM fulfillment_orders",
                "DELETE FROM stock_movements WHERE reason <> 'RECEIPT'",
                "DELETE FROM order_events",
                "DELETE FROM outbox",
                "DELETE FROM alerts",
                "UPDATE stock_levels SET reserved = 0, low_stock_alerted = false",
                "UPDATE orders SET status = 'CONFIRMED'",
            ):
                await connection.execute(statement)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


def _count_statements(database) -> list[int]:
    """A counter of the statements the engine sends (SQLAlchemy's before_cursor_execute)."""
    from sqlalchemy import event

    counter = [0]

    @event.listens_for(database.engine.sync_engine, "before_cursor_execute")
    def _count(*_args) -> None:
        counter[0] += 1

    return counter


async def _allocate(url: str, mode: str, order_ids: list[int]) -> tuple[int, int]:
    """One transaction per order, or per ``BATCH`` orders in batch mode; (allocated, statements)."""
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.allocation import allocate_order, allocate_orders

    database = Database(url)
    statements = _count_statements(database)
    done = 0
    try:
        if mode == "batch":
            for start in range(0, len(order_ids), BATCH):
                async with database.session() as session, session.begin():
                    outcomes = await allocate_orders(session, order_ids[start : start + BATCH])
                done += sum(outcome.status == "ALLOCATED" for outcome in outcomes)
        else:
            for order_id in order_ids:
                async with database.session() as session, session.begin():
                    outcome = await allocate_order(session, order_id, rank=naive_rank if mode == "naive" else None)
                done += outcome.status == "ALLOCATED"
    finally:
        await database.dispose()
    return done, statements[0]


async def _allocate_raw(url: str, order_ids: list[int]) -> tuple[int, int]:
    """The naive choice in plain statements: the cost floor of any allocation; (allocated, statements)."""
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    done = statements = 0
    try:
        for order_id in order_ids:
            async with connection.transaction():
                status = await connection.fetchval("SELECT status FROM orders WHERE id = $1 FOR UPDATE", order_id)
                if status != "CONFIRMED":
                    continue
                lines = await connection.fetch(
                    "SELECT id, product_id, quantity FROM order_lines WHERE order_id = $1", order_id
                )
                stock = await connection.fetch(
                    "SELECT l.id, l.priority, l.code, s.product_id, s.on_hand - s.reserved - s.safety_stock AS free "
                    "FROM stock_levels s JOIN locations l ON l.id = s.location_id "
                    "WHERE s.product_id = ANY($1::bigint[]) AND l.active AND l.can_ship "
                    "ORDER BY l.priority, l.code",
                    [line["product_id"] for line in lines],
                )
                takes, tried = [], 0
                for line in lines:
                    want = line["quantity"]
                    for row in stock:
                        if row["product_id"] == line["product_id"] and row["free"] > 0 and want:
                            take = min(want, row["free"])
                            tried += 1
                            ok = await connection.fetchval(
                                "UPDATE stock_levels SET reserved = reserved + $1 WHERE product_id = $2 AND "
                                "location_id = $3 AND on_hand - reserved - safety_stock >= $1 RETURNING 1",
                                take,
                                line["product_id"],
                                row["id"],
                            )
                            if ok:
                                takes.append((line, row["id"], take))
                                want -= take
                if not takes:
                    continue
                fulfillment = {}
                for location_id in dict.fromkeys(location for _, location, _ in takes):
                    fulfillment[location_id] = await connection.fetchval(
                        "INSERT INTO fulfillment_orders (order_id, location_id, status, created_at) "
                        "VALUES ($1, $2, 'OPEN', now()) RETURNING id",
                        order_id,
                        location_id,
                    )
                await connection.executemany(
                    "INSERT INTO allocations (order_id, order_line_id, fulfillment_order_id, location_id, "
                    "product_id, quantity, shipped_quantity, status, created_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, 0, 'RESERVED', now())",
                    [
                        (order_id, line["id"], fulfillment[location], location, line["product_id"], take)
                        for line, location, take in takes
                    ],
                )
                await connection.execute("UPDATE orders SET status = 'ALLOCATED' WHERE id = $1", order_id)
                done += 1
                # Counted as SQLAlchemy counts them (BEGIN and COMMIT are not): the lock, lines, stock,
                # one UPDATE per take tried, the fulfillment orders, the allocations (one executemany), the status.
                statements += 5 + tried + len(fulfillment)
    finally:
        await connection.close()
    return done, statements


def _worker(url: str, mode: str, order_ids: list[int], start, results) -> None:
    start.wait()
    runner = _allocate_raw(url, order_ids) if mode == "raw" else _allocate(url, mode, order_ids)
    results.put(asyncio.run(runner))


@dataclass
class Run:
    allocated: int
    seconds: float
    statements: int
    orders: int

    @property
    def per_order(self) -> float:
        return self.statements / self.orders

    @property
    def rate(self) -> float:
        return self.allocated / self.seconds


def _race(url: str, mode: str, order_ids: list[int], workers: int) -> Run:
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(workers + 1), spawn.Queue()
    processes = [
        spawn.Process(target=_worker, args=(url, mode, order_ids[n::workers], start, results)) for n in range(workers)
    ]
    for process in processes:
        process.start()
    time.sleep(2.0)  # every worker imports and connects before the clock starts
    start.wait()
    began = time.perf_counter()
    counts = [results.get(timeout=3600) for _ in processes]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join()
    return Run(sum(n for n, _ in counts), elapsed, sum(n for _, n in counts), len(order_ids))


@dataclass
class Outcome:
    orders: int
    split: int
    cost: Decimal
    unpriced: int


async def _outcome(url: str) -> Outcome:
    """What the stored fulfillment orders cost to ship, by the rate table; and how many split."""
    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Address, Allocation, FulfillmentOrder, Location, Order, Product
    from oms_graphql.domain import delivery, geo
    from oms_graphql.plugins.carrier_contract import DeliveryKind

    database = Database(url)
    try:
        async with database.session() as session:
            locations = {location.id: geo.point_of(location) for location in (await session.scalars(select(Location)))}
            weights = dict((await session.execute(select(Product.id, Product.weight_grams))).all())
            rows = await session.execute(
                select(FulfillmentOrder.id, FulfillmentOrder.order_id, FulfillmentOrder.location_id, Address)
                .join(Order, Order.id == FulfillmentOrder.order_id)
                .join(Address, Address.id == Order.shipping_address_id)
            )
            parcels: dict[int, int] = defaultdict(int)
            for fo_id, product_id, quantity in await session.execute(
                select(Allocation.fulfillment_order_id, Allocation.product_id, Allocation.quantity)
            ):
                parcels[fo_id] += (weights[product_id] or 0) * quantity
            per_order: dict[int, int] = defaultdict(int)
            cost, unpriced = Decimal(0), 0
            points: dict[int, geo.Point | None] = {}
            for fo_id, order_id, location_id, address in rows:
                per_order[order_id] += 1
                if address.id not in points:
                    points[address.id] = geo.point_of(address)
                start, end = locations[location_id], points[address.id]
                km = geo.distance_km(start, end) if start and end else None
                unpriced += km is None
                parcel = delivery.Parcel(parcels[fo_id], 0, frozenset())
                cost += delivery.estimate_price(DeliveryKind.STANDARD, parcel, "CNY", km) or 0
    finally:
        await database.dispose()
    return Outcome(len(per_order), sum(1 for n in per_order.values() if n > 1), cost, unpriced)


async def _verify(url: str) -> int:
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.inventory import verify_ledger

    database = Database(url)
    try:
        async with database.session() as session:
            return len(await verify_ledger(session))
    finally:
        await database.dispose()


async def _order_ids(url: str) -> list[int]:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return [row["id"] for row in await connection.fetch("SELECT id FROM orders ORDER BY id")]
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("OMS_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--modes", default="engine,batch,naive,raw", help="which runs, comma-separated (raw always)")
    args = parser.parse_args()
    from oms_graphql.db.migrate import upgrade

    name = f"oms_bench_{uuid.uuid4().hex[:8]}"
    url = f"{args.url.rpartition('/')[0]}/{name}"
    asyncio.run(_admin(args.url, f'CREATE DATABASE "{name}"'))
    try:
        upgrade(url)
        print(f"seeding {args.orders:,} orders, {len(WAREHOUSE_CITIES)} warehouses, {SKUS} SKUs …", flush=True)
        asyncio.run(_seed(url, args.orders, args.seed))
        order_ids = asyncio.run(_order_ids(url))
        print(f"PostgreSQL, {args.workers} worker processes, one transaction per order (batch: per {BATCH})\n")
        results = {}
        differences: dict[str, int] = {}
        modes = [mode for mode in ("engine", "batch", "naive") if mode in args.modes.split(",")] + ["raw"]
        for mode in modes:
            asyncio.run(_reset(url))
            run = _race(url, mode, order_ids, args.workers)
            results[mode] = (run, asyncio.run(_outcome(url)))
            if mode != "raw":  # raw SQL writes no ledger rows on purpose
                differences[mode] = asyncio.run(_verify(url))
            print(
                f"{mode:7} {run.allocated:7,} allocated in {run.seconds:6.1f}s  {run.rate:7,.0f}/s  "
                f"{run.per_order:5.2f} statements/order",
                flush=True,
            )
        raw = results["raw"][0]
        print()
        print("| allocation | orders/s | time / raw | statements/order | split rate | est. shipping cost | per order |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for mode, label in (
            ("engine", "engine, one order per transaction"),
            ("batch", f"engine, {BATCH} orders per transaction (allocate_orders)"),
            ("naive", "naive (first with stock)"),
        ):
            if mode not in results:
                continue
            run, out = results[mode]
            print(
                f"| {label} | {run.rate:,.0f} | {raw.rate / run.rate:.2f}× | {run.per_order:.2f} | "
                f"{out.split / out.orders:.1%} | ¥{out.cost:,.2f} | ¥{out.cost / out.orders:.2f} |"
            )
        print(f"| raw SQL (naive choice, no ledger) | {raw.rate:,.0f} | 1.00× | {raw.per_order:.2f} | | | |")
        outcomes = {mode: out for mode, (_run, out) in results.items() if mode != "raw"}
        if "engine" in outcomes and "naive" in outcomes:
            saved = (outcomes["naive"].cost - outcomes["engine"].cost) / outcomes["naive"].cost
            print(f"\nengine saves {saved:.1%} of the estimated shipping cost against naive")
        print("split orders: " + ", ".join(f"{mode} {out.split:,}" for mode, out in outcomes.items()))
        print("allocated orders: " + ", ".join(f"{mode} {out.orders:,}" for mode, out in outcomes.items()))
        if "engine" in outcomes:
            print(f"destinations the gazetteer could not place: {outcomes['engine'].unpriced}")
        print("ledger differences after each run: " + ", ".join(f"{m} {n}" for m, n in differences.items()))
        if any(differences.values()):
            sys.exit("LEDGER DIFFERS")
    finally:
        asyncio.run(
            _admin(args.url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        )
        asyncio.run(_admin(args.url, f'DROP DATABASE IF EXISTS "{name}"'))


if __name__ == "__main__":
    main()
