"""Inventory KPIs per SKU and location, from the stock ledger (every figure is ledger rows).

For the window's days (report time zone):

- turnover = units shipped ÷ average closing on hand over the days (null when that is 0);
- daysOfCover = on hand at the end ÷ average units shipped a day (null without shipments);
- stockOutDays = days whose closing on hand was 0 or less;
- stockOutRate = stockOutDays ÷ days; deadStock = on hand at the end but nothing shipped.

The closing balances are rebuilt backwards from today's level: on hand at a day's end is
the level now less every movement after that day. Those movements are read per day from
the daily stock aggregate (stock_days.py); :func:`inventory_kpis_from_ledger` computes the
same from the raw ledger rows, the definition the aggregate is tested (and benchmarked)
against.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Location, Product, ReportDailyStock, StockLevel, StockMovement
from oms_graphql.domain.reports.common import Window
from oms_graphql.domain.reports.stock_days import shipped_of


@dataclass
class InventoryKpis:
    sku: str
    location_code: str
    on_hand: int  # at the end of the window
    units_shipped: int
    turnover: float | None
    days_of_cover: float | None
    stock_out_days: int
    stock_out_rate: float | None
    dead_stock: bool


def _local_midnight(day: date, window: Window) -> datetime:
    return datetime.combine(day, time(0), tzinfo=window.zone)


# Per level: on hand change per day index of the window (days at or after its end in one
# bucket, index window.days), and units shipped within the window.
Changes = dict[tuple[int, int], dict[int, int]]
Shipped = dict[tuple[int, int], int]


async def _levels(session: AsyncSession, window: Window) -> dict[tuple[int, int], Any]:
    wanted = window.filter
    levels_query = (
        select(StockLevel.product_id, StockLevel.location_id, StockLevel.on_hand, Product.sku, Location.code)
        .join(Product, Product.id == StockLevel.product_id)
        .join(Location, Location.id == StockLevel.location_id)
    )
    if wanted.skus:
        levels_query = levels_query.where(Product.sku.in_(wanted.skus))
    if wanted.categories:
        levels_query = levels_query.where(Product.category.in_(wanted.categories))
    if wanted.location_codes:
        levels_query = levels_query.where(Location.code.in_(wanted.location_codes))
    return {(row[0], row[1]): row for row in await session.execute(levels_query)}


async def inventory_kpis(session: AsyncSession, window: Window) -> list[InventoryKpis]:
    """The KPIs from the daily stock aggregate: one row per level and day that moved."""
    levels = await _levels(session, window)
    if not levels or window.days == 0:
        return []
    stock = ReportDailyStock
    day = case((stock.day >= window.end_day, window.end_day), else_=stock.day)
    days = await session.execute(
        select(stock.product_id, stock.location_id, day, func.sum(stock.on_hand_delta), func.sum(stock.units_shipped))
        .where(
            stock.day >= window.first_day,
            stock.product_id.in_({key[0] for key in levels}),
            stock.location_id.in_({key[1] for key in levels}),
        )
        .group_by(stock.product_id, stock.location_id, day)
    )
    changes: Changes = defaultdict(lambda: defaultdict(int))
    shipped: Shipped = defaultdict(int)
    for product_id, location_id, moved_on, delta, units in days:
        key = (product_id, location_id)
        index = (moved_on - window.first_day).days
        changes[key][index] += int(delta)
        if index < window.days:
            shipped[key] += int(units)
    return _kpis(levels, changes, shipped, window)


async def inventory_kpis_from_ledger(session: AsyncSession, window: Window) -> list[InventoryKpis]:
    """The same KPIs from every ledger row of the window and after (the definition)."""
    levels = await _levels(session, window)
    if not levels or window.days == 0:
        return []
    start = _local_midnight(window.first_day, window)
    movements = await session.execute(
        select(
            StockMovement.product_id,
            StockMovement.location_id,
            StockMovement.reason,
            StockMovement.on_hand_delta,
            StockMovement.created_at,
        ).where(
            StockMovement.created_at >= start,
            StockMovement.product_id.in_({key[0] for key in levels}),
            StockMovement.location_id.in_({key[1] for key in levels}),
            StockMovement.on_hand_delta != 0,
        )
    )
    changes: Changes = defaultdict(lambda: defaultdict(int))
    shipped: Shipped = defaultdict(int)
    for product_id, location_id, reason, delta, created_at in movements:
        key = (product_id, location_id)
        if key not in levels:
            continue
        index = min((created_at.astimezone(window.zone).date() - window.first_day).days, window.days)
        changes[key][index] += delta
        if index < window.days:
            shipped[key] += shipped_of(reason, delta)
    return _kpis(levels, changes, shipped, window)


def _kpis(
    levels: dict[tuple[int, int], Any], changes: Changes, shipped: Shipped, window: Window
) -> list[InventoryKpis]:
    result = []
    for key, (_, _, on_hand_now, sku, code) in levels.items():
        per_day = changes[key]
        closing = on_hand_now - per_day.get(window.days, 0)  # on hand at the window's end
        end_on_hand = closing
        closings = []
        for index in range(window.days - 1, -1, -1):
            closings.append(closing)
            closing -= per_day.get(index, 0)
        units = shipped[key]
        average = sum(closings) / len(closings)
        out_days = sum(1 for value in closings if value <= 0)
        daily_demand = units / window.days
        result.append(
            InventoryKpis(
                sku=sku,
                location_code=code,
                on_hand=end_on_hand,
                units_shipped=units,
                turnover=units / average if average > 0 else None,
                days_of_cover=end_on_hand / daily_demand if daily_demand > 0 else None,
                stock_out_days=out_days,
                stock_out_rate=out_days / window.days,
                dead_stock=end_on_hand > 0 and units == 0,
            )
        )
    result.sort(key=lambda kpis: (kpis.sku, kpis.location_code))
    return result
