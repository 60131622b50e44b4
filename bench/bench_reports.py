"""Reports at scale: 1,000,000 orders on PostgreSQL, each report timed beside the raw-scan SQL
that answers the same question from the orders, and the two answers compared.

    .venv/bin/python bench/bench_reports.py                 # 1,000,000 orders
    .venv/bin/python bench/bench_reports.py --orders 50000  # quicker

Creates a fresh database beside OMS_BENCH_DATABASE_URL (dropped at the end unless --keep),
generates orders in bulk SQL (two years, a weekly season with busy weekends, four channels,
eight regions, 200 SKUs, 5% cancelled, 5% unpaid, shipments with late and split ones, 4% of
delivered lines returned and refunded) and two years of stock ledger rows for 600 levels, fills
the report tables with `oms report rebuild`'s code, then times each report (in process, through
the domain functions GraphQL calls) and its raw-scan SQL, and checks that the figures are equal.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console()
ZONE = "Asia/Shanghai"
START = datetime(2024, 1, 1, tzinfo=UTC)
CHUNK = 20_000
SKUS = 200
CUSTOMERS_PER_ORDER = 0.2
LOCAL = f"(o.placed_at AT TIME ZONE '{ZONE}')::date"


async def prepare(connection: asyncpg.Connection, orders: int) -> None:
    await connection.execute("SELECT setseed(0.42)")
    customers = max(1, int(orders * CUSTOMERS_PER_ORDER))
    await connection.execute(
        f"INSERT INTO customers (id, created_at) SELECT c, now() FROM generate_series(1, {customers}) c"
    )
    await connection.execute(
        "INSERT INTO channels (code, name, kind, settings, stock_share_percent, stock_buffer, poll_interval_seconds,"
        " active, created_at) SELECT 'bench-' || c, 'Bench ' || c, 'manual', '{}', 100, 0, 300, false, now()"
        " FROM unnest(ARRAY['taobao', 'jd', 'amazon', 'pos']) c"
    )
    await connection.execute(
        "INSERT INTO addresses (country, region, line1) SELECT 'CN', r, '1 Bench Road'"
        " FROM unnest(ARRAY['Shanghai', 'Beijing', 'Guangdong', 'Zhejiang', 'Jiangsu', 'Sichuan', 'Hubei', 'Fujian']) r"
    )
    await connection.execute(
        "INSERT INTO locations (code, name, kind, country, line1, priority, can_ship, can_pickup, regions_served,"
        " active, auto_dispatch, created_at) SELECT 'BENCH-' || n, 'Bench ' || n, 'WAREHOUSE', 'CN', '1 Bench Road',"
        " 100, true, false, '[]', true, false, now() FROM generate_series(1, 3) n"
    )
    await connection.execute(
        "INSERT INTO products (sku, name, category, price_amount, price_currency, handling, drop_ship, created_at,"
        f" updated_at) SELECT 'BENCH-' || n, 'Bench ' || n, 'cat-' || (n % 12), 5 + (n % 40), 'CNY', '[]', false,"
        f" now(), now() FROM generate_series(1, {SKUS}) n"
    )


async def generate(connection: asyncpg.Connection, low: int, high: int, total: int) -> None:
    """Orders low..high-1 with their lines and shipments, in a handful of set-based statements."""
    customers = max(1, int(total * CUSTOMERS_PER_ORDER))
    async with connection.transaction():
        await connection.execute(
            f"""
            WITH base AS (
              SELECT i, random() AS r, floor(random() * 730)::int AS day, floor(random() * 24)::int AS hour,
                     random() AS w FROM generate_series({low}, {high - 1}) i
            ), dated AS (
              -- the weekly season: 40% of Monday-Wednesday orders move to that week's Saturday
              SELECT *, TIMESTAMPTZ '{START.isoformat()}' + make_interval(days => day, hours => hour) AS t FROM base
            ), seasoned AS (
              SELECT *, CASE WHEN extract(isodow FROM t) IN (1, 2, 3) AND w < 0.4
                        THEN t + make_interval(days => (6 - extract(isodow FROM t))::int) ELSE t END AS placed
              FROM dated
            )
            INSERT INTO orders (id, number, channel_id, status, customer_id, shipping_address_id, currency, subtotal,
              discount, shipping_fee, tax, total, placed_at, paid_at, promised_ship_by, refunded_total, cancelled_at,
              created_at, updated_at)
            SELECT i, 'B' || i,
              (SELECT min(id) FROM channels) + (i % 4),
              CASE WHEN r < 0.05 THEN 'CANCELLED' WHEN r < 0.10 THEN 'PENDING' WHEN r < 0.20 THEN 'ALLOCATED'
                   WHEN r < 0.35 THEN 'SHIPPED' ELSE 'DELIVERED' END,
              NULL, (SELECT min(id) FROM addresses) + (i * 7 % 8), 'CNY', 0, 0, 8, 0, 0, placed,
              CASE WHEN r < 0.05 OR r >= 0.10 THEN placed + interval '10 minutes' END,
              placed + interval '10 minutes' + interval '24 hours', 0,
              CASE WHEN r < 0.05 THEN placed + interval '1 hour' END, placed, placed
            FROM seasoned
            """
        )
        await connection.execute(
            f"UPDATE orders SET customer_id = 1 + ((id * 2654435761) % {customers}) WHERE id >= {low} AND id < {high}"
        )
        await connection.execute(
            f"""
            INSERT INTO order_lines (order_id, line_no, product_id, sku, quantity, unit_price, discount,
              refunded_quantity, returned_quantity)
            SELECT o.id, n, p.id, p.sku, 1 + ((o.id + n) % 3), p.price_amount, 0, 0,
              CASE WHEN o.status = 'DELIVERED' AND random() < 0.04 THEN 1 ELSE 0 END
            FROM orders o CROSS JOIN generate_series(1, 3) n
            JOIN products p ON p.id = (SELECT min(id) FROM products) + ((o.id * 7 + n * 13) % {SKUS})
            WHERE o.id >= {low} AND o.id < {high} AND n <= 1 + o.id % 3
            """
        )
        await connection.execute(
            f"""
            UPDATE orders o SET subtotal = s.v, total = s.v + 8, refunded_total = s.back
            FROM (SELECT order_id, sum(quantity * unit_price) v, sum(returned_quantity * unit_price) back
                  FROM order_lines WHERE order_id >= {low} AND order_id < {high} GROUP BY order_id) s
            WHERE o.id = s.order_id
            """
        )
        await connection.execute(
            f"""
            INSERT INTO shipments (order_id, location_id, status, created_at, dispatched_at, delivered_at,
              channel_confirm_attempts)
            SELECT id, (SELECT min(id) FROM locations) + (id % 3),
              CASE WHEN status = 'DELIVERED' THEN 'DELIVERED' ELSE 'DISPATCHED' END, paid_at,
              paid_at + make_interval(mins => floor(random() * 2880)::int),
              CASE WHEN status = 'DELIVERED' THEN paid_at + make_interval(mins => 2880 + floor(random() * 4320)::int)
              END, 0
            FROM orders WHERE id >= {low} AND id < {high} AND status IN ('SHIPPED', 'DELIVERED')
            """
        )
        await connection.execute(
            f"""
            INSERT INTO shipment_lines (shipment_id, order_line_id, quantity)
            SELECT s.id, l.id, l.quantity FROM shipments s JOIN order_lines l ON l.order_id = s.order_id
            WHERE s.order_id >= {low} AND s.order_id < {high}
            """
        )
        # Every tenth shipped order sent a second parcel (its lines all left with the first).
        await connection.execute(
            f"""
            INSERT INTO shipments (order_id, location_id, status, created_at, dispatched_at, delivered_at,
              channel_confirm_attempts)
            SELECT order_id, location_id, status, created_at, dispatched_at + interval '3 hours',
              delivered_at, 0 FROM shipments
            WHERE order_id >= {low} AND order_id < {high} AND order_id % 10 = 0
            """
        )


async def generate_stock_history(connection: asyncpg.Connection) -> int:
    """Two years of ledger rows for every SKU at every bench location: a receipt of 50 every ten
    days, and on most days 1-6 shipments of a unit (each with its RESERVE and RELEASE rows, as
    the app books them); the levels are the rows' sums. Returns how many ledger rows."""
    async with connection.transaction():
        await connection.execute(
            f"""
            WITH level AS (
              SELECT p.id AS product_id, l.id AS location_id, row_number() OVER () AS n
              FROM products p CROSS JOIN locations l WHERE p.sku LIKE 'BENCH-%' AND l.code LIKE 'BENCH-%'
            ), day AS (
              SELECT level.*, d, TIMESTAMPTZ '{START.isoformat()}' + make_interval(days => d, hours => 1) AS morning,
                     floor(random() * 7)::int AS units
              FROM level CROSS JOIN generate_series(0, 729) d
            ), parcel AS (  -- one shipment of one unit per order line
              SELECT day.*, k FROM day CROSS JOIN generate_series(1, 6) k WHERE k <= units
            ), movement AS (
              SELECT product_id, location_id, 'RECEIPT' AS reason, 50 AS on_hand, 0 AS reserved, morning AS at
              FROM day WHERE d % 10 = n % 10
              UNION ALL
              SELECT product_id, location_id, 'RESERVE', 0, 1, morning + make_interval(hours => 2 + k) FROM parcel
              UNION ALL
              SELECT product_id, location_id, 'RELEASE', 0, -1, morning + make_interval(hours => 9 + k) FROM parcel
              UNION ALL
              SELECT product_id, location_id, 'SHIP', -1, 0, morning + make_interval(hours => 9 + k) FROM parcel
            )
            INSERT INTO stock_movements (product_id, location_id, reason, on_hand_delta, reserved_delta,
              in_transit_delta, created_at)
            SELECT product_id, location_id, reason, on_hand, reserved, 0, at FROM movement ORDER BY at
            """
        )
        await connection.execute(
            "INSERT INTO stock_levels (product_id, location_id, on_hand, reserved, in_transit, safety_stock,"
            " low_stock_alerted, sync_version, synced_version, updated_at)"
            " SELECT product_id, location_id, sum(on_hand_delta), 0, 0, 0, false, 0, 0, now() FROM stock_movements"
            " GROUP BY product_id, location_id"
        )
    return int(await connection.fetchval("SELECT count(*) FROM stock_movements"))


# --- the raw scans: the same questions asked of the orders -----------------------------

RAW_SALES_DAY = f"""
SELECT {LOCAL} AS day, count(*), sum(l.units), sum(o.total - o.refunded_total)
FROM orders o JOIN (SELECT order_id, sum(greatest(0, quantity - refunded_quantity - returned_quantity)) units
                    FROM order_lines GROUP BY order_id) l ON l.order_id = o.id
WHERE o.paid_at IS NOT NULL AND o.status <> 'CANCELLED' AND {LOCAL} >= $1 AND {LOCAL} < $2
GROUP BY 1 ORDER BY 1"""
RAW_SALES_CHANNEL_WEEK = f"""
SELECT date_trunc('week', {LOCAL})::date AS week, c.code, count(*), sum(o.total - o.refunded_total)
FROM orders o JOIN channels c ON c.id = o.channel_id
WHERE o.paid_at IS NOT NULL AND o.status <> 'CANCELLED' AND {LOCAL} >= $1 AND {LOCAL} < $2
GROUP BY 1, 2 ORDER BY 1, 2"""
RAW_SALES_SKU_MONTH = f"""
SELECT date_trunc('month', {LOCAL})::date AS month, l.sku, count(DISTINCT o.id),
  sum(greatest(0, l.quantity - l.refunded_quantity - l.returned_quantity)),
  sum(greatest(0, l.quantity - l.refunded_quantity - l.returned_quantity) * l.unit_price)
FROM orders o JOIN order_lines l ON l.order_id = o.id
WHERE o.paid_at IS NOT NULL AND o.status <> 'CANCELLED' AND {LOCAL} >= $1 AND {LOCAL} < $2
GROUP BY 1, 2 ORDER BY 1, 2"""
RAW_SALES_CATEGORY_MONTH = f"""
SELECT date_trunc('month', {LOCAL})::date AS month, coalesce(p.category, ''), count(DISTINCT o.id),
  sum(greatest(0, l.quantity - l.refunded_quantity - l.returned_quantity)),
  sum(greatest(0, l.quantity - l.refunded_quantity - l.returned_quantity) * l.unit_price)
FROM orders o JOIN order_lines l ON l.order_id = o.id LEFT JOIN products p ON p.id = l.product_id
WHERE o.paid_at IS NOT NULL AND o.status <> 'CANCELLED' AND {LOCAL} >= $1 AND {LOCAL} < $2
GROUP BY 1, 2 ORDER BY 1, 2"""
RAW_FULFILLMENT = f"""
WITH s AS (SELECT order_id, count(*) n, min(dispatched_at) first_dispatch, max(delivered_at) last_delivery,
             sum(CASE WHEN dispatched_at > o.promised_ship_by THEN 1 ELSE 0 END) late
           FROM shipments JOIN orders o ON o.id = order_id WHERE dispatched_at IS NOT NULL GROUP BY order_id),
     u AS (SELECT sh.order_id, sum(sl.quantity) shipped
           FROM shipment_lines sl JOIN shipments sh ON sh.id = sl.shipment_id GROUP BY sh.order_id),
     r AS (SELECT order_id, sum(returned_quantity) back FROM order_lines GROUP BY order_id)
SELECT c.code, count(*), sum(CASE WHEN o.status = 'CANCELLED' THEN 1 ELSE 0 END),
  sum(CASE WHEN o.status IN ('DELIVERED', 'COMPLETED') THEN 1 ELSE 0 END),
  sum(CASE WHEN o.status <> 'CANCELLED' AND s.n IS NOT NULL THEN 1 ELSE 0 END),
  sum(CASE WHEN o.status <> 'CANCELLED' AND s.n > 1 THEN 1 ELSE 0 END),
  sum(CASE WHEN o.status <> 'CANCELLED' AND s.n IS NOT NULL THEN u.shipped ELSE 0 END),
  sum(CASE WHEN o.status <> 'CANCELLED' AND s.n IS NOT NULL THEN r.back ELSE 0 END),
  sum(CASE WHEN o.status <> 'CANCELLED' THEN coalesce(s.n, 0) ELSE 0 END),
  sum(CASE WHEN o.status <> 'CANCELLED' THEN coalesce(s.late, 0) ELSE 0 END),
  percentile_cont(0.5) WITHIN GROUP (ORDER BY trunc(extract(epoch FROM s.first_dispatch - o.paid_at))::bigint / 3600.0)
    FILTER (WHERE o.status <> 'CANCELLED' AND s.n IS NOT NULL)
FROM orders o JOIN channels c ON c.id = o.channel_id
LEFT JOIN s ON s.order_id = o.id LEFT JOIN u ON u.order_id = o.id LEFT JOIN r ON r.order_id = o.id
WHERE {LOCAL} >= $1 AND {LOCAL} < $2 GROUP BY 1 ORDER BY 1"""
RAW_CUSTOMERS = f"""
SELECT o.customer_id, count(*), sum(o.total - o.refunded_total), max({LOCAL})
FROM orders o WHERE o.paid_at IS NOT NULL AND o.status <> 'CANCELLED' AND {LOCAL} >= $1 AND {LOCAL} < $2
GROUP BY 1 ORDER BY 1"""
RAW_PRODUCTS = f"""
SELECT l.sku, {LOCAL} >= $2 AS current, sum(greatest(0, l.quantity - l.refunded_quantity - l.returned_quantity))
FROM orders o JOIN order_lines l ON l.order_id = o.id
WHERE o.paid_at IS NOT NULL AND o.status <> 'CANCELLED' AND {LOCAL} >= $1 AND {LOCAL} < $3
GROUP BY 1, 2"""


async def timed(work: Callable[[], Awaitable[Any]], repeat: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = await work()
        best = min(best, time.perf_counter() - began)
    return best, result


def rank_scores(values: list[Any]) -> list[int]:
    """1 + ⌊(values smaller than each) × 5 ÷ how many⌋: the quintile score of every value."""
    ordered = sorted(values)
    return [1 + bisect.bisect_left(ordered, value) * 5 // len(ordered) for value in values]


def cents(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


async def fill(connection: asyncpg.Connection, database: Any, orders: int) -> None:
    from oms_graphql.domain.reports.rebuild import rebuild_reports

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("Generating orders", total=orders)
        await prepare(connection, orders)
        for low in range(1, orders + 1, CHUNK):
            high = min(orders + 1, low + CHUNK)
            await generate(connection, low, high, orders)
            progress.update(task, advance=high - low)
        await connection.execute("SELECT setval(pg_get_serial_sequence('orders', 'id'), (SELECT max(id) FROM orders))")
        await connection.execute("ANALYZE")
        movements = await generate_stock_history(connection)
        await connection.execute("ANALYZE")
        rebuild = progress.add_task("Rebuilding report tables", total=orders)
        began = time.perf_counter()
        await rebuild_reports(database, ZoneInfo(ZONE), lambda done: progress.update(rebuild, advance=done))
        rebuild_seconds = time.perf_counter() - began
    await connection.execute("ANALYZE")
    console.print(f"Rebuilt the report tables in {rebuild_seconds:.0f} s ({orders / rebuild_seconds:,.0f} orders/s).")
    days = await connection.fetchval("SELECT count(*) FROM report_daily_stock")
    console.print(f"{movements:,} ledger rows, {days:,} (level, day) rows of the daily stock aggregate.")


async def run(url: str, dsn: str, orders: int, reuse: bool) -> tuple[int, list[tuple[str, float, float, bool]]]:
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.reports import customers as customer_reports
    from oms_graphql.domain.reports import demand, fulfillment, inventory, products, sales
    from oms_graphql.domain.reports.common import Interval, check_window

    connection = await asyncpg.connect(dsn)
    database = Database(url)
    if reuse:
        await connection.execute("ANALYZE")
        orders = int(await connection.fetchval("SELECT count(*) FROM orders"))
    else:
        await fill(connection, database, orders)

    year = check_window(
        datetime(2024, 6, 30, 16, tzinfo=UTC), datetime(2025, 6, 30, 16, tzinfo=UTC), ZoneInfo(ZONE), None
    )
    first, end = year.first_day, year.end_day
    results: list[tuple[str, float, float, bool]] = []

    async def report(work: Callable[[Any], Awaitable[Any]]) -> tuple[float, Any]:
        async def once() -> Any:
            async with database.session() as session:
                return await work(session)

        return await timed(once)

    # salesTrend DAY
    ours_s, ours = await report(lambda s: sales.sales_trend(s, year, Interval.DAY))
    raw_s, raw = await timed(lambda: connection.fetch(RAW_SALES_DAY, first, end))
    same = [(p.period, p.orders, p.units, cents(p.revenue)) for p in ours] == [
        (r[0], r[1], r[2], cents(r[3])) for r in raw
    ]
    results.append(("salesTrend(DAY), a year", ours_s, raw_s, same))
    # salesTrend WEEK by CHANNEL
    ours_s, ours = await report(lambda s: sales.sales_trend(s, year, Interval.WEEK, sales.SalesGroup.CHANNEL))
    raw_s, raw = await timed(lambda: connection.fetch(RAW_SALES_CHANNEL_WEEK, first, end))
    # The window starts on a Monday (2024-07-01), so weeks are whole on both sides.
    same = sorted((p.period, p.key, p.orders, cents(p.revenue)) for p in ours) == sorted(
        (r[0], r[1], r[2], cents(r[3])) for r in raw
    )
    results.append(("salesTrend(WEEK, CHANNEL)", ours_s, raw_s, same))
    # salesTrend MONTH by SKU
    ours_s, ours = await report(lambda s: sales.sales_trend(s, year, Interval.MONTH, sales.SalesGroup.SKU))
    raw_s, raw = await timed(lambda: connection.fetch(RAW_SALES_SKU_MONTH, first, end))
    same = sorted((p.period, p.key, p.orders, p.units, cents(p.revenue)) for p in ours) == sorted(
        (r[0], r[1], r[2], r[3], cents(r[4])) for r in raw
    )
    results.append(("salesTrend(MONTH, SKU)", ours_s, raw_s, same))
    # salesTrend MONTH by CATEGORY: an order once per category
    ours_s, ours = await report(lambda s: sales.sales_trend(s, year, Interval.MONTH, sales.SalesGroup.CATEGORY))
    raw_s, raw = await timed(lambda: connection.fetch(RAW_SALES_CATEGORY_MONTH, first, end))
    same = sorted((p.period, p.key, p.orders, p.units, cents(p.revenue)) for p in ours) == sorted(
        (r[0], r[1], r[2], r[3], cents(r[4])) for r in raw
    )
    results.append(("salesTrend(MONTH, CATEGORY)", ours_s, raw_s, same))
    # fulfillmentKpis by CHANNEL
    ours_s, ours = await report(lambda s: fulfillment.fulfillment_kpis(s, year, fulfillment.FulfillmentGroup.CHANNEL))
    raw_s, raw = await timed(lambda: connection.fetch(RAW_FULFILLMENT, first, end))
    expected = []
    for code, total, cancelled, done, shipped, split, units, back, dispatched, late, p50 in raw:
        kept = total - cancelled
        back, units, late, dispatched = int(back), int(units), int(late), int(dispatched)
        expected.append(
            (
                code,
                kept,
                round(done / kept, 9),
                round(cancelled / total, 9),
                round(back / units, 9),
                round(late / dispatched, 9),
                round(split / shipped, 9),
                round(float(p50), 6),
            )
        )
    got = [
        (
            k.key,
            k.orders,
            round(k.completion_rate or 0, 9),
            round(k.cancellation_rate or 0, 9),
            round(k.return_rate or 0, 9),
            round(k.late_shipment_rate or 0, 9),
            round(k.split_shipment_rate or 0, 9),
            round(k.hours_to_ship.p50 or 0, 6),
        )
        for k in ours
    ]
    if got != expected:
        console.print("fulfillmentKpis differ:", [(g, e) for g, e in zip(got, expected, strict=False) if g != e])
    results.append(("fulfillmentKpis(CHANNEL)", ours_s, raw_s, got == expected))
    # customerSegments: the per-customer figures behind the scores
    ours_s, _ = await report(lambda s: customer_reports.customer_segments(s, year))
    raw_s, raw = await timed(lambda: connection.fetch(RAW_CUSTOMERS, first, end))
    async with database.session() as session:
        rfm = await customer_reports.customer_rfm(session, year)
    last = date.fromordinal(end.toordinal() - 1)
    same = [(c.customer_id, c.orders, cents(sum(c.revenue.values())), c.recency_days) for c in rfm] == [
        (r[0], r[1], cents(r[2]), (last - r[3]).days) for r in raw
    ]
    # and the scores are the rank rule's, worked out here from the raw scan's figures
    same = same and [(c.r, c.f, c.m) for c in rfm] == list(
        zip(*(rank_scores([r[i] for r in raw]) for i in (3, 1, 2)), strict=True)
    )
    results.append(("customerSegments", ours_s, raw_s, same))
    # the preferences per segment (only computed when asked for): no raw scan beside it
    ours_s, _ = await report(lambda s: customer_reports.segment_preferences(s, year))
    results.append(("customerSegments.preferences (extra)", ours_s, float("nan"), True))
    # topProducts by units: the year beside the year before it
    ours_s, ours = await report(lambda s: products.top_products(s, year, products.ProductMeasure.UNITS, limit=20))
    previous = date.fromordinal(first.toordinal() - year.days)
    raw_s, raw = await timed(lambda: connection.fetch(RAW_PRODUCTS, previous, first, end))
    units: dict[str, list[int]] = {}
    for sku, current, sold in raw:
        units.setdefault(sku, [0, 0])[0 if current else 1] += int(sold)
    expected_top = sorted(
        ((sku, now, before) for sku, (now, before) in units.items() if now), key=lambda t: (-t[1], t[0])
    )
    same = [(p.sku, p.current.units, p.previous.units) for p in ours.top] == expected_top[:20]
    results.append(("topProducts(UNITS), year vs year before", ours_s, raw_s, same))
    # inventoryKpis: every SKU at every location over the year, from the daily aggregate beside
    # the same computation over the raw ledger rows (the definition; both in process)
    ours_s, ours = await report(lambda s: inventory.inventory_kpis(s, year))
    raw_s, raw = await report(lambda s: inventory.inventory_kpis_from_ledger(s, year))
    results.append((f"inventoryKpis({len(ours)} levels)", ours_s, raw_s, ours == raw and bool(ours)))
    # demandForecast: ten SKUs over a year (the fit dominates; its history query is the aggregate read)
    ours_s, _ = await report(lambda s: demand.demand_forecast(s, year, [f"BENCH-{n}" for n in range(1, 11)]))
    results.append(("demandForecast(10 SKUs, 28 days)", ours_s, float("nan"), True))
    await database.dispose()
    await connection.close()
    return orders, results


async def _execute(dsn: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database",
        default=os.environ.get("OMS_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument(
        "--reuse",
        metavar="NAME",
        help="time the reports on a database kept by --keep (migrated to the head first; nothing generated)",
    )
    args = parser.parse_args()
    os.environ["OMS_REPORT_TIMEZONE"] = ZONE

    from oms_graphql.db.migrate import upgrade

    admin_dsn = args.database.replace("postgresql+asyncpg://", "postgresql://")
    name = args.reuse or f"oms_bench_{uuid.uuid4().hex[:8]}"
    if not args.reuse:
        asyncio.run(_execute(admin_dsn, f'CREATE DATABASE "{name}"'))
    url = f"{args.database.rpartition('/')[0]}/{name}"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        upgrade(url)
        orders, results = asyncio.run(run(url, dsn, args.orders, bool(args.reuse)))
    finally:
        if args.keep or args.reuse:
            print(f"Kept database {name}.")
        else:
            asyncio.run(
                _execute(
                    admin_dsn,
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
                    f'DROP DATABASE IF EXISTS "{name}"',
                )
            )
    print(f"\n{orders:,} orders, PostgreSQL, {os.cpu_count()} cores; best of 3 runs each\n")
    print(f"{'report':<44}{'aggregates':>12}{'raw scan':>12}{'faster':>9}  equal")
    for label, ours, raw, same in results:
        ratio = "" if raw != raw else f"{raw / ours:.0f}×"
        raw_text = "" if raw != raw else f"{raw * 1000:.0f} ms"
        print(f"{label:<44}{ours * 1000:>9.0f} ms{raw_text:>12}{ratio:>9}  {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
