"""Low-stock alerts: one alert each time available stock crosses below the reorder point.

The ledger calls :func:`check_crossing` after every movement while it still
holds the level's row lock, so the ``low_stock_alerted`` flag it read cannot
change before it is written: a burst of orders that takes a SKU under its
reorder point raises one alert, not one per order. Climbing back to (or above)
the reorder point clears the flag and resolves the alert, so the next fall
raises a new one.

The alert is written in the same transaction (an ``alerts`` row, an ``alert``
event for the subscription) and the notifier plugins are called afterwards by
the ``notify_alert`` job: plugin I/O never runs inside a transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import AlertRecord, Allocation, Location, Product, ReorderForecast, StockLevel, utcnow
from oms_graphql.events.outbox import record_event, request_job

LOW_STOCK = "LOW_STOCK"
NOTIFY_JOB = "notify_alert"
SALES_WINDOW_DAYS = 28
# A stored forecast older than this is not used (the job runs nightly; two nights missed).
FORECAST_FRESH_FOR = timedelta(hours=48)


async def daily_sales(
    session: AsyncSession, product_id: int, location_ids: list[int], days: int = SALES_WINDOW_DAYS
) -> dict[int, float]:
    """Units per day sold (allocated to orders, not released) at each location over the last ``days``."""
    since = utcnow() - timedelta(days=days)
    rows = await session.execute(
        select(Allocation.location_id, func.sum(Allocation.quantity))
        .where(
            Allocation.product_id == product_id,
            Allocation.location_id.in_(location_ids),
            Allocation.created_at >= since,
            Allocation.status != "RELEASED",
        )
        .group_by(Allocation.location_id)
    )
    sold = {int(location_id): int(units or 0) for location_id, units in rows}
    return {location_id: sold.get(location_id, 0) / days for location_id in location_ids}


async def fresh_forecasts(
    session: AsyncSession, product_id: int, location_ids: list[int], now: datetime | None = None
) -> dict[int, ReorderForecast]:
    """The stored forecasts (refresh_demand_forecasts) of one SKU at these locations that are
    recent enough to use, by location id."""
    since = (now or utcnow()) - FORECAST_FRESH_FOR
    rows = await session.scalars(
        select(ReorderForecast).where(
            ReorderForecast.product_id == product_id,
            ReorderForecast.location_id.in_(location_ids),
            ReorderForecast.computed_at >= since,
        )
    )
    return {row.location_id: row for row in rows}


@dataclass(frozen=True)
class PurchaseSuggestion:
    quantity: int
    explanation: str


def suggest_purchase(
    *,
    available: int,
    in_transit: int,
    reorder_point: int,
    reorder_quantity: int | None,
    lead_time_days: int | None,
    daily_rate: float,
    forecast: ReorderForecast | None = None,
) -> PurchaseSuggestion:
    """How many units to buy: enough to be back at the reorder point once the supplier delivers.

    With a stored forecast: up to its forecast demand over the lead time + safety stock (and
    at least back to the reorder point). Without one: demand during the lead time at the
    recent daily rate is added to the gap below the reorder point. The policy's reorder
    quantity is the minimum order either way.
    """
    if forecast is not None:
        target = max(reorder_point, math.ceil(forecast.demand + forecast.safety_stock))
        gap = target - (available + in_transit)
        parts = [
            f"forecast {forecast.demand:.1f} over the {forecast.lead_time_days}-day lead time + safety stock "
            f"{forecast.safety_stock:.1f} ({forecast.method}, {forecast.computed_at:%Y-%m-%d %H:%M} UTC)",
            f"available {available}",
        ]
        if in_transit:
            parts.append(f"in transit {in_transit}")
        if reorder_quantity and reorder_quantity >= gap:
            parts.append(f"minimum order {reorder_quantity}")
        return PurchaseSuggestion(max(reorder_quantity or 0, gap, 1), "; ".join(parts))
    lead_demand = math.ceil(daily_rate * (lead_time_days or 0))
    gap = reorder_point + lead_demand - (available + in_transit)
    quantity = max(reorder_quantity or 0, gap, 1)
    parts = [f"reorder point {reorder_point}", f"available {available}"]
    if in_transit:
        parts.append(f"in transit {in_transit}")
    if lead_demand:
        parts.append(f"~{lead_demand} selling during the {lead_time_days}-day lead time")
    if reorder_quantity and reorder_quantity >= gap:
        parts.append(f"minimum order {reorder_quantity}")
    return PurchaseSuggestion(quantity, "; ".join(parts))


async def check_crossing(
    session: AsyncSession,
    *,
    level_id: int,
    product: Product,
    location: Location,
    available: int,
    in_transit: int,
    reorder_point: int | None,
    alerted: bool,
) -> AlertRecord | None:
    """Raise or clear the low-stock alert of one level; the caller holds its row lock."""
    below = reorder_point is not None and available < reorder_point
    if below == alerted:
        return None
    await session.execute(
        update(StockLevel)
        .where(StockLevel.id == level_id)
        .values(low_stock_alerted=below)
        .execution_options(synchronize_session=False)
    )
    if not below:
        await session.execute(
            update(AlertRecord)
            .where(
                AlertRecord.kind == LOW_STOCK,
                AlertRecord.sku == product.sku,
                AlertRecord.location_code == location.code,
                AlertRecord.resolved_at.is_(None),
            )
            .values(resolved_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return None
    assert reorder_point is not None
    reorder_quantity, lead_time_days = (
        await session.execute(
            select(StockLevel.reorder_quantity, StockLevel.lead_time_days).where(StockLevel.id == level_id)
        )
    ).one()
    rate = (await daily_sales(session, product.id, [location.id]))[location.id]
    forecast = (await fresh_forecasts(session, product.id, [location.id])).get(location.id)
    suggestion = suggest_purchase(
        available=available,
        in_transit=in_transit,
        reorder_point=reorder_point,
        reorder_quantity=reorder_quantity,
        lead_time_days=lead_time_days,
        daily_rate=rate,
        forecast=forecast,
    )
    alert = AlertRecord(
        kind=LOW_STOCK,
        sku=product.sku,
        location_code=location.code,
        message=(
            f"{product.sku} at {location.code} is low: {available} available, under the reorder point "
            f"{reorder_point}. Buy {suggestion.quantity} ({suggestion.explanation})."
        )[:1000],
        suggested_quantity=suggestion.quantity,
        created_at=utcnow(),
    )
    session.add(alert)
    await session.flush()
    record_event(session, "alert", alert_payload(alert))
    request_job(session, NOTIFY_JOB, alert_id=alert.id)
    return alert


def alert_payload(alert: AlertRecord) -> dict:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "sku": alert.sku,
        "locationCode": alert.location_code,
        "message": alert.message,
        "suggestedQuantity": alert.suggested_quantity,
        "createdAt": alert.created_at.isoformat(),
    }
