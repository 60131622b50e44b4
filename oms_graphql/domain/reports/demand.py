"""`demandForecast`: each SKU's daily units in the window (from the daily SKU tables), its
forecast (forecast.py) and a reorder suggestion per location it is stocked at; and the stored
suggestions (``reorder_forecasts``) that low-stock alerts and transferSuggest read.

A location's part of a SKU's forecast is its share of the SKU's units allocated over the last
28 days (low_stock.daily_sales), an equal split when none were: the sales history is per SKU
(by the day orders were placed), the allocations say where they are served from.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Location, Product, ReorderForecast, StockLevel, utcnow
from oms_graphql.domain.errors import DomainError
from oms_graphql.domain.low_stock import daily_sales
from oms_graphql.domain.reports.common import Window, check_window
from oms_graphql.domain.reports.forecast import ReorderSuggestion, forecast_demand, reorder_suggestion
from oms_graphql.domain.reports.sales import line_table, narrowed
from oms_graphql.events.outbox import request_job

MAX_SKUS = 50
MAX_HORIZON = 365
DEFAULT_LEAD_TIME_DAYS = 7
FORECASTS_JOB = "refresh_demand_forecasts"
# The stored suggestions forecast from this many whole days before today.
STORED_HISTORY_DAYS = 182


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
    product_id: int = 0
    location_id: int = 0
    daily_demand: float = 0.0  # the location's share of the forecast, units a day


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
    levels: dict[str, list[tuple[str, StockLevel]]] = defaultdict(list)
    for sku, code, level in await session.execute(levels_query):
        levels[sku].append((code, level))
    result = []
    for sku, units in history.items():
        forecast = forecast_demand(units, horizon_days, service_level)
        shares = await location_shares(session, [level for _, level in levels[sku]])
        reorders = []
        wanted = window.filter.location_codes
        for code, level in levels[sku]:
            if wanted and code not in wanted:
                continue  # a location filter narrows the list, not the shares of the others
            served = forecast.share(shares[level.location_id])
            lead_time = level.lead_time_days or DEFAULT_LEAD_TIME_DAYS
            suggestion = reorder_suggestion(
                served,
                lead_time_days=lead_time,
                on_hand=level.on_hand,
                reserved=level.reserved,
                in_transit=level.in_transit,
                service_level=service_level,
            )
            reorders.append(
                LocationReorder(code, lead_time, suggestion, level.product_id, level.location_id, served.daily_mean())
            )
        points = [
            DatedPoint(window.end_day + timedelta(days=index), p.quantity, p.lower, p.upper)
            for index, p in enumerate(forecast.points)
        ]
        result.append(SkuForecast(sku, forecast.method, forecast.mase, points, reorders))
    return result


async def location_shares(session: AsyncSession, levels: list[StockLevel]) -> dict[int, float]:
    """Each level's location's share of its SKU's recent allocations (equal when there were none)."""
    if not levels:
        return {}
    rates = await daily_sales(session, levels[0].product_id, [level.location_id for level in levels])
    total = sum(rates.values())
    return {lid: (rate / total if total > 0 else 1 / len(rates)) for lid, rate in rates.items()}


def stored_history(zone: ZoneInfo, now: datetime | None = None) -> Window:
    """The whole days of history the stored suggestions forecast from, ending before today."""
    today = (now or utcnow()).astimezone(zone).date()
    start = datetime.combine(today - timedelta(days=STORED_HISTORY_DAYS), time(0), zone)
    return check_window(start, datetime.combine(today, time(0), zone), zone, None)


async def stocked_skus(session: AsyncSession) -> list[str]:
    """Every SKU with a stock level somewhere, in SKU order."""
    query = select(Product.sku).where(Product.id.in_(select(StockLevel.product_id))).order_by(Product.sku)
    return list(await session.scalars(query))


async def store_reorder_forecasts(
    session: AsyncSession, zone: ZoneInfo, skus: list[str], now: datetime | None = None
) -> list[tuple[str, LocationReorder, ReorderForecast]]:
    """Forecast these SKUs (at most MAX_SKUS) from their recent history and store each
    location's suggestion in place of the last one (running it twice stores the same rows)."""
    computed_at = now or utcnow()
    found = await demand_forecast(session, stored_history(zone, computed_at), skus, top=MAX_SKUS)
    product_ids = [r.product_id for each in found for r in each.reorders]
    if product_ids:
        await session.execute(delete(ReorderForecast).where(ReorderForecast.product_id.in_(product_ids)))
    stored = []
    for each in found:
        for reorder in each.reorders:
            row = ReorderForecast(
                product_id=reorder.product_id,
                location_id=reorder.location_id,
                method=each.method,
                lead_time_days=reorder.lead_time_days,
                daily_demand=reorder.daily_demand,
                demand=reorder.suggestion.demand,
                safety_stock=reorder.suggestion.safety_stock,
                quantity=reorder.suggestion.quantity,
                computed_at=computed_at,
            )
            session.add(row)
            stored.append((each.sku, reorder, row))
    await session.flush()
    return stored


def request_forecasts(session: AsyncSession) -> None:
    """Queue the refresh of every stocked SKU's stored forecasts (through the outbox)."""
    request_job(session, FORECASTS_JOB)
