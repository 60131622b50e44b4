"""Sales trend: units, orders, revenue and average order value per period (API.md "Reports").

Read from the daily tables: a row per (day, key, currency) at most, however many orders
there were; but with several SKUs (or categories) in the filter and no grouping by them, the
orders are counted from the stored per-order contributions, since the daily rows cannot tell
an order holding two of them from two orders. Sales count paid, not cancelled orders by their placed day; revenue
is the order total net of refunds (per line, net of its discount and of returned units,
when grouped by SKU or category); units are those not refunded or returned.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Date, String, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Channel,
    ReportDailyCategorySales,
    ReportDailySales,
    ReportDailySkuSales,
    ReportDailySkuTotal,
    ReportOrderFact,
)
from oms_graphql.domain.money import round_money
from oms_graphql.domain.reports.common import Interval, Window, from_e4, period_of


class SalesGroup(Enum):
    SKU = "SKU"
    CATEGORY = "CATEGORY"
    CHANNEL = "CHANNEL"
    REGION = "REGION"


# Periods in the moving average (this one and those before it), per interval.
MOVING_WINDOW = {Interval.DAY: 7, Interval.WEEK: 4, Interval.MONTH: 3}


@dataclass
class SalesPoint:
    period: date
    key: str | None
    currency: str
    units: int
    orders: int
    revenue: Decimal
    average_order_value: Decimal
    moving_average_revenue: Decimal
    revenue_change: float | None  # against the previous period of the same key and currency


def period_column(session: AsyncSession, day: Any, interval: Interval) -> Any:
    """The first day of ``day``'s period, in SQL (so the database sums a period's days)."""
    if interval is Interval.DAY:
        return day
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc("week" if interval is Interval.WEEK else "month", day), Date)
    # SQLite: the Sunday ending the ISO week, less six days; or the first of the month.
    return func.date(day, "weekday 0", "-6 days") if interval is Interval.WEEK else func.date(day, "start of month")


def line_table(window: Window, per_channel_or_region: bool = False) -> Any:
    """The per-SKU table to read: the compact totals, or the detailed one when a channel or
    region (in the filter or the grouping) must be told apart."""
    wanted = window.filter
    detailed = per_channel_or_region or bool(wanted.channel_codes or wanted.regions)
    return ReportDailySkuSales if detailed else ReportDailySkuTotal


def narrowed(query: Any, table: Any, window: Window, since: date | None = None) -> Any:
    """``query`` over ``table`` limited to the window's days (from ``since`` when given) and filter."""
    wanted = window.filter
    query = query.where(table.day >= (since or window.first_day), table.day < window.end_day)
    if wanted.channel_codes:
        query = query.where(table.channel_id.in_(select(Channel.id).where(Channel.code.in_(wanted.channel_codes))))
    if wanted.regions:
        query = query.where(table.region.in_(wanted.regions))
    if wanted.skus:
        query = query.where(table.sku.in_(wanted.skus))
    if wanted.categories:
        query = query.where(table.category.in_(wanted.categories))
    return query


def counts_orders_more_than_once(window: Window, group_by: SalesGroup | None) -> bool:
    """Whether summing the per-SKU (or per-category) rows would count an order holding two of
    the filtered SKUs (or categories) twice under one key: several in the filter and the rows
    not kept apart by the grouping."""
    wanted = window.filter
    if group_by is SalesGroup.SKU:
        return False
    if wanted.skus:
        return len(wanted.skus) > 1
    return len(wanted.categories) > 1 and group_by is not SalesGroup.CATEGORY


async def orders_once(
    session: AsyncSession, window: Window, group_by: SalesGroup | None, interval: Interval
) -> dict[tuple[date, str | None, str], int]:
    """Orders per (period, key, currency) with a line passing the filter, each counted once:
    from the orders' stored contributions (their per-SKU entries, as the daily tables got them),
    since the daily rows no longer tell which orders they share."""
    wanted = window.filter
    facts = ReportOrderFact
    # A cheap first cut in SQL: the value is in the stored JSON (written escaped or not); the
    # exact test follows.
    written = {json.dumps(v, ensure_ascii=ascii) for v in wanted.skus or wanted.categories for ascii in (True, False)}
    query = select(facts.contribution).where(
        facts.day >= window.first_day,
        facts.day < window.end_day,
        or_(*(cast(facts.contribution, String).contains(text, autoescape=True) for text in sorted(written))),
    )
    codes = {channel_id: code for channel_id, code in await session.execute(select(Channel.id, Channel.code))}

    def wanted_line(sku: str, category: str, channel_id: int, region: str) -> bool:
        return (
            (not wanted.skus or sku in wanted.skus)
            and (not wanted.categories or category in wanted.categories)
            and (not wanted.channel_codes or codes.get(channel_id) in wanted.channel_codes)
            and (not wanted.regions or region in wanted.regions)
        )

    def key_of(category: str, channel_id: int, region: str) -> str | None:
        if group_by is SalesGroup.CATEGORY:
            return category
        if group_by is SalesGroup.CHANNEL:
            return codes.get(channel_id)
        return region if group_by is SalesGroup.REGION else None

    counted: dict[tuple[date, str | None, str], int] = defaultdict(int)
    for (contribution,) in await session.execute(query):
        keys = {
            (period_of(date.fromisoformat(day), interval), key_of(category, channel_id, region), currency)
            for day, sku, category, channel_id, region, currency, _values in contribution.get("sku", [])
            if wanted_line(sku, category, channel_id, region)
        }
        for each in keys:
            counted[each] += 1
    return counted


async def daily_rows(
    session: AsyncSession, window: Window, group_by: SalesGroup | None, interval: Interval = Interval.DAY
) -> list[Any]:
    """(period, key, currency, orders, units, revenue_e4) summed over the other columns."""
    wanted = window.filter
    by_line = group_by in (SalesGroup.SKU, SalesGroup.CATEGORY) or bool(wanted.skus or wanted.categories)
    per_channel_or_region = group_by in (SalesGroup.CHANNEL, SalesGroup.REGION)
    table: Any
    if by_line and group_by is not SalesGroup.SKU and not wanted.skus:
        table = ReportDailyCategorySales  # an order once per category, not once per SKU
    elif by_line:
        table = line_table(window, per_channel_or_region)
    else:
        table = ReportDailySales
    key: Any
    if group_by is SalesGroup.SKU:
        key = table.sku
    elif group_by is SalesGroup.CATEGORY:
        key = table.category
    elif group_by is SalesGroup.CHANNEL:
        key = Channel.code
    elif group_by is SalesGroup.REGION:
        key = table.region
    else:
        key = None
    period = period_column(session, table.day, interval).label("period")
    columns = [period, table.currency, func.sum(table.orders), func.sum(table.units), func.sum(table.revenue_e4)]
    query = select(*columns, *([key] if key is not None else []))
    if group_by is SalesGroup.CHANNEL:
        query = query.join(Channel, Channel.id == table.channel_id)
    query = narrowed(query, table, window)
    query = query.group_by(period, table.currency, *([key] if key is not None else []))
    rows = []
    for row in await session.execute(query):
        day, currency, orders, units, revenue = row[:5]
        day = date.fromisoformat(day) if isinstance(day, str) else day
        rows.append((day, row[5] if key is not None else None, currency, int(orders), int(units), int(revenue)))
    if counts_orders_more_than_once(window, group_by):
        once = await orders_once(session, window, group_by, interval)
        rows = [(day, key, currency, once.get((day, key, currency), 0), *rest) for day, key, currency, _, *rest in rows]
    return rows


async def sales_trend(
    session: AsyncSession, window: Window, interval: Interval, group_by: SalesGroup | None = None
) -> list[SalesPoint]:
    sums: dict[tuple[date, str | None, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for day, key, currency, orders, units, revenue in await daily_rows(session, window, group_by, interval):
        if orders == 0 and units == 0 and revenue == 0:
            continue  # every order that made this row was cancelled or refunded away
        bucket = sums[(period_of(day, interval), key if key is None else str(key), currency)]
        bucket[0] += orders
        bucket[1] += units
        bucket[2] += revenue
    points: list[SalesPoint] = []
    history: dict[tuple[str | None, str], list[Decimal]] = defaultdict(list)
    ordered = sorted(sums.items(), key=lambda item: (item[0][1] or "", item[0][2], item[0][0]))
    for (period, key, currency), (orders, units, revenue_e4) in ordered:
        revenue = from_e4(revenue_e4)
        seen = history[(key, currency)]
        previous = seen[-1] if seen else None
        seen.append(revenue)
        recent = seen[-MOVING_WINDOW[interval] :]
        points.append(
            SalesPoint(
                period=period,
                key=key,
                currency=currency,
                units=units,
                orders=orders,
                revenue=round_money(revenue, currency),
                average_order_value=round_money(revenue / orders, currency) if orders else Decimal(0),
                moving_average_revenue=round_money(sum(recent, Decimal(0)) / len(recent), currency),
                revenue_change=float((revenue - previous) / previous) if previous else None,
            )
        )
    points.sort(key=lambda point: (point.period, point.key or "", point.currency))
    return points
