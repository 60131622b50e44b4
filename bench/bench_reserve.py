"""Reservation throughput on PostgreSQL: the ledger's reserve path beside a raw conditional UPDATE.

    OMS_BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test .venv/bin/python bench/bench_reserve.py

Creates a fresh database next to the one in the URL, migrates it, runs, drops it.

(a) hot SKU: 8 worker processes reserve one unit each, one transaction per
    reservation, until a SKU with 5,000 units is exhausted. Prints
    reservations/s and the oversell count (must be 0).
(b) 10,000 SKUs: 8 workers reserve one unit of a uniformly random SKU, 20,000
    reservations in all.

Each is run twice in the same database: through ``oms_graphql.domain.inventory``
(guarded UPDATE + ledger row + outbox event, as an order allocation does) and
as a raw-SQL conditional UPDATE (the floor any implementation pays), and the
ratio is printed.
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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
WORKERS = 8
HOT_UNITS = 5_000
SKUS = 10_000
UNIFORM_RESERVATIONS = 20_000
RAW_RESERVE = (
    "UPDATE stock_levels SET reserved = reserved + 1 "
    "WHERE id = :id AND on_hand - reserved - safety_stock >= 1 RETURNING reserved"
)


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _seed(url: str) -> None:
    """One location; HOT and HOT-RAW with 5,000 units each; U00000.. (ledger) and R00000.. (raw) with 1,000 each."""
    from sqlalchemy import insert, select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Location, Product, StockLevel, StockMovement

    database = Database(url)
    try:
        async with database.session() as session, session.begin():
            location = Location(code="BENCH", name="Bench WH", kind="WAREHOUSE", country="CN", line1="1 Bench Rd")
            session.add(location)
            await session.flush()
            skus = [("HOT", HOT_UNITS), ("HOT-RAW", HOT_UNITS)]
            skus += [(f"{prefix}{n:05d}", 1_000) for prefix in "UR" for n in range(SKUS)]
            await session.execute(insert(Product), [{"sku": sku, "name": sku, "handling": []} for sku, _ in skus])
            ids = dict((await session.execute(select(Product.sku, Product.id))).all())
            rows = [{"product_id": ids[sku], "location_id": location.id, "on_hand": units} for sku, units in skus]
            await session.execute(insert(StockLevel), rows)
            # The opening stock is a RECEIPT in the ledger, so `verify` holds afterwards.
            await session.execute(
                insert(StockMovement),
                [
                    {
                        "product_id": r["product_id"],
                        "location_id": r["location_id"],
                        "reason": "RECEIPT",
                        "on_hand_delta": r["on_hand"],
                        "reserved_delta": 0,
                        "in_transit_delta": 0,
                    }
                    for r in rows
                ],
            )
    finally:
        await database.dispose()


async def _work(url: str, mode: str, skus: list[str], quota: int | None, seed: int) -> tuple[int, int]:
    """Reserve until the SKU runs out (quota None) or ``quota`` reservations; (successes, statements in them)."""
    from sqlalchemy import event, select, text

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Location, Product, StockLevel
    from oms_graphql.domain.inventory import Reference, reserve_stock

    database = Database(url)
    rng = random.Random(seed)
    done = 0
    statements = [0]

    @event.listens_for(database.engine.sync_engine, "before_cursor_execute")
    def _count(*_args) -> None:
        statements[0] += 1

    try:
        async with database.session() as session:
            location = await session.scalar(select(Location).where(Location.code == "BENCH"))
            products = list((await session.scalars(select(Product).where(Product.sku.in_(skus)))).all())
            level_ids = dict(
                (
                    await session.execute(
                        select(StockLevel.product_id, StockLevel.id).where(StockLevel.location_id == location.id)
                    )
                ).all()
            )
        assert location is not None and products
        reference = Reference("BENCH", text="bench reservation", actor="bench")
        statements[0] = 0  # the reservations' own statements (BEGIN and COMMIT are not counted)
        while quota is None or done < quota:
            product = products[0] if len(products) == 1 else rng.choice(products)
            async with database.session() as session, session.begin():
                if mode == "ledger":
                    ok = (
                        await reserve_stock(
                            session, product=product, location=location, quantity=1, reference=reference
                        )
                        is not None
                    )
                else:
                    ok = (await session.execute(text(RAW_RESERVE), {"id": level_ids[product.id]})).first() is not None
            if not ok:
                if quota is None:
                    break
                continue
            done += 1
    finally:
        await database.dispose()
    return done, statements[0]


def _worker(url: str, mode: str, skus: list[str], quota: int | None, seed: int, start, results) -> None:
    start.wait()
    results.put(asyncio.run(_work(url, mode, skus, quota, seed)))


@dataclass
class Run:
    reservations: int
    seconds: float
    statements: int

    @property
    def per_reservation(self) -> float:
        return self.statements / max(1, self.reservations)

    @property
    def rate(self) -> float:
        return self.reservations / self.seconds


def _race(url: str, mode: str, skus: list[str], quota_each: int | None) -> Run:
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(WORKERS + 1), spawn.Queue()
    workers = [
        spawn.Process(target=_worker, args=(url, mode, skus, quota_each, n, start, results)) for n in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    time.sleep(1.5)  # let every worker import and connect before the clock starts
    start.wait()
    began = time.perf_counter()
    counts = [results.get(timeout=600) for _ in workers]
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    return Run(sum(n for n, _ in counts), elapsed, sum(n for _, n in counts))


async def _hot_figures(url: str, sku: str) -> tuple[int, int, int]:
    from sqlalchemy import func, select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Product, StockLevel, StockMovement

    database = Database(url)
    try:
        async with database.session() as session:
            on_hand, reserved = (
                await session.execute(
                    select(StockLevel.on_hand, StockLevel.reserved)
                    .join(Product, Product.id == StockLevel.product_id)
                    .where(Product.sku == sku)
                )
            ).one()
            ledger = await session.scalar(
                select(func.coalesce(func.sum(StockMovement.reserved_delta), 0))
                .join(Product, Product.id == StockMovement.product_id)
                .where(Product.sku == sku)
            )
    finally:
        await database.dispose()
    return int(on_hand), int(reserved), int(ledger)


async def _verify(url: str) -> int:
    """Ledger differences of the SKUs reserved through the ledger (the raw-SQL ones bypass it on purpose)."""
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.inventory import verify_ledger

    database = Database(url)
    try:
        async with database.session() as session:
            return len([d for d in await verify_ledger(session) if d.sku == "HOT" or d.sku.startswith("U")])
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("OMS_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--hot-only", action="store_true", help="run (a) only")
    args = parser.parse_args()
    from oms_graphql.db.migrate import upgrade

    name = f"oms_bench_{uuid.uuid4().hex[:8]}"
    prefix = args.url.rpartition("/")[0]
    url = f"{prefix}/{name}"
    asyncio.run(_admin(args.url, f'CREATE DATABASE "{name}"'))
    try:
        upgrade(url)
        asyncio.run(_seed(url))
        print(f"PostgreSQL, {WORKERS} worker processes, one transaction per reservation\n")

        ledger = _race(url, "ledger", ["HOT"], None)
        raw = _race(url, "raw", ["HOT-RAW"], None)
        on_hand, reserved, ledger_reserved = asyncio.run(_hot_figures(url, "HOT"))
        raw_on_hand, raw_reserved, _ = asyncio.run(_hot_figures(url, "HOT-RAW"))
        oversell = max(0, ledger.reservations - HOT_UNITS) + max(0, reserved - on_hand)
        raw_oversell = max(0, raw.reservations - HOT_UNITS) + max(0, raw_reserved - raw_on_hand)
        print(f"(a) hot SKU, {HOT_UNITS:,} units")
        print(
            f"    ledger  {ledger.reservations:6,} reserved in {ledger.seconds:6.2f}s  {ledger.rate:8,.0f}/s  "
            f"oversell {oversell}  (reserved {reserved}, ledger says {ledger_reserved})  "
            f"{ledger.per_reservation:.2f} statements/reservation"
        )
        print(
            f"    raw SQL {raw.reservations:6,} reserved in {raw.seconds:6.2f}s  {raw.rate:8,.0f}/s  "
            f"oversell {raw_oversell}  {raw.per_reservation:.2f} statements/reservation"
        )
        print(f"    ledger / raw = {ledger.rate / raw.rate:.2f}")

        if not args.hot_only:
            each = UNIFORM_RESERVATIONS // WORKERS
            ledger_u = _race(url, "ledger", [f"U{n:05d}" for n in range(SKUS)], each)
            raw_u = _race(url, "raw", [f"R{n:05d}" for n in range(SKUS)], each)
            print(f"\n(b) {SKUS:,} SKUs, uniform random, {UNIFORM_RESERVATIONS:,} reservations per run")
            print(f"    ledger  {ledger_u.seconds:6.2f}s  {ledger_u.rate:8,.0f}/s")
            print(f"    raw SQL {raw_u.seconds:6.2f}s  {raw_u.rate:8,.0f}/s")
            print(f"    ledger / raw = {ledger_u.rate / raw_u.rate:.2f}")

        differences = asyncio.run(_verify(url))
        print(f"\nledger differences on the ledger-reserved SKUs: {differences}")
        if oversell or differences:
            sys.exit("OVERSOLD")
    finally:
        terminate = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        asyncio.run(_admin(args.url, terminate))
        asyncio.run(_admin(args.url, f'DROP DATABASE IF EXISTS "{name}"'))


if __name__ == "__main__":
    main()
