"""`demandForecast`: each SKU's daily units in the window (from the daily SKU table), its
forecast (forecast.py) and a reorder suggestion per location it is stocked at."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Channel, Location, Product, StockLevel
from oms_graphql.domain.errors import DomainError
from oms_graphql.domain.reports.common import Window
from oms_graphql.domain.reports.sales import line_table, narrowed
from oms_graphql.domain.reports.forecast import ReorderSuggestion, forecast_demand, reorder_suggestion

MAX_SKUS = 50
MAX_HORIZON = 365
DEFAULT_LEAD_TIME_DAYS = 7


@dataclass
class DatedPoint:
    date: date
    quantity: float
    lower: float
    upper: float


@dataclass
class LocationReorder:
    location_code: str
    lead_time_days: int
    suggestion: ReorderSuggestion


@dataclass
class SkuForecast:
    sku: str
    method: str
    mase: float | None
    points: list[DatedPoint]
    reorders: list[LocationReorder]


async def daily_units(
    session: AsyncSession, window: Window, skus: list[str] | None, top: int
) -> dict[str, list[float]]:
    table = line_table(window)
    query = select(table.sku, table.day, func.sum(table.units))
    if window.filter.channel_codes:
        query = query.join(Channel, Channel.id == table.channel_id)
    query = narrowed(query, table, window)
    if skus:
        query = query.where(table.sku.in_(skus))
    rows = (await session.execute(query.group_by(table.sku, table.day))).all()
    series: dict[str, list[float]] = defaultdict(lambda: [0.0] * window.days)
    for sku in skus or []:
        series[sku]  # a SKU asked for and never sold forecasts zeros
    for sku, day, units in rows:
        series[sku][(day - window.first_day).days] = float(units or 0)
    if not skus:
        ranked = sorted(series, key=lambda sku: (-sum(series[sku]), sku))[:top]
        return {sku: series[sku] for sku in ranked}
    return dict(series)


async def demand_forecast(
    session: AsyncSession,
    window: Window,
    skus: list[str] | None,
    horizon_days: int = 28,
    top: int = 10,
    service_level: float = 0.95,
) -> list[SkuForecast]:
    if not 1 <= horizon_days <= MAX_HORIZON:
        raise DomainError(f"horizonDays must be 1 to {MAX_HORIZON}.", ("horizonDays",), "INVALID")
    if (skus is not None and len(skus) > MAX_SKUS) or not 1 <= top <= MAX_SKUS:
        raise DomainError(f"Forecast at most {MAX_SKUS} SKUs at a time.", ("skus",), "INVALID")
    if not 0.5 <= service_level < 1:
        raise DomainError("serviceLevel is a fraction from 0.5 to 0.999.", ("serviceLevel",), "INVALID")
    history = await daily_units(session, window, list(skus or window.filter.skus) or None, top)
    levels_query = (
        select(Product.sku, Location.code, StockLevel)
        .join(Product, Product.id == StockLevel.product_id)
        .join(Location, Location.id == StockLevel.location_id)
        .where(Product.sku.in_(list(history)))
        .order_by(Location.code)
    )
    if window.filter.location_codes:
        levels_query = levels_query.where(Location.code.in_(window.filter.location_codes))
    levels = defaultdict(list)
    for sku, code, level in await session.execute(levels_query):
        levels[sku].append((code, level))
    result = []
    for sku, units in history.items():
        forecast = forecast_demand(units, horizon_days, service_level)
        reorders = [
            LocationReorder(
                code,
                level.lead_time_days or DEFAULT_LEAD_TIME_DAYS,
                reorder_suggestion(
                    forecast,
                    lead_time_days=level.lead_time_days or DEFAULT_LEAD_TIME_DAYS,
                    on_hand=level.on_hand,
                    reserved=level.reserved,
                    in_transit=level.in_transit,
                    service_level=service_level,
                ),
            )
            for code, level in levels[sku]
        ]
        points = [
            DatedPoint(window.end_day + timedelta(days=index), p.quantity, p.lower, p.upper)
            for index, p in enumerate(forecast.points)
        ]
        result.append(SkuForecast(sku, forecast.method, forecast.mase, points, reorders))
    return result
