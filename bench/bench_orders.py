"""Order creation and order-page reads through GraphQL, against raw SQL in the same run.

    python bench/bench_orders.py                          # PostgreSQL at 127.0.0.1, 10,000 orders, 2 servers
    python bench/bench_orders.py --orders 2000 --serve 1
    python bench/bench_orders.py --scaling                # the same run with 1, then 2 server processes
    python bench/bench_orders.py --serve 2 --workers 2    # with 2 job workers on Redis beside them

Each run creates a fresh PostgreSQL database (dropped at the end), starts ``--serve``
`oms serve` processes on it (the scale-out setup: several API processes behind a
load balancer; here the client spreads requests over them; ``--servers`` is the old
name), and ``--workers`` `oms worker` processes on Redis (0: in-memory broker, no
jobs). It creates the orders with ``--concurrency`` requests in flight, then reads
``orders(first: 100)`` pages with their lines: one client walking the pages by
cursor (latency), a deep page (``--deep-page``, by its keyset cursor), and
``--readers`` clients at once over every server (pages/s). The same reads are then
done with hand-written SQL over asyncpg (no ORM, no GraphQL), by key and by the old
OFFSET, and the same creates; the ratios are printed.
Before that, ``--count-orders`` orders are created through the app in this process to count
the statements (and the CPU) of one ``orderCreate``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

ORDER_CREATE = """mutation($input: OrderCreateInput!) {
  orderCreate(input: $input) { order { id number } userErrors { field message code } } }"""
ORDERS_PAGE = """query($after: String) { orders(first: 100, after: $after) {
  pageInfo { endCursor hasNextPage }
  edges { node { number status total { amount currency } lines { sku quantity unitPrice { amount } } } } } }"""
SKUS = [f"BENCH-{n:03d}" for n in range(50)]


def order_input(n: int) -> dict:
    lines = [{"sku": SKUS[(n + k) % len(SKUS)], "quantity": 1 + k, "unitPrice": "19.90"} for k in range(3)]
    return {
        "currency": "CNY",
        "customer": {"name": f"Bench Customer {n % 500}", "phone": f"+86 138{n % 500:08d}"},
        "shippingAddress": {"country": "CN", "city": "Shanghai", "line1": f"{n} Century Avenue"},
        "lines": lines,
        "shippingFee": "10.00",
    }


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def run_concurrently(count: int, concurrency: int, work: Callable[[int], Awaitable[None]]) -> float:
    """Run ``work(0..count-1)`` with ``concurrency`` in flight; return the seconds taken."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


# --- through GraphQL ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_servers(env: dict[str, str], count: int) -> tuple[list[subprocess.Popen], list[str]]:
    processes, urls = [], []
    for _ in range(count):
        port = free_port()  # not a fixed one: another run on the machine may hold it
        processes.append(
            subprocess.Popen([sys.executable, "-m", "oms_graphql.cli", "serve", "--port", str(port)], env=env)
        )
        urls.append(f"http://127.0.0.1:{port}")
    for url in urls:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit(f"{url} did not start")
    return processes, urls


async def graphql_create(urls: list[str], token: str, count: int, concurrency: int) -> float:
    headers = {"authorization": f"Bearer {token}", "accept": "application/graphql-response+json"}
    limits = httpx.Limits(max_connections=concurrency * 2)
    clients = [httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) for url in urls]

    async def create(n: int) -> None:
        client = clients[n % len(clients)]
        response = await client.post("/graphql", json={"query": ORDER_CREATE, "variables": {"input": order_input(n)}})
        payload = response.json()["data"]["orderCreate"]
        if payload["userErrors"]:
            raise SystemExit(f"order {n} refused: {payload['userErrors']}")

    try:
        return await run_concurrently(count, concurrency, create)
    finally:
        for client in clients:
            await client.aclose()


WARM_UP = 5  # pages read first on each server (imports, caches, the connection pool), not measured


def _headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": "application/graphql-response+json"}


async def _page(client: httpx.AsyncClient, after: str | None) -> dict:
    response = await client.post("/graphql", json={"query": ORDERS_PAGE, "variables": {"after": after}})
    body = response.json()
    if "data" not in body:
        raise SystemExit(f"a page was refused ({response.status_code}): {body}")
    page = body["data"]["orders"]
    assert len(page["edges"]) == 100, "not enough orders for full pages"
    return page  # type: ignore[no-any-return]


async def graphql_read(url: str, token: str, pages: int, deep_page: int, repeats: int) -> dict[str, list[float]]:
    """One client: the first ``pages`` pages by cursor, then page ``deep_page`` ``repeats`` times."""
    latencies: dict[str, list[float]] = {"walk": [], "deep": []}
    async with httpx.AsyncClient(base_url=url, headers=_headers(token), timeout=60) as client:
        for _ in range(WARM_UP):
            await _page(client, None)
        after, deep_cursor = None, None
        for number in range(1, max(pages, deep_page - 1) + 1):
            started = time.perf_counter()
            page = await _page(client, after)
            if number <= pages:
                latencies["walk"].append(time.perf_counter() - started)
            after = page["pageInfo"]["endCursor"]
            if number == deep_page - 1:
                deep_cursor = after
        for _ in range(repeats):
            started = time.perf_counter()
            await _page(client, deep_cursor)
            latencies["deep"].append(time.perf_counter() - started)
    return latencies


async def in_process_creates(database_url: str, token: str, count: int) -> tuple[float, float, list[str]]:
    """``count`` orderCreates, one at a time, through the app in this process (no network): the
    statements per order (a ``before_cursor_execute`` counter on every engine: a count, not a
    timing), this process's CPU ms per order (the API's own cost, whatever else the machine
    runs), and the statements of the last order."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from oms_graphql.app import create_app
    from oms_graphql.config import Settings

    app = create_app(Settings(database_url=database_url, broker_url="memory"), run_background=False)
    statements: list[str] = []

    def count_statement(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split())[:100])

    headers = {"authorization": f"Bearer {token}", "accept": "application/graphql-response+json"}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client,
    ):

        async def create(n: int) -> None:
            variables = {"input": order_input(n)}
            response = await client.post("/graphql", json={"query": ORDER_CREATE, "variables": variables})
            assert not response.json()["data"]["orderCreate"]["userErrors"], response.text

        # Warm up (the token, the statement caches) and meet the buyers once: most of the bench's
        # orders, like a shop's, come from a buyer already known.
        for n in range(20):
            await create(1_000_000 + n)
        total = 0
        event.listen(Engine, "before_cursor_execute", count_statement)
        started = time.process_time()
        try:
            for n in range(count):
                statements.clear()
                await create(1_000_000 + n % 20)
                total += len(statements)
        finally:
            event.remove(Engine, "before_cursor_execute", count_statement)
        cpu_ms = (time.process_time() - started) * 1000 / count
    return total / count, cpu_ms, statements


async def graphql_read_throughput(urls: list[str], token: str, readers: int, pages: int) -> float:
    """Pages/s with ``readers`` clients at once, spread over the servers (each walks from the start)."""
    clients = [httpx.AsyncClient(base_url=url, headers=_headers(token), timeout=60) for url in urls]
    walk = max(1, pages // readers)
    for client in clients:
        for _ in range(WARM_UP):
            await _page(client, None)

    async def reader(n: int) -> None:
        client, after = clients[n % len(clients)], None
        for _ in range(walk):
            after = (await _page(client, after))["pageInfo"]["endCursor"]

    try:
        seconds = await run_concurrently(readers, readers, reader)
    finally:
        for client in clients:
            await client.aclose()
    return readers * walk / seconds


# --- the same work in raw SQL -----------------------------------------------


async def raw_create(dsn: str, count: int, concurrency: int, channel_id: int, product_ids: dict[str, int]) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    now = datetime.now(UTC)

    async def create(n: int) -> None:
        data = order_input(n)
        lines = data["lines"]
        subtotal = sum(Decimal(line["unitPrice"]) * line["quantity"] for line in lines)
        async with pool.acquire() as connection, connection.transaction():
            customer_id = await connection.fetchval(
                "INSERT INTO customers (name, phone, created_at) VALUES ($1, $2, $3) RETURNING id",
                data["customer"]["name"],
                data["customer"]["phone"],
                now,
            )
            address_id = await connection.fetchval(
                "INSERT INTO addresses (customer_id, country, city, line1) VALUES ($1, 'CN', 'Shanghai', $2) "
                "RETURNING id",
                customer_id,
                data["shippingAddress"]["line1"],
            )
            order_id = await connection.fetchval(
                "INSERT INTO orders (number, channel_id, status, customer_id, shipping_address_id, currency, "
                "subtotal, discount, shipping_fee, tax, total, placed_at, created_at, updated_at) "
                "VALUES ($1, $2, 'PENDING', $3, $4, 'CNY', $5, 0, 10, 0, $6, $7, $7, $7) RETURNING id",
                f"RAW-{uuid.uuid4().hex[:12]}",
                channel_id,
                customer_id,
                address_id,
                subtotal,
                subtotal + 10,
                now,
            )
            await connection.executemany(
                "INSERT INTO order_lines (order_id, line_no, product_id, sku, quantity, unit_price, discount, "
                "refunded_quantity) VALUES ($1, $2, $3, $4, $5, $6, 0, 0)",
                [
                    (
                        order_id,
                        k + 1,
                        product_ids[line["sku"]],
                        line["sku"],
                        line["quantity"],
                        Decimal(line["unitPrice"]),
                    )
                    for k, line in enumerate(lines)
                ],
            )
            await connection.execute(
                "INSERT INTO order_events (order_id, kind, to_status, created_at) VALUES ($1, 'STATUS_CHANGED', "
                "'PENDING', $2)",
                order_id,
                now,
            )
            await connection.execute(
                "INSERT INTO outbox (kind, topic, payload, created_at, published_at, attempts) "
                "VALUES ('event', 'order', $1, $2, $2, 0)",
                json.dumps({"orderId": order_id}),
                now,
            )

    try:
        return await run_concurrently(count, concurrency, create)
    finally:
        await pool.close()


RAW_LINES = (
    "SELECT order_id, sku, quantity, unit_price FROM order_lines WHERE order_id = ANY($1::bigint[]) ORDER BY line_no"
)
RAW_COLUMNS = "SELECT id, number, status, total, currency, placed_at FROM orders"


async def raw_read(dsn: str, pages: int, deep_page: int, repeats: int) -> dict[str, list[float]]:
    """The same reads in two SELECTs a page: by key (as the API now pages) and by the old OFFSET."""
    connection = await asyncpg.connect(dsn)
    latencies: dict[str, list[float]] = {"walk": [], "deep": [], "deep offset": []}

    async def by_key(key: tuple | None) -> tuple:
        if key is None:
            orders = await connection.fetch(f"{RAW_COLUMNS} ORDER BY placed_at DESC, id DESC LIMIT 101")
        else:
            orders = await connection.fetch(
                f"{RAW_COLUMNS} WHERE (placed_at, id) < ($1, $2) ORDER BY placed_at DESC, id DESC LIMIT 101", *key
            )
        await connection.fetch(RAW_LINES, [row["id"] for row in orders[:100]])
        return orders[99]["placed_at"], orders[99]["id"]

    async def by_offset(number: int) -> None:
        orders = await connection.fetch(
            f"{RAW_COLUMNS} ORDER BY placed_at DESC, id DESC OFFSET $1 LIMIT 101", (number - 1) * 100
        )
        await connection.fetch(RAW_LINES, [row["id"] for row in orders[:100]])

    try:
        key, deep_key = None, None
        for number in range(1, max(pages, deep_page - 1) + 1):
            started = time.perf_counter()
            key = await by_key(key)
            if number <= pages:
                latencies["walk"].append(time.perf_counter() - started)
            if number == deep_page - 1:
                deep_key = key
        for _ in range(repeats):
            started = time.perf_counter()
            await by_key(deep_key)
            latencies["deep"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await by_offset(deep_page)
            latencies["deep offset"].append(time.perf_counter() - started)
    finally:
        await connection.close()
    return latencies


# --- setup -------------------------------------------------------------------


async def prepare(dsn: str) -> tuple[int, dict[str, int]]:
    connection = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        for sku in SKUS:
            await connection.execute(
                "INSERT INTO products (sku, name, handling, created_at, updated_at) VALUES ($1, $1, '[]', $2, $2)",
                sku,
                now,
            )
        product_ids = {row["sku"]: row["id"] for row in await connection.fetch("SELECT id, sku FROM products")}
        channel_id = await connection.fetchval("SELECT id FROM channels WHERE code = 'manual'")
    finally:
        await connection.close()
    return channel_id, product_ids


def create_token(database_url: str) -> str:
    created = subprocess.run(
        [sys.executable, "-m", "oms_graphql.cli", "token", "create", "--role", "ADMIN", "--name", "bench"],
        env={**os.environ, "OMS_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    return created.stdout.split()[-1]


def run(args: argparse.Namespace, servers: int) -> dict[str, Any]:
    """One whole run on a fresh database with ``servers`` API processes; its figures."""
    from oms_graphql.db.migrate import upgrade

    admin_dsn = args.database.replace("postgresql+asyncpg://", "postgresql://")
    name = f"oms_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_execute(admin_dsn, f'CREATE DATABASE "{name}"'))
    url = f"{args.database.rpartition('/')[0]}/{name}"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    env = {**os.environ, "OMS_DATABASE_URL": url, "OMS_LOG_LEVEL": "WARNING", "OMS_BROKER_URL": "memory"}
    # One token reads as fast as it can: its cost bucket (OMS_COST_*, a per-client throttle) would
    # otherwise answer 429 and measure the throttle instead of the server.
    env["OMS_COST_RESTORE_FACTOR"] = "1000"
    if args.workers:  # a namespace of the run's own, so no other run's workers take its jobs
        env.update(OMS_BROKER_URL=args.broker, OMS_BROKER_NAMESPACE=name)
    processes: list[subprocess.Popen] = []
    figures: dict[str, Any] = {"servers": servers}
    try:
        upgrade(url)
        channel_id, product_ids = asyncio.run(prepare(dsn))
        token = create_token(url)
        print(f"Counting statements per orderCreate in-process ({args.count_orders} orders)...", flush=True)
        statements, cpu_ms, last_statements = asyncio.run(in_process_creates(url, token, args.count_orders))
        figures.update(statements=statements, cpu_ms=cpu_ms, last_statements=last_statements)
        processes, urls = start_servers(env, servers)
        processes += [
            subprocess.Popen([sys.executable, "-m", "oms_graphql.cli", "worker", "--processes", "1"], env=env)
            for _ in range(args.workers)
        ]
        print(
            f"Creating {args.orders:,} orders through GraphQL ({servers} server processes, {args.workers} job "
            f"workers, {args.concurrency} in flight)...",
            flush=True,
        )
        seconds = asyncio.run(graphql_create(urls, token, args.orders, args.concurrency))
        figures["created"] = args.orders / seconds
        full_pages = args.orders // 100 - 1
        pages, deep_page = min(args.pages, full_pages), min(args.deep_page, full_pages)
        figures["pages"], figures["deep_page"] = pages, deep_page
        figures["graphql"] = asyncio.run(graphql_read(urls[0], token, pages, deep_page, args.repeats))
        figures["pages_per_s"] = asyncio.run(graphql_read_throughput(urls, token, args.readers, pages))
        print("Same work in raw SQL (asyncpg, no ORM, no GraphQL)...", flush=True)
        figures["raw"] = asyncio.run(raw_read(dsn, pages, deep_page, args.repeats))  # the same rows as GraphQL's
        seconds = asyncio.run(raw_create(dsn, args.orders, args.concurrency, channel_id, product_ids))
        figures["raw_created"] = args.orders / seconds
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        asyncio.run(
            _execute(
                admin_dsn,
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
                f'DROP DATABASE IF EXISTS "{name}"',
            )
        )
    return figures


def report(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    graphql, raw = figures["graphql"], figures["raw"]
    deep = figures["deep_page"]
    rows = [
        ("orders created / s", figures["created"], figures["raw_created"], True),
        ("pages / s, orders(first: 100) with lines", figures["pages_per_s"], None, True),
        # raw_create: customer, address, order, lines (one executemany), event, outbox row.
        ("statements per orderCreate", figures["statements"], 6, False),
    ]
    for label, pct in (("p50", 50), ("p99", 99)):
        rows.append(
            (
                f"{label} page (pages 1-{figures['pages']}), ms",
                percentile(graphql["walk"], pct) * 1000,
                percentile(raw["walk"], pct) * 1000,
                False,
            )
        )
    for label, pct in (("p50", 50), ("p99", 99)):
        rows.append(
            (
                f"{label} page {deep} by cursor, ms",
                percentile(graphql["deep"], pct) * 1000,
                percentile(raw["deep"], pct) * 1000,
                False,
            )
        )
    for label, pct in (("p50", 50), ("p99", 99)):
        rows.append(
            (
                f"{label} page {deep} by OFFSET (old way; raw), ms",
                None,
                percentile(raw["deep offset"], pct) * 1000,
                False,
            )
        )
    rows.append(("mean page, ms", statistics.mean(graphql["walk"]) * 1000, statistics.mean(raw["walk"]) * 1000, False))
    print(
        f"\n{args.orders:,} orders, {figures['servers']} server processes, {args.workers} job workers, "
        f"{figures['pages']} pages of 100 (+ page {deep} x {args.repeats}, {args.readers} readers for pages/s), "
        f"PostgreSQL, {os.cpu_count()} cores\n"
    )
    print(f"{'measure':<48}{'GraphQL':>12}{'raw SQL':>12}{'ratio':>10}")
    for label, ours, theirs, rate in rows:
        ratio = "" if ours is None or theirs is None else f"{(theirs / ours if rate else ours / theirs):.2f}x"
        shown = ["-" if value is None else f"{value:,.0f}" if rate else f"{value:.1f}" for value in (ours, theirs)]
        print(f"{label:<48}{shown[0]:>12}{shown[1]:>12}{ratio:>10}")
    print(
        f"\norderCreate in-process, one at a time ({args.count_orders} orders, a known buyer): "
        f"{figures['statements']:.1f} statements and {figures['cpu_ms']:.2f} ms of this process's CPU per order "
        "(CPU is noisy on a shared machine; the count is not). The statements of the last one:"
    )
    for statement in figures["last_statements"]:
        print(f"  {statement}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database",
        default=os.environ.get("OMS_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=200, help="pages one client walks by cursor (latency)")
    parser.add_argument("--deep-page", type=int, default=50, help="the deep page read again and again")
    parser.add_argument("--repeats", type=int, default=100, help="reads of the deep page")
    parser.add_argument("--readers", type=int, default=8, help="clients at once for pages/s")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve", "--servers", dest="serve", type=int, default=2, help="`oms serve` processes")
    parser.add_argument("--workers", type=int, default=0, help="`oms worker` processes (0: no jobs run)")
    parser.add_argument(
        "--broker", default=os.environ.get("OMS_BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"), help="for --workers"
    )
    parser.add_argument("--count-orders", type=int, default=200, help="in-process orders for the statement count")
    parser.add_argument("--scaling", action="store_true", help="run with 1, then 2 server processes, and compare")
    args = parser.parse_args()

    runs = [run(args, servers) for servers in ((1, 2) if args.scaling else (args.serve,))]
    for figures in runs:
        report(args, figures)
    if args.scaling:
        one, two = runs
        print("\nScaling, 1 -> 2 server processes (same machine, same database):")
        for label, key in (("orders created / s", "created"), ("pages / s", "pages_per_s")):
            print(f"  {label:<22}{one[key]:>10,.0f} -> {two[key]:>8,.0f}  ({two[key] / one[key]:.2f}x)")
        for label, pct in (("page p50, ms", 50), ("page p99, ms", 99)):
            a, b = (percentile(r["graphql"]["walk"], pct) * 1000 for r in runs)
            print(f"  {label:<22}{a:>10.1f} -> {b:>8.1f}")


async def _execute(dsn: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


if __name__ == "__main__":
    main()
