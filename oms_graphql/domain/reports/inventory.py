"""Inventory KPIs per SKU and location, from the stock ledger (every figure is ledger rows).

For the window's days (report time zone):

- turnover = units shipped ÷ average closing on hand over the days (null when that is 0);
- daysOfCover = on hand at the end ÷ average units shipped a day (null without shipments);
- stockOutDays = days whose closing on hand was 0 or less;
- stockOutRate = stockOutDays ÷ days; deadStock = on hand at the end but nothing shipped.

The closing balances are rebuilt backwards from today's level: on hand at a day's end is
the level now less every movement after that day. Those movements are read per day from
the daily stock aggregate (stock_days.py), and summed per level in the database (the closings'
total and the stock-out days), so a report reads one row per level; the ratios are taken
from those whole numbers here. :func:`inventory_kpis_from_ledger` computes the same from the
raw ledger rows day by day, the definition the aggregate is tested (and benchmarked) against.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Date, Integer, Select, case, cast, func, literal, select
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


def _levels(window: Window) -> Select[int, int, int, str, str]:
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
    return levels_query


def _days_between(dialect: str, later: Any, earlier: Any) -> Any:
    if dialect == "postgresql":
        return later - earlier  # date - date is a whole number of days
    return cast(func.julianday(later) - func.julianday(earlier), Integer)  # SQLite keeps ISO text


async def inventory_kpis(session: AsyncSession, window: Window) -> list[InventoryKpis]:
    """The KPIs from the daily stock aggregate, summed per level in the database.

    Per level: on hand at the window's end is the level now less the days after the window;
    each moving day's closing is that less the window's later days (a running sum, newest
    first), held until the next moving day; the closings' total and the stock-out days come
    from those stretches, and the opening stretch from the first moving day.
    """
    if window.days == 0:
        return []
    between = functools.partial(_days_between, session.get_bind().dialect.name)
    first_day, end_day = literal(window.first_day, Date), literal(window.end_day, Date)
    levels = _levels(window).subquery()
    stock = ReportDailyStock
    level = (stock.product_id, stock.location_id)

    def of_level(table: Any, other: Any) -> Any:
        return (table.c.product_id == other.product_id) & (table.c.location_id == other.location_id)

    after = select(*level, func.sum(stock.on_hand_delta).label("moved")).where(stock.day >= window.end_day)
    after_sq = after.group_by(*level).subquery()
    ends = (
        select(levels, (levels.c.on_hand - func.coalesce(after_sq.c.moved, 0)).label("end_on_hand"))
        .select_from(levels.outerjoin(after_sq, of_level(after_sq, levels.c)))
        .subquery()
    )
    # newest first: the window's days after this one, and the next moving day
    later: dict[str, Any] = {"partition_by": level, "order_by": stock.day.desc(), "rows": (None, -1)}
    moves = (
        select(
            *level,
            stock.day,
            stock.on_hand_delta,
            stock.units_shipped,
            ends.c.end_on_hand,
            func.sum(stock.on_hand_delta).over(**later).label("moved_later"),
            func.lag(stock.day).over(**later).label("next_day"),
        )
        .join(ends, of_level(ends, stock))
        .where(stock.day >= window.first_day, stock.day < window.end_day)
        .subquery()
    )
    closing = moves.c.end_on_hand - func.coalesce(moves.c.moved_later, 0)
    held = between(func.coalesce(moves.c.next_day, end_day), moves.c.day)
    moved = (
        select(
            moves.c.product_id,
            moves.c.location_id,
            func.sum(moves.c.on_hand_delta).label("moved"),
            func.sum(moves.c.units_shipped).label("shipped"),
            # a day's change is missing from the closing of every earlier day of the window
            func.sum(moves.c.on_hand_delta * between(moves.c.day, first_day)).label("missing"),
            func.sum(case((closing <= 0, held), else_=0)).label("out_days"),
            func.min(moves.c.day).label("first_move"),
        )
        .group_by(moves.c.product_id, moves.c.location_id)
        .subquery()
    )
    opening = ends.c.end_on_hand - func.coalesce(moved.c.moved, 0)
    rows = await session.execute(
        select(
            ends.c.sku,
            ends.c.code,
            ends.c.end_on_hand,
            func.coalesce(moved.c.shipped, 0),
            ends.c.end_on_hand * window.days - func.coalesce(moved.c.missing, 0),
            func.coalesce(moved.c.out_days, 0)
            + case((opening <= 0, between(func.coalesce(moved.c.first_move, end_day), first_day)), else_=0),
        ).select_from(ends.outerjoin(moved, of_level(moved, ends.c)))
    )
    return _sorted(
        _kpis_of(sku, code, int(end), int(units), int(closings), int(out), window)
        for sku, code, end, units, closings, out in rows
    )


async def inventory_kpis_from_ledger(session: AsyncSession, window: Window) -> list[InventoryKpis]:
    """The same KPIs from every ledger row of the window and after (the definition)."""
    levels = {(row[0], row[1]): row for row in await session.execute(_levels(window))}
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
        out_days = sum(1 for value in closings if value <= 0)
        result.append(_kpis_of(sku, code, end_on_hand, shipped[key], sum(closings), out_days, window))
    return _sorted(result)


def _kpis_of(
    sku: str, code: str, end_on_hand: int, units: int, closings: int, out_days: int, window: Window
) -> InventoryKpis:
    """The KPIs of one level from its closing on hand summed over the window's days."""
    average = closings / window.days
    daily_demand = units / window.days
    return InventoryKpis(
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


def _sorted(kpis: Iterable[InventoryKpis]) -> list[InventoryKpis]:
    return sorted(kpis, key=lambda one: (one.sku, one.location_code))
