"""Channel ingestion end to end: four fake marketplaces → pulls → jobs → ALLOCATED orders.

    python bench/bench_ingest.py                          # 20,000 orders, PostgreSQL + Redis at 127.0.0.1
    python bench/bench_ingest.py --orders 2000            # a quick run
    python bench/bench_ingest.py --serve 2 --workers 2    # two `oms serve` and two worker processes
    python bench/bench_ingest.py --scaling                # 1 + 1 processes, then 2 + 2: the scaling

It creates a fresh PostgreSQL database (dropped at the end unless --keep), starts the
four fake marketplaces (Taobao, JD, Amazon, POS) in a process of their own and loads them
with ``--orders`` orders spread evenly, stamped as changed in the last few minutes (so even
Amazon, which lists orders only two minutes after their last change, shows all of them
at once). It then starts ``--serve`` `oms serve` processes (the outbox relay, webhooks)
and ``--workers`` worker processes on Redis (``bench/bench_worker.py``: `oms worker` with
Amazon's real API quotas lifted for the fake) and creates the four channels; the
scheduler inside the workers does the rest. It waits until every order is ALLOCATED and
prints:

- SQL statements per order, ingestion and allocation apart, one message at a time (how
  webhooks and main before batch ingestion went) and as batches (a pulled page), counted
  in-process on a page or two of Taobao orders in a database of their own;
- end-to-end orders/s: orders / (last ALLOCATED − channels created);
- lag to ALLOCATED, p50/p99: from the order's creation time at the channel, and from the
  moment the OMS could first see it (the channels' creation);
- lost (orders at the fakes with no order in the OMS, or never ALLOCATED) and duplicated
  (more than one OMS order for a channel order) counts (either one: exit status 1);
- a raw bulk-insert baseline in the same database: the same number of orders and lines
  inserted with executemany in one transaction (no parsing, no jobs, no allocation), and
  the ratio of the two;
- a markdown table row for bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

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
    # A burst's buyers: most new to us, some buying twice (a pool of half as many as orders).
    buyer = lambda: rng.randrange(max(1, per_channel // 2))  # noqa: E731

    tb = taobao.TaobaoState(load_samples=False)
    for _ in range(per_channel):
        tid = tb.add_order()
        when = stamp()
        trade = tb.trades[tid]
        trade["created"] = trade["modified"] = taobao.top_time(when)
        trade["pay_time"] = taobao.top_time(when)
        who = buyer()
        trade.update(buyer_open_uid=f"tb-buyer-{who}", receiver_mobile=f"139{who:08d}")
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
        who = buyer()
        order["open_id_buyer"] = f"jd-buyer-{who}"
        order.setdefault("consigneeInfo", {})["mobile"] = f"138{who:08d}"
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
        order.setdefault("BuyerInfo", {})["BuyerEmail"] = f"buyer{buyer()}@marketplace.amazon.com"
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


async def create_channels(database_url: str, settings: dict[str, dict], sync_from: datetime) -> None:
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.channels import ChannelSpec, create_channel, set_listing
    from oms_graphql.domain.orders import channel_by_code

    database = Database(database_url)
    try:
        async with database.session() as session, session.begin():
            for kind in ("taobao", "jd", "amazon", "pos"):
                await create_channel(
                    session,
                    ChannelSpec(
                        code=f"bench-{kind}",
                        name=f"bench-{kind}",
                        kind=kind,
                        settings=settings[kind],
                        poll_interval_seconds=5,
                        sync_from=sync_from,
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


# --- the fakes, in a process of their own -----------------------------------


def fakes_child(out: str, orders: int, seed: int) -> None:
    """Load and serve the four fakes (``--fakes-child``); write their settings and orders to ``out``."""
    from tests.channel_support import amazon_settings, jd_settings, pos_settings, taobao_settings

    tb, jd_state, amz, pos_state, created = load_fakes(orders // 4, datetime.now(UTC), random.Random(seed))
    with (
        serve(taobao.make_app(tb)) as tb_url,
        serve(jd.make_app(jd_state)) as jd_url,
        serve(amazon.make_app(amz)) as amz_url,
        serve(pos.make_app(pos_state)) as pos_url,
    ):
        info = {
            "settings": {
                # The Taobao plugin paces itself to callsPerSecond (default 10, a seller raises it to
                # the app's quota): one detail call per order would hold Taobao at ~10 orders/s.
                "taobao": {**taobao_settings(tb_url, tb), "callsPerSecond": 10_000},
                "jd": jd_settings(jd_url, jd_state),
                "amazon": amazon_settings(amz_url, amz),
                "pos": pos_settings(pos_url, pos_state, "STORE-BENCH"),
            },
            "created": [[kind, external_id, when.isoformat()] for (kind, external_id), when in created.items()],
        }
        Path(out + ".tmp").write_text(json.dumps(info))
        os.replace(out + ".tmp", out)
        threading.Event().wait()  # until the benchmark terminates this process


@contextmanager
def fakes_process(orders: int) -> Iterator[tuple[dict[str, dict], dict[tuple[str, str], datetime]]]:
    """The fakes out of the benchmark's process (in it, they took a third of the CPU)."""
    out = Path(tempfile.mkdtemp(prefix="oms-bench-")) / "fakes.json"
    process = subprocess.Popen(
        [sys.executable, __file__, "--fakes-child", str(out), "--orders", str(orders)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 600
        while not out.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the fake marketplaces did not start")
            time.sleep(0.2)
        info = json.loads(out.read_text())
        created = {(kind, external_id): datetime.fromisoformat(at) for kind, external_id, at in info["created"]}
        yield info["settings"], created
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- the OMS processes -----------------------------------------------------------


def start_serve(env: dict[str, str], log: str | None) -> subprocess.Popen:
    """One `oms serve` (the API, webhooks, the outbox relay), once it answers /readyz."""
    import httpx

    from tests.fakes.server import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "oms_graphql.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w") if log else subprocess.DEVNULL,  # noqa: SIM115
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("oms serve did not become ready")


def start_worker(env: dict[str, str], threads: int, log: str | None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bench_worker.py"), str(threads)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w") if log else subprocess.DEVNULL,
    )


# --- statements per order, counted in-process ---------------------------------


def count_statements_child(database_url: str, pages: int, page_size: int) -> None:
    """``--count-statements``: ingest and allocate ``pages`` pages of Taobao orders one message at
    a time, then as batches, counting the SQL statements sent (a ``before_cursor_execute``
    listener); prints the figures as one JSON line."""
    os.environ.update(OMS_DATABASE_URL=database_url, OMS_BROKER_URL="memory", OMS_LOG_LEVEL="WARNING")
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from oms_graphql.db.models import Channel, Order, OutboxEntry
    from oms_graphql.domain import inbound
    from oms_graphql.domain.channels import ChannelSpec, create_channel
    from oms_graphql.jobs.broker import setup
    from oms_graphql.plugins.contract import RawOrderPayload
    from tests.channel_support import taobao_settings

    setup("memory")
    from oms_graphql.jobs import delivery
    from oms_graphql.jobs.channels import ingest_inbound_batch, ingest_inbound_message
    from oms_graphql.jobs.orders import allocate_order, allocate_order_batch
    from oms_graphql.jobs.runtime import in_transaction

    asyncio.run(seed(database_url))
    state = taobao.TaobaoState(load_samples=False)
    rng = random.Random(11)
    sent = [0]
    event.listen(Engine, "before_cursor_execute", lambda *_args: sent.__setitem__(0, sent[0] + 1))

    def counted(work: Any) -> tuple[Any, int]:
        before = sent[0]
        result = work()
        return result, sent[0] - before

    def page(mode: str) -> list[RawOrderPayload]:
        made = []
        for _ in range(page_size):
            tid = state.add_order()
            trade = state.trades[tid]
            who = rng.randrange(pages * page_size // 2)
            trade.update(buyer_open_uid=f"{mode}-buyer-{who}", receiver_mobile=f"13{len(mode)}{who:08d}")
            for line in trade["orders"]["order"]:
                line["outer_sku_id"] = rng.choice(SKUS)
            made.append(RawOrderPayload(external_id=tid, body=trade))
        return made

    async def make_channel(session: Any, code: str) -> None:
        await create_channel(
            session,
            ChannelSpec(
                code=code,
                name=code,
                kind="taobao",
                settings=taobao_settings("http://127.0.0.1:9", state),
                poll_interval_seconds=3600,
            ),
        )

    def confirmed(code: str) -> list[int]:
        async def run(session: Any) -> list[int]:
            rows = await session.scalars(
                select(Order.id).join(Channel).where(Channel.code == code, Order.status == "CONFIRMED")
            )
            return list(rows)

        return in_transaction(run)

    def jobs_since(outbox_id: int) -> dict[str, int]:
        async def run(session: Any) -> dict[str, int]:
            rows = await session.execute(
                select(OutboxEntry.topic, func.count())
                .where(OutboxEntry.id > outbox_id, OutboxEntry.kind == "job")
                .group_by(OutboxEntry.topic)
            )
            return {topic: n for topic, n in rows}

        return in_transaction(run)

    def dispatch_jobs_since(outbox_id: int) -> list[tuple[str, dict]]:
        async def run(session: Any) -> list[tuple[str, dict]]:
            rows = await session.execute(
                select(OutboxEntry.topic, OutboxEntry.payload)
                .where(OutboxEntry.id > outbox_id, OutboxEntry.kind == "job", OutboxEntry.topic.startswith("dispatch_"))
                .order_by(OutboxEntry.id)
            )
            return [(topic, payload) for topic, payload in rows]

        return in_transaction(run)

    def last_outbox_id() -> int:
        async def run(session: Any) -> int:
            return int(await session.scalar(select(func.max(OutboxEntry.id))) or 0)

        return in_transaction(run)

    figures: dict[str, Any] = {"orders": pages * page_size}
    for mode in ("one", "batch"):
        code = f"stmt-{mode}"
        in_transaction(lambda session, code=code: make_channel(session, code))  # type: ignore[misc]
        ingest = allocate = dispatch = 0
        start = last_outbox_id()
        for _ in range(pages):
            payloads = page(mode)

            async def store(session: Any, payloads: list = payloads, code: str = code, mode: str = mode) -> list[int]:
                channel = await session.scalar(select(Channel).where(Channel.code == code))
                if mode == "batch":
                    return [o.message_id for o in await inbound.ingest_payloads(session, channel, payloads, None)]
                ids = []
                for payload in payloads:  # as main stored a pulled page: a message and a job each
                    message = await inbound.store_message(
                        session,
                        source=code,
                        kind=inbound.ORDER,
                        body=inbound.encode_body(payload.body),
                        external_id=payload.external_id,
                    )
                    inbound.queue_message(session, message)
                    ids.append(message.id)
                return ids

            ids, n = counted(lambda store=store: in_transaction(store))
            ingest += n
            if mode == "batch":
                ingest += counted(lambda ids=ids: ingest_inbound_batch.fn(message_ids=ids))[1]
                order_ids = confirmed(code)
                allocate += counted(lambda order_ids=order_ids: allocate_order_batch.fn(order_ids=order_ids))[1]
            else:
                for message_id in ids:
                    ingest += counted(lambda message_id=message_id: ingest_inbound_message.fn(message_id=message_id))[1]
                for order_id in confirmed(code):
                    allocate += counted(lambda order_id=order_id: allocate_order.fn(order_id=order_id))[1]
        jobs = jobs_since(start)
        # The auto-dispatch jobs allocation asked for, run here as a worker would (no carrier: none ships).
        for topic, payload in dispatch_jobs_since(start):
            dispatch += counted(lambda topic=topic, payload=payload: getattr(delivery, topic).fn(**payload))[1]
        figures[mode] = {"ingest": ingest, "allocate": allocate, "dispatch": dispatch, "jobs": jobs}
    print(json.dumps(figures))


def statements_per_order(admin_url: str, pages: int = 2, page_size: int = 100) -> dict[str, Any]:
    """Run ``--count-statements`` in a database of its own; its figures."""
    name = f"oms_bench_{uuid.uuid4().hex[:8]}"
    url = f"{admin_url.rpartition('/')[0]}/{name}"
    asyncio.run(admin_sql(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        from oms_graphql.db.migrate import upgrade

        upgrade(url)
        output = subprocess.run(
            [sys.executable, __file__, "--count-statements", url, "--pages", str(pages), "--page-size", str(page_size)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(output.strip().splitlines()[-1])
    finally:
        drop_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    asyncio.run(
        admin_sql(admin_url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    )
    asyncio.run(admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}"'))


# --- the run ------------------------------------------------------------------


def run(args: argparse.Namespace, serves: int, workers: int) -> dict[str, Any]:
    """One end-to-end run with ``serves`` + ``workers`` processes; its figures."""
    from oms_graphql.db.migrate import upgrade

    total = args.orders // 4 * 4
    name = f"oms_bench_{uuid.uuid4().hex[:8]}"
    database_url = f"{args.database_url.rpartition('/')[0]}/{name}"
    asyncio.run(admin_sql(args.database_url, f'CREATE DATABASE "{name}"'))
    processes: list[subprocess.Popen] = []
    try:
        upgrade(database_url)
        asyncio.run(seed(database_url))
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
        print(f"loading {total} orders into the four fakes (own process)…", flush=True)
        env = {
            **os.environ,
            "OMS_DATABASE_URL": database_url,
            "OMS_BROKER_URL": args.redis_url,
            "OMS_CHANNEL_TICK_SECONDS": "1",
            "OMS_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        log = args.worker_log
        with fakes_process(total) as (settings, created):
            processes += [start_serve(env, f"{log}.serve.{n}" if log else None) for n in range(serves)]
            processes += [start_worker(env, args.threads, f"{log}.{n}" if log else None) for n in range(workers)]
            time.sleep(3)
            start_wall = datetime.now(UTC)
            asyncio.run(create_channels(database_url, settings, start_wall - timedelta(minutes=10)))
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
            for process in processes:
                process.terminate()
            amazon_calls = httpx.get(settings["amazon"]["endpoint"] + amazon.CALL_COUNTS_PATH).json()
        rows = asyncio.run(results(database_url))
        baseline = asyncio.run(bulk_insert_baseline(database_url, total))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        if not args.keep:
            drop_database(args.database_url, name)

    seen: dict[tuple[str, str], int] = {}
    allocated_at: dict[tuple[str, str], datetime] = {}
    for kind, external_id, at in rows:
        key = (kind, external_id)
        seen[key] = seen.get(key, 0) + 1
        if at is not None:
            allocated_at[key] = at
    finished = max(allocated_at.values()) if allocated_at else start_wall
    return {
        "serves": serves,
        "workers": workers,
        "total": total,
        "lost": sum(1 for key in created if key not in seen),
        "never_allocated": sum(1 for key in created if key in seen and key not in allocated_at),
        "duplicated": sum(count - 1 for count in seen.values() if count > 1),
        "lags": [(allocated_at[key] - created[key]).total_seconds() for key in created if key in allocated_at],
        "visible": [(allocated_at[key] - start_wall).total_seconds() for key in created if key in allocated_at],
        "by_kind": {
            kind: [
                (allocated_at[key] - start_wall).total_seconds()
                for key in created
                if key[0] == kind and key in allocated_at
            ]
            for kind in ("taobao", "jd", "amazon", "pos")
        },
        "allocated": len(allocated_at),
        "seconds": (finished - start_wall).total_seconds(),
        "rate": len(allocated_at) / max((finished - start_wall).total_seconds(), 1e-9),
        "baseline": baseline,
        "amazon_calls": amazon_calls,
    }


def report(args: argparse.Namespace, figures: dict[str, Any], statements: dict[str, Any] | None) -> str:
    """Print one run's figures; returns its markdown table row."""
    lags, visible = figures["lags"], figures["visible"]
    print()
    print(
        f"orders at the fakes        {figures['total']} ({figures['total'] // 4} per channel), "
        f"{figures['serves']} × oms serve, {figures['workers']} workers × {args.threads} threads"
    )
    print(
        f"end-to-end                 {figures['rate']:8.1f} orders/s  ({figures['allocated']} ALLOCATED in "
        f"{figures['seconds']:.1f} s)"
    )
    print(f"lag from channel creation  p50 {percentile(lags, 0.5):7.1f} s   p99 {percentile(lags, 0.99):7.1f} s")
    print(f"lag from OMS first seeing  p50 {percentile(visible, 0.5):7.1f} s   p99 {percentile(visible, 0.99):7.1f} s")
    for kind, mine in figures["by_kind"].items():
        if mine:
            print(f"  {kind:7s} last ALLOCATED after {max(mine):6.1f} s (median {statistics.median(mine):.1f} s)")
    ratio = figures["baseline"] / max(figures["rate"], 1e-9)
    print(
        f"raw bulk-insert baseline   {figures['baseline']:8.1f} orders/s  (orders + 2 lines, one transaction): "
        f"{ratio:.1f}× the end-to-end rate"
    )
    lost = figures["lost"] + figures["never_allocated"]
    print(
        f"lost                       {lost}  (missing {figures['lost']}, never allocated {figures['never_allocated']})"
    )
    print(f"duplicated                 {figures['duplicated']}")
    calls = figures["amazon_calls"]
    print(
        f"Amazon fake answered       getOrders {calls['getOrders']}, getOrder {calls['getOrder']}, "
        f"getOrderItems {calls['getOrderItems']} (for {figures['total'] // 4} orders)"
    )
    stmts = " | – | –"
    if statements:
        one, batch, n = statements["one"], statements["batch"], statements["orders"]
        stmts = (
            f" | {one['ingest'] / n:.1f} → {batch['ingest'] / n:.1f} | {one['allocate'] / n:.1f} → "
            f"{batch['allocate'] / n:.1f}"
        )
    return (
        f"| {figures['total']:,} | {figures['serves']} + {figures['workers']} | {figures['rate']:,.1f} /s "
        f"({figures['seconds']:.0f} s) | {percentile(lags, 0.5):.0f} s / {percentile(lags, 0.99):.0f} s | "
        f"{percentile(visible, 0.5):.0f} s / {percentile(visible, 0.99):.0f} s | {figures['baseline']:,.0f} /s "
        f"({ratio:.0f}×){stmts} | {lost} | {figures['duplicated']} |"
    )


def print_statements(statements: dict[str, Any]) -> None:
    n = statements["orders"]
    print(f"\nSQL statements per order ({n} Taobao orders in pages of 100; relay and report jobs not counted):")
    for mode, label in (("one", "one message at a time"), ("batch", "a page per batch job")):
        figures = statements[mode]
        jobs = ", ".join(f"{topic} {count / n:.2f}" for topic, count in sorted(figures["jobs"].items()))
        print(
            f"  {label:22s} ingest {figures['ingest'] / n:5.1f}   allocate {figures['allocate'] / n:5.1f}   "
            f"dispatch {figures.get('dispatch', 0) / n:5.1f}   jobs per order: {jobs}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000, help="orders in all (spread over 4 channels)")
    parser.add_argument("--serve", type=int, default=1, help="`oms serve` processes (outbox relay, webhooks)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument("--scaling", action="store_true", help="run with 1 + 1 processes, then 2 + 2")
    parser.add_argument("--no-statements", action="store_true", help="skip counting statements per order")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("OMS_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("OMS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for every order")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--worker-log", help="write each process's log to this path plus .N")
    parser.add_argument("--fakes-child", help=argparse.SUPPRESS)
    parser.add_argument("--count-statements", help=argparse.SUPPRESS)
    parser.add_argument("--pages", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--page-size", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fakes_child:
        return fakes_child(args.fakes_child, args.orders, seed=7)
    if args.count_statements:
        return count_statements_child(args.count_statements, args.pages, args.page_size)

    statements = None if args.no_statements else statements_per_order(args.database_url)
    if statements:
        print_statements(statements)
    shapes = [(1, 1), (2, 2)] if args.scaling else [(args.serve, args.workers)]
    runs = [run(args, serves, workers) for serves, workers in shapes]
    rows = [report(args, figures, statements) for figures in runs]
    if args.scaling:
        print(f"\nscaling 1 + 1 → 2 + 2 processes: {runs[1]['rate'] / max(runs[0]['rate'], 1e-9):.2f}×")
    print("\nfor bench/README.md:")
    print(
        "| orders | serve + workers | end to end | lag p50 / p99 from creation at the channel | "
        "from the OMS first seeing it | raw bulk insert (× end to end) | statements/order ingest, one → batch | "
        "allocate, one → batch | lost | duplicated |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(row)
    failed = any(f["lost"] or f["never_allocated"] or f["duplicated"] for f in runs)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
