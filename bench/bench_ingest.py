"""Channel ingestion end to end: four fake marketplaces → pulls → jobs → ALLOCATED orders.

    python bench/bench_ingest.py                    # 20,000 orders, PostgreSQL + Redis at 127.0.0.1
    python bench/bench_ingest.py --orders 2000      # a quick run

It creates a fresh PostgreSQL database (dropped at the end unless --keep), starts the
four fake marketplaces (Taobao, JD, Amazon, POS) in this process and loads them with
``--orders`` orders spread evenly, stamped as changed in the last few minutes (so even
Amazon, which lists orders only two minutes after their last change, shows all of them
at once). It then starts ``--workers`` worker processes on Redis (``bench/bench_worker.py``:
`oms worker` with Amazon's real API quotas lifted for the fake) and creates the four
channels; the scheduler inside the workers does the rest. It waits until every order is
ALLOCATED and prints:

- end-to-end orders/s: orders / (last ALLOCATED − channels created);
- lag to ALLOCATED, p50/p99: from the order's creation time at the channel, and from the
  moment the OMS could first see it (the channels' creation);
- lost (orders at the fakes with no order in the OMS, or never ALLOCATED) and duplicated
  (more than one OMS order for a channel order) counts;
- a raw bulk-insert baseline in the same database: the same number of orders and lines
  inserted with executemany in one transaction (no parsing, no jobs, no allocation).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from tests.channel_support import amazon_order  # noqa: E402
from tests.fakes import amazon, jd, pos, taobao  # noqa: E402
from tests.fakes.server import serve  # noqa: E402

SKUS = [f"ING-{n:03d}" for n in range(200)]
POS_LOCATION = "L8FAKE2Q3R4S5"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# --- loading the fakes -----------------------------------------------------


def load_fakes(per_channel: int, now: datetime, rng: random.Random):
    """Fill the four fakes; returns their states and {(kind, external id): created at the channel}."""
    created: dict[tuple[str, str], datetime] = {}
    stamp = lambda: now - timedelta(seconds=rng.uniform(135, 175))  # noqa: E731

    tb = taobao.TaobaoState(load_samples=False)
    for _ in range(per_channel):
        tid = tb.add_order()
        when = stamp()
        trade = tb.trades[tid]
        trade["created"] = trade["modified"] = taobao.top_time(when)
        trade["pay_time"] = taobao.top_time(when)
        for line in trade["orders"]["order"]:
            line["outer_sku_id"] = rng.choice(SKUS)
        created[("taobao", tid)] = when.replace(microsecond=0)

    jd_state = jd.JdState(load_samples=False)
    for _ in range(per_channel):
        order_id = jd_state.add_order()
        when = stamp()
        order = jd_state.orders[order_id]
        order["orderStartTime"] = order["modified"] = jd.jd_time(when)
        order["paymentConfirmTime"] = jd.jd_time(when)
        for item in order["itemInfoList"]:
            item["outerSkuId"] = rng.choice(SKUS)
        created[("jd", order_id)] = when.replace(microsecond=0)

    amz = amazon.AmazonState()
    for n in range(per_channel):
        order_id = f"{900 + n // 10_000_000:03d}-{n // 10_000:07d}-{n % 10_000:07d}"
        order, items = amazon_order(order_id, sku=rng.choice(SKUS))
        when = stamp()
        order["LastUpdateDate"] = amazon.amazon_time(when)
        order["PurchaseDate"] = amazon.amazon_time(when)
        amz.add_order(order, items)
        created[("amazon", order_id)] = when.replace(microsecond=0)

    pos_state = pos.PosState()
    sample = pos.load_sample("retrieve_order.json")["order"]
    for n in range(per_channel):
        order = copy.deepcopy(sample)
        when = stamp()
        order["id"] = f"BENCH{n:07d}{uuid.uuid4().hex[:10]}"
        order["created_at"] = order["updated_at"] = pos.square_time(when)
        order["line_items"][0]["catalog_object_id"] = f"VAR-{rng.choice(SKUS)}"
        pos_state.add_order(order)
        created[("pos", order["id"])] = when
    return tb, jd_state, amz, pos_state, created


# --- the database ----------------------------------------------------------


async def admin_sql(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def seed(database_url: str) -> None:
    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Location, Product
    from oms_graphql.domain.inventory import Reference, receive_stock

    database = Database(database_url)
    try:
        async with database.session() as session, session.begin():
            for code, kind in (("WH-BENCH", "WAREHOUSE"), ("STORE-BENCH", "STORE")):
                session.add(
                    Location(
                        code=code, name=code, kind=kind, country="CN", line1="1 Bench Road", priority=10, can_ship=True
                    )
                )
            for sku in SKUS:
                session.add(Product(sku=sku, name=f"Bench {sku}", handling=[]))
        async with database.session() as session, session.begin():
            for sku in SKUS:
                for location in ("WH-BENCH", "STORE-BENCH"):
                    await receive_stock(
                        session,
                        sku=sku,
                        location_code=location,
                        quantity=1_000_000,
                        reference=Reference(type="RECEIPT", text="bench"),
                    )
    finally:
        await database.dispose()


async def create_channels(database_url: str, urls: dict[str, str], states, sync_from: datetime) -> None:
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.channels import ChannelSpec, create_channel, set_listing
    from oms_graphql.domain.orders import channel_by_code
    from tests.channel_support import amazon_settings, jd_settings, pos_settings, taobao_settings

    tb, jd_state, amz, pos_state = states
    specs = [
        ("bench-taobao", "taobao", taobao_settings(urls["taobao"], tb)),
        ("bench-jd", "jd", jd_settings(urls["jd"], jd_state)),
        ("bench-amazon", "amazon", amazon_settings(urls["amazon"], amz)),
        ("bench-pos", "pos", pos_settings(urls["pos"], pos_state, "STORE-BENCH")),
    ]
    database = Database(database_url)
    try:
        async with database.session() as session, session.begin():
            for code, kind, settings in specs:
                await create_channel(
                    session,
                    ChannelSpec(
                        code=code, name=code, kind=kind, settings=settings, poll_interval_seconds=5, sync_from=sync_from
                    ),
                )
            pos_channel = await channel_by_code(session, "bench-pos")
            for sku in SKUS:  # the POS sends only its own variation ids
                await set_listing(session, pos_channel, f"VAR-{sku}", sku)
    finally:
        await database.dispose()


async def progress(database_url: str) -> tuple[int, int]:
    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Order, OrderEvent

    database = Database(database_url)
    try:
        async with database.session() as session:
            orders = await session.scalar(select(func.count()).select_from(Order)) or 0
            allocated = (
                await session.scalar(
                    select(func.count(func.distinct(OrderEvent.order_id))).where(OrderEvent.to_status == "ALLOCATED")
                )
                or 0
            )
            return int(orders), int(allocated)
    finally:
        await database.dispose()


async def results(database_url: str) -> list[tuple[str, str, datetime | None]]:
    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Channel, Order, OrderEvent

    database = Database(database_url)
    try:
        async with database.session() as session:
            first_allocated = (
                select(OrderEvent.order_id, func.min(OrderEvent.created_at).label("at"))
                .where(OrderEvent.to_status == "ALLOCATED")
                .group_by(OrderEvent.order_id)
                .subquery()
            )
            rows = await session.execute(
                select(Channel.kind, Order.external_id, first_allocated.c.at)
                .join(Channel, Channel.id == Order.channel_id)
                .outerjoin(first_allocated, first_allocated.c.order_id == Order.id)
            )
            return [(kind, external_id, at) for kind, external_id, at in rows]
    finally:
        await database.dispose()


async def bulk_insert_baseline(database_url: str, count: int) -> float:
    """The floor: ``count`` orders with two lines each, inserted in one transaction."""
    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Address, Channel, Order, OrderLine

    database = Database(database_url)
    try:
        async with database.session() as session, session.begin():
            channel = Channel(code="bench-baseline", name="baseline", kind="manual")
            address = Address(country="CN", line1="1 Bench Road")
            session.add_all([channel, address])
            await session.flush()
            channel_id, address_id = channel.id, address.id
        now = datetime.now(UTC)
        started = time.perf_counter()
        async with database.session() as session, session.begin():
            for start in range(0, count, 5000):
                chunk = range(start, min(count, start + 5000))
                ids = (
                    (
                        await session.execute(
                            insert(Order).returning(Order.id),
                            [
                                dict(
                                    number=f"B{n:012d}",
                                    channel_id=channel_id,
                                    external_id=str(n),
                                    status="ALLOCATED",
                                    shipping_address_id=address_id,
                                    currency="CNY",
                                    subtotal=Decimal("10"),
                                    discount=Decimal("0"),
                                    shipping_fee=Decimal("0"),
                                    tax=Decimal("0"),
                                    total=Decimal("10"),
                                    placed_at=now,
                                )
                                for n in chunk
                            ],
                        )
                    )
                    .scalars()
                    .all()
                )
                await session.execute(
                    insert(OrderLine),
                    [
                        dict(
                            order_id=order_id,
                            line_no=line,
                            sku=SKUS[line],
                            quantity=1,
                            unit_price=Decimal("5"),
                            discount=Decimal("0"),
                            refunded_quantity=0,
                        )
                        for order_id in ids
                        for line in (1, 2)
                    ],
                )
        return count / (time.perf_counter() - started)
    finally:
        await database.dispose()


# --- the run ----------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000, help="orders in all (spread over 4 channels)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("OMS_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("OMS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for every order")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--worker-log", help="write each worker's log to this path plus .N")
    args = parser.parse_args()

    from oms_graphql.db.migrate import upgrade

    per_channel = args.orders // 4
    total = per_channel * 4
    name = f"oms_bench_{uuid.uuid4().hex[:8]}"
    prefix = args.database_url.rpartition("/")[0]
    database_url = f"{prefix}/{name}"
    asyncio.run(admin_sql(args.database_url, f'CREATE DATABASE "{name}"'))
    workers: list[subprocess.Popen] = []
    try:
        upgrade(database_url)
        asyncio.run(seed(database_url))
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
        print(f"loading {total} orders into the four fakes…", flush=True)
        rng = random.Random(7)
        *states, created = load_fakes(per_channel, datetime.now(UTC), rng)
        env = {
            **os.environ,
            "OMS_DATABASE_URL": database_url,
            "OMS_BROKER_URL": args.redis_url,
            "OMS_CHANNEL_TICK_SECONDS": "1",
            "OMS_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        with (
            serve(taobao.make_app(states[0])) as tb_url,
            serve(jd.make_app(states[1])) as jd_url,
            serve(amazon.make_app(states[2])) as amz_url,
            serve(pos.make_app(states[3])) as pos_url,
        ):
            workers = [
                subprocess.Popen(
                    [sys.executable, str(ROOT / "bench" / "bench_worker.py"), str(args.threads)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(f"{args.worker_log}.{n}", "w") if args.worker_log else subprocess.DEVNULL,  # noqa: SIM115
                )
                for n in range(args.workers)
            ]
            time.sleep(3)
            start_wall = datetime.now(UTC)
            asyncio.run(
                create_channels(
                    database_url,
                    {"taobao": tb_url, "jd": jd_url, "amazon": amz_url, "pos": pos_url},
                    states,
                    start_wall - timedelta(minutes=10),
                )
            )
            deadline = time.monotonic() + args.timeout
            last = (-1, -1)
            while time.monotonic() < deadline:
                orders, allocated = asyncio.run(progress(database_url))
                if (orders, allocated) != last:
                    print(
                        f"  {time.monotonic() - deadline + args.timeout:6.0f}s orders {orders:6d}  "
                        f"allocated {allocated:6d}",
                        flush=True,
                    )
                    last = (orders, allocated)
                if allocated >= total:
                    break
                time.sleep(2)
        for worker in workers:
            worker.terminate()
        rows = asyncio.run(results(database_url))
        baseline = asyncio.run(bulk_insert_baseline(database_url, total))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        if not args.keep:
            asyncio.run(
                admin_sql(
                    args.database_url,
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
                )
            )
            asyncio.run(admin_sql(args.database_url, f'DROP DATABASE IF EXISTS "{name}"'))

    seen: dict[tuple[str, str], int] = {}
    allocated_at: dict[tuple[str, str], datetime] = {}
    for kind, external_id, at in rows:
        key = (kind, external_id)
        seen[key] = seen.get(key, 0) + 1
        if at is not None:
            allocated_at[key] = at
    lost = sum(1 for key in created if key not in seen)
    never_allocated = sum(1 for key in created if key in seen and key not in allocated_at)
    duplicated = sum(count - 1 for count in seen.values() if count > 1)
    lags = [(allocated_at[key] - created[key]).total_seconds() for key in created if key in allocated_at]
    visible_lags = [(allocated_at[key] - start_wall).total_seconds() for key in created if key in allocated_at]
    finished = max(allocated_at.values()) if allocated_at else start_wall
    rate = len(allocated_at) / max((finished - start_wall).total_seconds(), 1e-9)
    print()
    print(
        f"orders at the fakes        {total} ({per_channel} per channel), {args.workers} workers × "
        f"{args.threads} threads"
    )
    print(
        f"end-to-end                 {rate:8.1f} orders/s  ({len(allocated_at)} ALLOCATED in "
        f"{(finished - start_wall).total_seconds():.1f} s)"
    )
    print(f"lag from channel creation  p50 {percentile(lags, 0.5):7.1f} s   p99 {percentile(lags, 0.99):7.1f} s")
    print(
        f"lag from OMS first seeing  p50 {percentile(visible_lags, 0.5):7.1f} s   "
        f"p99 {percentile(visible_lags, 0.99):7.1f} s"
    )
    for kind in ("taobao", "jd", "amazon", "pos"):
        mine = [
            (allocated_at[key] - start_wall).total_seconds()
            for key in created
            if key[0] == kind and key in allocated_at
        ]
        if mine:
            print(f"  {kind:7s} last ALLOCATED after {max(mine):6.1f} s (median {statistics.median(mine):.1f} s)")
    print(f"raw bulk-insert baseline   {baseline:8.1f} orders/s  (orders + 2 lines, one transaction)")
    print(f"lost                       {lost + never_allocated}  (missing {lost}, never allocated {never_allocated})")
    print(f"duplicated                 {duplicated}")
    sys.exit(1 if lost or never_allocated or duplicated else 0)


if __name__ == "__main__":
    main()
