"""One order's contribution to the daily report tables, and applying its difference.

A contribution is ``{table: [[key…, {column: number}], …]}``; it is stored on the
order's ``report_order_facts`` row. Refreshing an order computes the new contribution,
adds (new − stored) to the aggregate rows, and stores the new one: running it twice
changes nothing the second time. All numbers are integers (amounts in 1/10,000).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Address,
    FulfillmentOrder,
    Order,
    OrderLine,
    Product,
    ReportCustomerCategory,
    ReportCustomerChannel,
    ReportCustomerDay,
    ReportDailyCategorySales,
    ReportDailyFulfillment,
    ReportDailySales,
    ReportDailySkuSales,
    ReportDailySkuTotal,
    ReportOrderFact,
    Shipment,
    ShipmentLine,
)

SALES = ReportDailySales.__table__
SKU_SALES = ReportDailySkuSales.__table__
SKU_TOTALS = ReportDailySkuTotal.__table__
CATEGORY_SALES = ReportDailyCategorySales.__table__
CUSTOMER_CATEGORIES = ReportCustomerCategory.__table__
CUSTOMER_CHANNELS = ReportCustomerChannel.__table__
FULFILLMENT = ReportDailyFulfillment.__table__
CUSTOMER = ReportCustomerDay.__table__
FACTS: Any = ReportOrderFact.__table__
TABLES: dict[str, Any] = {
    "sales": SALES,
    "sku": SKU_SALES,
    "sku_totals": SKU_TOTALS,
    "category": CATEGORY_SALES,
    "customer_category": CUSTOMER_CATEGORIES,
    "customer_channel": CUSTOMER_CHANNELS,
    "fulfillment": FULFILLMENT,
    "customer": CUSTOMER,
}
KEYS = {
    "sales": ("day", "channel_id", "region", "currency"),
    "sku": ("day", "sku", "category", "channel_id", "region", "currency"),
    "sku_totals": ("day", "sku", "category", "currency"),
    "category": ("day", "category", "channel_id", "region", "currency"),
    "customer_category": ("customer_id", "day", "category"),
    "customer_channel": ("customer_id", "day", "channel_id"),
    "fulfillment": ("day", "channel_id", "location_id"),
    "customer": ("customer_id", "day", "currency"),
}
DONE_STATUSES = frozenset({"DELIVERED", "COMPLETED"})

Contribution = dict[str, list[list[Any]]]


def e4(amount: Decimal) -> int:
    """An amount in 1/10,000 (exact for NUMERIC(18, 4))."""
    return int((Decimal(amount) * 10000).to_integral_value())


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


class OrderFigures:
    """What the reports need of one order, loaded in bulk for many orders at once: ``order``,
    the lines and the shipments are rows of only the columns read here (not ORM objects)."""

    def __init__(self, order: Any, region: str | None) -> None:
        self.order = order
        self.region = region or ""
        self.lines: list[tuple[Any, str]] = []  # (line, category)
        self.shipments: list[Any] = []
        self.shipped_units = 0
        self.first_location = 0


ORDER_COLUMNS = (
    Order.id,
    Order.channel_id,
    Order.status,
    Order.customer_id,
    Order.currency,
    Order.total,
    Order.refunded_total,
    Order.placed_at,
    Order.paid_at,
    Order.promised_ship_by,
)
LINE_COLUMNS = (
    OrderLine.order_id,
    OrderLine.sku,
    OrderLine.quantity,
    OrderLine.unit_price,
    OrderLine.discount,
    OrderLine.refunded_quantity,
    OrderLine.returned_quantity,
)
SHIPMENT_COLUMNS = (
    Shipment.order_id,
    Shipment.location_id,
    Shipment.status,
    Shipment.dispatched_at,
    Shipment.delivered_at,
)


async def load_figures(session: AsyncSession, order_ids: Sequence[int]) -> list[OrderFigures]:
    figures = await _load_figures(session, lambda order_id: order_id.in_(order_ids))
    return [figures[order_id] for order_id in order_ids if order_id in figures]


async def load_figures_where(session: AsyncSession, orders: Any) -> list[OrderFigures]:
    """The orders that match ``orders`` (a condition on Order; a rebuild reads a range at a time)."""
    figures = await _load_figures(session, lambda order_id: order_id.in_(select(Order.id).where(orders)))
    return list(figures.values())


async def _load_figures(session: AsyncSession, which: Callable[[Any], Any]) -> dict[int, OrderFigures]:
    rows = await session.execute(
        select(*ORDER_COLUMNS, Address.region)
        .join(Address, Address.id == Order.shipping_address_id)
        .where(which(Order.id))
    )
    figures = {order.id: OrderFigures(order, order.region) for order in rows}
    lines = await session.execute(
        select(*LINE_COLUMNS, func.coalesce(Product.category, "").label("category"))
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where(which(OrderLine.order_id))
        .order_by(OrderLine.order_id, OrderLine.line_no)
    )
    for line in lines:
        figures[line.order_id].lines.append((line, line.category))
    shipments = await session.execute(select(*SHIPMENT_COLUMNS).where(which(Shipment.order_id)).order_by(Shipment.id))
    for shipment in shipments:
        figures[shipment.order_id].shipments.append(shipment)
    shipped = await session.execute(
        select(Shipment.order_id, func.sum(ShipmentLine.quantity))
        .join(ShipmentLine, ShipmentLine.shipment_id == Shipment.id)
        .where(which(Shipment.order_id), Shipment.dispatched_at.is_not(None), Shipment.status != "CANCELLED")
        .group_by(Shipment.order_id)
    )
    for order_id, units in shipped:
        figures[order_id].shipped_units = int(units or 0)
    first_locations = await session.execute(
        select(FulfillmentOrder.order_id, func.min(FulfillmentOrder.id))
        .where(which(FulfillmentOrder.order_id))
        .group_by(FulfillmentOrder.order_id)
    )
    first_ids = {order_id: fo_id for order_id, fo_id in first_locations}
    if first_ids:
        located = await session.execute(
            select(FulfillmentOrder.order_id, FulfillmentOrder.location_id).where(
                FulfillmentOrder.id.in_(list(first_ids.values()))
            )
        )
        for order_id, location_id in located:
            figures[order_id].first_location = location_id
    return figures


def line_net(line: Any) -> tuple[int, Decimal]:
    """Units kept (not refunded, not returned) and their value net of the line discount."""
    kept = line.quantity - line.refunded_quantity - line.returned_quantity
    if line.quantity <= 0 or kept <= 0:
        return 0, Decimal(0)
    per_unit = (line.unit_price * line.quantity - (line.discount or Decimal(0))) / line.quantity
    return kept, per_unit * kept


def contribution_of(figures: OrderFigures, zone: ZoneInfo) -> tuple[Contribution, dict[str, Any]]:
    """(the order's contribution, the columns of its facts row)."""
    order = figures.order
    day = local_day(order.placed_at, zone).isoformat()
    cancelled = order.status == "CANCELLED"
    dispatched = [s for s in figures.shipments if s.dispatched_at is not None and s.status != "CANCELLED"]
    location = dispatched[0].location_id if dispatched else figures.first_location
    result: Contribution = {"sales": [], "sku": [], "fulfillment": [], "customer": []}
    if order.paid_at is not None and not cancelled:
        lines = [(line, category, *line_net(line)) for line, category in figures.lines]
        units = sum(kept for _, _, kept, _ in lines)
        revenue = e4(order.total - order.refunded_total)
        result["sales"].append(
            [
                day,
                order.channel_id,
                figures.region,
                order.currency,
                {"orders": 1, "units": units, "revenue_e4": revenue},
            ]
        )
        if order.customer_id is not None:
            result["customer"].append([order.customer_id, day, order.currency, {"orders": 1, "revenue_e4": revenue}])
        per_sku: dict[tuple[str, str], list[Any]] = {}
        for line, category, kept, value in lines:
            if not line.sku:
                continue
            entry = per_sku.setdefault((line.sku, category), [0, 0])
            entry[0] += kept
            entry[1] += e4(value)
        for (sku, category), (kept, value) in per_sku.items():
            result["sku"].append(
                [
                    day,
                    sku,
                    category,
                    order.channel_id,
                    figures.region,
                    order.currency,
                    {"orders": 1, "units": kept, "revenue_e4": value},
                ]
            )
    seconds_to_ship = seconds_to_deliver = None
    counts: dict[str, int] = {"orders_all": 1}
    if cancelled:
        counts["orders_cancelled"] = 1
    else:
        if order.status in DONE_STATUSES:
            counts["orders_completed"] = 1
        if dispatched:
            counts["orders_shipped"] = 1
            counts["orders_split"] = 1 if len(dispatched) > 1 else 0
            counts["shipments_dispatched"] = len(dispatched)
            counts["shipments_late"] = sum(
                1
                for s in dispatched
                if order.promised_ship_by is not None
                and s.dispatched_at is not None
                and s.dispatched_at > order.promised_ship_by
            )
            counts["units_shipped"] = figures.shipped_units
            counts["units_returned"] = sum(line.returned_quantity for line, _ in figures.lines)
            if order.paid_at is not None:
                first = min(s.dispatched_at for s in dispatched if s.dispatched_at is not None)
                seconds_to_ship = int((first - order.paid_at).total_seconds())
                counts["ship_seconds"], counts["ship_count"] = seconds_to_ship, 1
                delivered = [s.delivered_at for s in dispatched if s.delivered_at is not None]
                if order.status in DONE_STATUSES and delivered:
                    seconds_to_deliver = int((max(delivered) - order.paid_at).total_seconds())
                    counts["deliver_seconds"], counts["deliver_count"] = seconds_to_deliver, 1
    result["fulfillment"].append([day, order.channel_id, location, {k: v for k, v in counts.items() if v}])
    row = {
        "day": date.fromisoformat(day),
        "channel_id": order.channel_id,
        "location_id": location,
        "cancelled": cancelled,
        "seconds_to_ship": seconds_to_ship,
        "seconds_to_deliver": seconds_to_deliver,
    }
    return result, row


def derived(contribution: Contribution) -> Contribution:
    """The entries computed from one order's stored entries rather than stored themselves, so
    that the contributions stored before their tables existed still subtract exactly what they
    added (migration 0016 fills the tables from the stored contributions the same way):
    the SKU totals (without channel and region), the categories (the order once each), and the
    customer's categories and channel (segment preferences)."""
    totals: list[list[Any]] = []
    categories: dict[tuple[Any, ...], dict[str, int]] = {}
    for day, sku, category, channel_id, region, currency, values in contribution.get("sku", []):
        totals.append([day, sku, category, currency, values])
        entry = categories.setdefault((day, category, channel_id, region, currency), {"orders": 1})
        for column in ("units", "revenue_e4"):
            entry[column] = entry.get(column, 0) + int(values.get(column, 0))
    result = {"sku_totals": totals, "category": [[*key, values] for key, values in categories.items()]}
    result["customer_category"], result["customer_channel"] = [], []
    channels = {channel_id for _day, channel_id, *_rest in contribution.get("sales", [])}
    for customer_id, day, _currency, _values in contribution.get("customer", []):
        for category in sorted({key[1] for key in categories}):
            result["customer_category"].append([customer_id, day, category, {"orders": 1}])
        for channel_id in sorted(channels):
            result["customer_channel"].append([customer_id, day, channel_id, {"orders": 1}])
    return result


def add_into(totals: dict[tuple[str, tuple[Any, ...]], dict[str, int]], contribution: Contribution, sign: int) -> None:
    """Add one order's contribution (and what derives from it) into ``totals``, × ``sign``."""
    for table, entries in (contribution | derived(contribution)).items():
        for entry in entries:
            where = (table, tuple(entry[:-1]))
            bucket = totals.get(where)
            if bucket is None:
                bucket = totals[where] = defaultdict(int)
            for column, value in entry[-1].items():
                bucket[column] += sign * int(value)


def _insert(session: AsyncSession) -> Callable[[Table], Any]:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert  # type: ignore[return-value]


async def apply_totals(session: AsyncSession, totals: dict[tuple[str, tuple[Any, ...]], dict[str, int]]) -> None:
    """Add each (table, key) → {column: delta} into the aggregate rows (upserts)."""
    grouped: dict[str, list[tuple[tuple[Any, ...], dict[str, int]]]] = defaultdict(list)
    for (table, key), values in totals.items():
        if any(values.values()):
            grouped[table].append((key, values))
    # Tables and keys in one order, so that two transactions adding into the same rows wait
    # for each other rather than deadlock.
    for table_name, entries in sorted(grouped.items()):
        table = TABLES[table_name]
        keys = KEYS[table_name]
        counters = [c.name for c in table.columns if c.name not in keys]
        day = keys.index("day")
        rows = []
        for key, values in entries:
            row = [*key, *(values.get(name, 0) for name in counters)]
            row[day] = date.fromisoformat(row[day]) if isinstance(row[day], str) else row[day]
            rows.append(tuple(row))
        rows.sort()
        await insert_rows(session, table, (*keys, *counters), rows, counters)


async def insert_rows(
    session: AsyncSession, table: Table, names: Sequence[str], rows: list[tuple[Any, ...]], adding: Sequence[str] = ()
) -> None:
    """Insert ``rows`` (values of the columns ``names``); ``adding``: on a key already there, add
    these columns into it instead (an upsert)."""
    if not rows:
        return
    keys = [c.name for c in table.primary_key]
    if session.get_bind().dialect.name == "postgresql":
        # One statement of one array per column: far fewer round trips and bound values than
        # multi-row VALUES, which matters to a rebuild writing millions of rows.
        dialect = session.get_bind().dialect
        arrays = ", ".join(f"CAST(:c{i} AS {table.c[name].type.compile(dialect)}[])" for i, name in enumerate(names))
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays})"
        if adding:
            sets = ", ".join(f"{name} = {table.name}.{name} + EXCLUDED.{name}" for name in adding)
            sql += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
        params: dict[str, list[Any]] = {}
        for i, (name, values) in enumerate(zip(names, zip(*rows, strict=True), strict=True)):
            # A text statement skips the column types' own conversions (JSON, UTCDateTime): apply them.
            convert = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            params[f"c{i}"] = [convert(value) for value in values] if convert else list(values)
        await session.execute(text(sql), params)
        return
    insert = _insert(session)
    for chunk_start in range(0, len(rows), 500):
        statement = insert(table).values(
            [dict(zip(names, row, strict=True)) for row in rows[chunk_start : chunk_start + 500]]
        )
        if adding:
            statement = statement.on_conflict_do_update(
                index_elements=keys, set_={name: table.c[name] + statement.excluded[name] for name in adding}
            )
        await session.execute(statement)


async def refresh_orders(session: AsyncSession, order_ids: Iterable[int], zone: ZoneInfo) -> int:
    """Bring the aggregates in line with these orders as they are now; how many changed."""
    ids = sorted(set(order_ids))
    if not ids:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        # Two refreshes of one order must not both subtract the same stored contribution.
        await session.execute(select(Order.id).where(Order.id.in_(ids)).order_by(Order.id).with_for_update())
    stored = {
        fact.order_id: fact
        for fact in await session.scalars(select(ReportOrderFact).where(ReportOrderFact.order_id.in_(ids)))
    }
    totals: dict[tuple[str, tuple[Any, ...]], dict[str, int]] = {}
    changed = 0
    for figures in await load_figures(session, ids):
        new, columns = contribution_of(figures, zone)
        fact = stored.get(figures.order.id)
        if fact is not None and fact.contribution == new:
            continue
        changed += 1
        if fact is not None:
            add_into(totals, fact.contribution, -1)
            for name, value in columns.items():
                setattr(fact, name, value)
            fact.contribution = new
        else:
            session.add(ReportOrderFact(order_id=figures.order.id, contribution=new, **columns))
        add_into(totals, new, +1)
    await apply_totals(session, totals)
    await session.flush()
    return changed


async def add_orders(session: AsyncSession, orders: Any, zone: ZoneInfo) -> tuple[int, set[int]]:
    """A rebuild's step: lock the orders that match ``orders`` (a condition on Order) and add
    them to tables cleared before, but those a refresh job added since the clear (they have
    their facts row): the caller refreshes them after this commits (in a second transaction,
    as a job would, so every transaction adds into the rows in one pass in one order and none
    deadlocks). Returns (how many orders, those to refresh)."""
    locked = select(Order.id).where(orders).order_by(Order.id)
    if session.get_bind().dialect.name == "postgresql":
        locked = locked.with_for_update(of=Order)
    order_ids = set(await session.scalars(locked))
    matching = select(Order.id).where(orders)
    refreshed = set(
        await session.scalars(select(ReportOrderFact.order_id).where(ReportOrderFact.order_id.in_(matching)))
    )
    wanted = order_ids - refreshed
    totals: dict[tuple[str, tuple[Any, ...]], dict[str, int]] = {}
    facts: list[tuple[Any, ...]] = []
    names = [column.name for column in FACTS.columns]
    now = datetime.now(UTC)
    for figures in await load_figures_where(session, orders):
        if figures.order.id not in wanted:  # refreshed already, or committed after the caller's lock
            continue
        contribution, row = contribution_of(figures, zone)
        add_into(totals, contribution, +1)
        fact = {"order_id": figures.order.id, **row, "contribution": contribution, "refreshed_at": now}
        facts.append(tuple(fact[name] for name in names))
    await insert_rows(session, FACTS, names, facts)
    await apply_totals(session, totals)
    return len(order_ids), refreshed & order_ids


async def clear(session: AsyncSession) -> None:
    for model in (
        ReportDailySales,
        ReportDailySkuSales,
        ReportDailySkuTotal,
        ReportDailyCategorySales,
        ReportCustomerCategory,
        ReportCustomerChannel,
        ReportDailyFulfillment,
        ReportCustomerDay,
        ReportOrderFact,
    ):
        await session.execute(delete(model))
