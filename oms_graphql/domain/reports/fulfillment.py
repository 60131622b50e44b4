"""Fulfilment KPIs, exactly as API.md ("Reports") defines each rate.

- completionRate = orders DELIVERED or COMPLETED ÷ orders not cancelled;
- cancellationRate = orders CANCELLED ÷ all orders;
- returnRate = units received back on returns ÷ units shipped;
- lateShipmentRate = shipments dispatched after their order's promisedShipBy ÷ shipments dispatched;
- splitShipmentRate = orders shipped in more than one shipment ÷ orders with a shipment;
- hoursToShip = first dispatch − paidAt; hoursToDeliver = last delivery − paidAt (delivered orders).

Orders are those placed in the window; an order's location is that of its first shipment
(else of its first fulfilment order). Rates come from the daily counts; the percentiles
from the per-order facts of the window (one narrow indexed table, not the orders).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Channel, Location, ReportDailyFulfillment, ReportOrderFact
from oms_graphql.domain.reports.common import Window, percentile, rate


class FulfillmentGroup(Enum):
    CHANNEL = "CHANNEL"
    LOCATION = "LOCATION"


@dataclass
class Hours:
    mean: float | None
    p50: float | None
    p90: float | None


@dataclass
class FulfillmentKpis:
    key: str | None
    orders: int
    completion_rate: float | None
    cancellation_rate: float | None
    return_rate: float | None
    late_shipment_rate: float | None
    split_shipment_rate: float | None
    hours_to_ship: Hours
    hours_to_deliver: Hours


COUNTS = (
    "orders_all",
    "orders_cancelled",
    "orders_completed",
    "orders_shipped",
    "orders_split",
    "units_shipped",
    "units_returned",
    "shipments_dispatched",
    "shipments_late",
    "ship_seconds",
    "ship_count",
    "deliver_seconds",
    "deliver_count",
)


Quantiles = tuple[float | None, float | None]


def _hours(total_seconds: int, count: int, quantiles: Quantiles) -> Hours:
    p50, p90 = quantiles
    return Hours(mean=None if count == 0 else total_seconds / count / 3600, p50=p50, p90=p90)


async def _percentiles(
    session: AsyncSession, window: Window, group: Any
) -> tuple[dict[Any, Quantiles], dict[Any, Quantiles]]:
    """p50 and p90 of the hours to ship and to deliver per group, from the per-order facts."""
    facts = ReportOrderFact
    groups = [group] if group is not None else []
    to_ship: dict[Any, Quantiles] = defaultdict(lambda: (None, None))
    to_deliver: dict[Any, Quantiles] = defaultdict(lambda: (None, None))
    if session.get_bind().dialect.name == "postgresql":
        # percentile_cont interpolates as common.percentile does, without fetching the rows.
        ship, deliver = facts.seconds_to_ship, facts.seconds_to_deliver
        query = select(
            *groups,
            *(func.percentile_cont(q).within_group(ship) for q in (0.5, 0.9)),
            *(func.percentile_cont(q).within_group(deliver) for q in (0.5, 0.9)),
        ).where(ship.is_not(None))
        query = _filtered(query, facts, window)
        if group is not None:
            query = query.group_by(group)
        for row in await session.execute(query):
            key = row[0] if group is not None else None
            hours = [None if value is None else float(value) / 3600 for value in row[-4:]]
            to_ship[key], to_deliver[key] = (hours[0], hours[1]), (hours[2], hours[3])
        return to_ship, to_deliver
    query = _filtered(
        select(*groups, facts.seconds_to_ship, facts.seconds_to_deliver).where(facts.seconds_to_ship.is_not(None)),
        facts,
        window,
    )
    ships: dict[Any, list[float]] = defaultdict(list)
    delivers: dict[Any, list[float]] = defaultdict(list)
    for row in await session.execute(query):
        key = row[0] if group is not None else None
        ships[key].append(row[-2] / 3600)
        if row[-1] is not None:
            delivers[key].append(row[-1] / 3600)
    for key, values in ships.items():
        ordered = sorted(values)
        to_ship[key] = (percentile(ordered, 0.5), percentile(ordered, 0.9))
    for key, values in delivers.items():
        ordered = sorted(values)
        to_deliver[key] = (percentile(ordered, 0.5), percentile(ordered, 0.9))
    return to_ship, to_deliver


def _filtered(query: Any, table: Any, window: Window) -> Any:
    wanted = window.filter
    query = query.where(table.day >= window.first_day, table.day < window.end_day)
    if wanted.channel_codes:
        query = query.where(table.channel_id.in_(select(Channel.id).where(Channel.code.in_(wanted.channel_codes))))
    if wanted.location_codes:
        query = query.where(table.location_id.in_(select(Location.id).where(Location.code.in_(wanted.location_codes))))
    return query


async def fulfillment_kpis(
    session: AsyncSession, window: Window, group_by: FulfillmentGroup | None = None
) -> list[FulfillmentKpis]:
    table = ReportDailyFulfillment
    group_column: Any = (
        table.channel_id
        if group_by is FulfillmentGroup.CHANNEL
        else table.location_id
        if group_by is FulfillmentGroup.LOCATION
        else None
    )
    sums = [func.sum(getattr(table, name)) for name in COUNTS]
    query = select(*([group_column] if group_column is not None else []), *sums)
    query = _filtered(query, table, window)
    if group_column is not None:
        query = query.group_by(group_column)
    totals = {}
    for row in await session.execute(query):
        group = row[0] if group_column is not None else None
        values = row[1:] if group_column is not None else row
        totals[group] = dict(zip(COUNTS, (int(value or 0) for value in values), strict=True))
    # The per-order hours, for the percentiles.
    facts = ReportOrderFact
    fact_group: Any = (
        facts.channel_id
        if group_by is FulfillmentGroup.CHANNEL
        else facts.location_id
        if group_by is FulfillmentGroup.LOCATION
        else None
    )
    to_ship, to_deliver = await _percentiles(session, window, fact_group)
    names = await _names(session, group_by, [group for group in totals if group is not None])
    result = []
    for group, counts in totals.items():
        if counts["orders_all"] == 0:
            continue
        kept = counts["orders_all"] - counts["orders_cancelled"]
        result.append(
            FulfillmentKpis(
                key=names.get(group) if group is not None else None,
                orders=kept,
                completion_rate=rate(counts["orders_completed"], kept),
                cancellation_rate=rate(counts["orders_cancelled"], counts["orders_all"]),
                return_rate=rate(counts["units_returned"], counts["units_shipped"]),
                late_shipment_rate=rate(counts["shipments_late"], counts["shipments_dispatched"]),
                split_shipment_rate=rate(counts["orders_split"], counts["orders_shipped"]),
                hours_to_ship=_hours(counts["ship_seconds"], counts["ship_count"], to_ship[group]),
                hours_to_deliver=_hours(counts["deliver_seconds"], counts["deliver_count"], to_deliver[group]),
            )
        )
    result.sort(key=lambda kpis: kpis.key or "")
    return result


async def _names(session: AsyncSession, group_by: FulfillmentGroup | None, ids: list[int]) -> dict[int, str]:
    if group_by is None or not ids:
        return {}
    model: Any = Channel if group_by is FulfillmentGroup.CHANNEL else Location
    rows = await session.execute(select(model.id, model.code).where(model.id.in_(ids)))
    names: dict[int, str] = {row_id: code for row_id, code in rows}
    return names | ({0: "UNALLOCATED"} if 0 in ids else {})
