"""Order creation and order-page reads through GraphQL, against raw SQL in the same run.

    python bench/bench_orders.py                      # PostgreSQL at 127.0.0.1, 10,000 orders
    python bench/bench_orders.py --orders 2000 --servers 1

It creates a fresh PostgreSQL database (dropped at the end), starts ``--servers``
`oms serve` processes on it (the scale-out setup: several API processes behind a
load balancer; here the client spreads requests over them), creates the orders
with ``--concurrency`` requests in flight, then reads ``orders(first: 100)``
pages with their lines. The same work is then done with hand-written SQL
over asyncpg (no ORM, no GraphQL) and the ratios are printed. Before all that,
``--count-orders`` orders are created through the app in this process to count the
statements (and the CPU) of one ``orderCreate``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

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


def start_servers(database_url: str, count: int) -> tuple[list[subprocess.Popen], list[str]]:
    env = {**os.environ, "OMS_DATABASE_URL": database_url, "OMS_BROKER_URL": "memory", "OMS_LOG_LEVEL": "WARNING"}
    processes, urls = [], []
    for index in range(count):
        port = 18100 + index
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


async def graphql_read(url: str, token: str, pages: int) -> list[float]:
    headers = {"authorization": f"Bearer {token}", "accept": "application/graphql-response+json"}
    latencies = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        after = None
        for _ in range(pages):
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": ORDERS_PAGE, "variables": {"after": after}})
            latencies.append(time.perf_counter() - started)
            page = response.json()["data"]["orders"]
            assert len(page["edges"]) == 100, "not enough orders for full pages"
            after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
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


async def raw_read(dsn: str, pages: int) -> list[float]:
    connection = await asyncpg.connect(dsn)
    latencies = []
    try:
        for page in range(pages):
            started = time.perf_counter()
            orders = await connection.fetch(
                "SELECT id, number, status, total, currency FROM orders ORDER BY placed_at DESC, id DESC "
                "OFFSET $1 LIMIT 101",
                page * 100,
            )
            await connection.fetch(
                "SELECT order_id, sku, quantity, unit_price FROM order_lines WHERE order_id = ANY($1::bigint[]) "
                "ORDER BY line_no",
                [row["id"] for row in orders[:100]],
            )
            latencies.append(time.perf_counter() - started)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database",
        default=os.environ.get("OMS_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--count-orders", type=int, default=200, help="in-process orders for the statement count")
    args = parser.parse_args()

    from oms_graphql.db.migrate import upgrade

    admin_dsn = args.database.replace("postgresql+asyncpg://", "postgresql://")
    name = f"oms_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_execute(admin_dsn, f'CREATE DATABASE "{name}"'))
    url = f"{args.database.rpartition('/')[0]}/{name}"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    processes: list[subprocess.Popen] = []
    try:
        upgrade(url)
        channel_id, product_ids = asyncio.run(prepare(dsn))
        token = create_token(url)
        print(f"Counting statements per orderCreate in-process ({args.count_orders} orders)...", flush=True)
        statements, cpu_ms, last_statements = asyncio.run(in_process_creates(url, token, args.count_orders))
        processes, urls = start_servers(url, args.servers)
        print(
            f"Creating {args.orders:,} orders through GraphQL ({args.servers} server processes, "
            f"{args.concurrency} in flight)...",
            flush=True,
        )
        graphql_seconds = asyncio.run(graphql_create(urls, token, args.orders, args.concurrency))
        pages = min(args.pages, max(1, args.orders // 100 - 1))
        graphql_latencies = asyncio.run(graphql_read(urls[0], token, pages))
        print("Same work in raw SQL (asyncpg, no ORM, no GraphQL)...", flush=True)
        raw_seconds = asyncio.run(raw_create(dsn, args.orders, args.concurrency, channel_id, product_ids))
        raw_latencies = asyncio.run(raw_read(dsn, pages))
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

    graphql_rate, raw_rate = args.orders / graphql_seconds, args.orders / raw_seconds
    rows = [
        ("orders created / s", f"{graphql_rate:,.0f}", f"{raw_rate:,.0f}", f"{raw_rate / graphql_rate:.2f}x"),
        # raw_create: customer, address, order, lines (one executemany), event, outbox row.
        ("statements per orderCreate", f"{statements:.1f}", "6", f"{statements / 6:.2f}x"),
    ]
    for label, pct in (("p50", 50), ("p99", 99)):
        graphql_ms, raw_ms = percentile(graphql_latencies, pct) * 1000, percentile(raw_latencies, pct) * 1000
        rows.append(
            (
                f"{label} orders(first: 100) with lines, ms",
                f"{graphql_ms:.1f}",
                f"{raw_ms:.1f}",
                f"{graphql_ms / raw_ms:.2f}x",
            )
        )
    rows.append(
        (
            "mean page, ms",
            f"{statistics.mean(graphql_latencies) * 1000:.1f}",
            f"{statistics.mean(raw_latencies) * 1000:.1f}",
            f"{statistics.mean(graphql_latencies) / statistics.mean(raw_latencies):.2f}x",
        )
    )
    print(f"\n{args.orders:,} orders, {pages} pages of 100, PostgreSQL, {os.cpu_count()} cores\n")
    print(f"{'measure':<44}{'GraphQL':>12}{'raw SQL':>12}{'ratio':>10}")
    for row in rows:
        print(f"{row[0]:<44}{row[1]:>12}{row[2]:>12}{row[3]:>10}")
    print(
        f"\norderCreate in-process, one at a time ({args.count_orders} orders, a known buyer): "
        f"{statements:.1f} statements and {cpu_ms:.2f} ms of this process's CPU per order "
        "(CPU is noisy on a shared machine; the count is not). The statements of the last one:"
    )
    for statement in last_statements:
        print(f"  {statement}")


async def _execute(dsn: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


if __name__ == "__main__":
    main()
