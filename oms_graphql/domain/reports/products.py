"""Top and rising products: each SKU's sales in the window beside the period of equal length
just before it (the salesTrend figures, from the per-SKU daily tables).

- A SKU's figure is its units, or its revenue (per line, net of discounts, refunds and
  returns, as salesTrend by SKU) summed over currencies as the amounts are.
- change = (figure − previous figure) ÷ previous figure; null when the SKU sold nothing before.
- top: the SKUs with the largest figures in the window.
- rising: the SKUs with the largest change among those that sold more than before (and sold
  something before) and sold at least ``min_units`` units in the window, so that a jump from
  1 unit to 2 does not lead it.
Ties are broken by the larger figure, then by SKU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import Enum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.domain.errors import Problems
from oms_graphql.domain.money import round_money
from oms_graphql.domain.reports.common import Window, from_e4
from oms_graphql.domain.reports.sales import line_table, narrowed

MAX_LIMIT = 100


class ProductMeasure(Enum):
    UNITS = "UNITS"
    REVENUE = "REVENUE"


@dataclass
class PeriodSales:
    units: int = 0
    orders: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class ProductSales:
    sku: str
    category: str
    current: PeriodSales
    previous: PeriodSales
    figure: Decimal = Decimal(0)
    previous_figure: Decimal = Decimal(0)

    @property
    def change(self) -> float | None:
        if not self.previous_figure:
            return None
        return float((self.figure - self.previous_figure) / self.previous_figure)


@dataclass
class TopProducts:
    previous_from: date
    top: list[ProductSales]
    rising: list[ProductSales]


def figure_of(sales: PeriodSales, measure: ProductMeasure) -> Decimal:
    return Decimal(sales.units) if measure is ProductMeasure.UNITS else sum(sales.revenue.values(), Decimal(0))


async def top_products(
    session: AsyncSession, window: Window, measure: ProductMeasure, limit: int = 10, min_units: int = 10
) -> TopProducts:
    problems = Problems()
    if not 1 <= limit <= MAX_LIMIT:
        problems.add(("limit",), f"limit must be 1 to {MAX_LIMIT}.", "INVALID")
    problems.not_negative(("minUnits",), min_units)
    problems.raise_if_any()
    previous_from = window.first_day - timedelta(days=window.days)
    table = line_table(window)
    current = (table.day >= window.first_day).label("current")
    query = select(
        table.sku,
        func.max(table.category),
        table.currency,
        current,
        func.sum(table.orders),
        func.sum(table.units),
        func.sum(table.revenue_e4),
    )
    query = narrowed(query, table, window, since=previous_from).group_by(table.sku, table.currency, current)
    found: dict[str, ProductSales] = {}
    for sku, category, currency, is_current, orders, units, revenue in await session.execute(query):
        product = found.setdefault(sku, ProductSales(sku, category, PeriodSales(), PeriodSales()))
        product.category = max(product.category, category)
        sales = product.current if is_current else product.previous
        sales.orders += int(orders)
        sales.units += int(units)
        sales.revenue[currency] = round_money(from_e4(revenue), currency)
    for product in found.values():
        product.figure = figure_of(product.current, measure)
        product.previous_figure = figure_of(product.previous, measure)
    ranked = sorted((p for p in found.values() if p.figure > 0), key=lambda p: (-p.figure, p.sku))
    growing = [p for p in ranked if 0 < p.previous_figure < p.figure and p.current.units >= min_units]
    growing.sort(key=lambda p: (-(p.change or 0.0), -p.figure, p.sku))
    return TopProducts(previous_from, ranked[:limit], growing[:limit])
