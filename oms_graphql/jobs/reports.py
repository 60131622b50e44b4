"""Report jobs: keep orders' share of the daily report tables up to date; store the
forecast reorder suggestions, daily from the scheduler (:func:`claim_forecast_refresh`)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import dramatiq
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.config import get_settings
from oms_graphql.db.models import utcnow
from oms_graphql.domain.channel_sync import take_lease
from oms_graphql.domain.reports.demand import MAX_SKUS, request_forecasts, stocked_skus, store_reorder_forecasts
from oms_graphql.domain.reports.facts import refresh_orders
from oms_graphql.jobs.runtime import in_transaction


async def _refresh(session: AsyncSession, order_ids: list[int]) -> int:
    return await refresh_orders(session, order_ids, ZoneInfo(get_settings().report_timezone))


@dramatiq.actor(queue_name="reports", max_retries=20)
def refresh_order_report(order_id: int) -> None:
    """Recompute the order's contribution and apply the difference (idempotent: a repeat changes nothing)."""
    in_transaction(lambda session: _refresh(session, [order_id]))


@dramatiq.actor(queue_name="reports", max_retries=20)
def refresh_order_reports(order_ids: list[int]) -> None:
    """The same for every order one transaction changed (a page of ingested orders), at once."""
    in_transaction(lambda session: _refresh(session, order_ids))


def store_forecasts(skus: list[str] | None = None) -> int:
    """Forecast these SKUs (default: every stocked one), MAX_SKUS per committed transaction; how
    many (SKU, location) suggestions were stored. A batch replaces its SKUs' rows whole, so a
    run cut short (SIGKILL) leaves each SKU's last complete figures, and a rerun is the same."""
    zone = ZoneInfo(get_settings().report_timezone)
    wanted = skus or in_transaction(stocked_skus)
    stored = 0
    for start in range(0, len(wanted), MAX_SKUS):
        batch = wanted[start : start + MAX_SKUS]

        async def store(session: AsyncSession, batch: list[str] = batch) -> int:
            return len(await store_reorder_forecasts(session, zone, batch))

        stored += in_transaction(store)
    return stored


@dramatiq.actor(queue_name="reports", max_retries=5, time_limit=30 * 60 * 1000)
def refresh_demand_forecasts(skus: list[str] | None = None) -> None:
    """The daily (OMS_FORECAST_REFRESH_HOUR) or asked-for (reorderForecastRefresh) refresh of the stored forecasts."""
    store_forecasts(skus)


FORECAST_LEASE = "reports.forecasts"


def next_forecast_refresh(now: datetime, zone: ZoneInfo, hour: int) -> datetime:
    """The first ``hour`` o'clock in ``zone`` after ``now``."""
    day = now.astimezone(zone).date()
    moment = datetime.combine(day, time(hour), zone)
    return moment if moment > now else datetime.combine(day + timedelta(days=1), time(hour), zone)


async def claim_forecast_refresh(session: AsyncSession, holder: str, zone: ZoneInfo, hour: int) -> bool:
    """Ask for the day's forecast refresh if it is due; whether this scheduler asked.

    The lease is held until the next refresh hour, so the first tick after that hour takes it
    (one scheduler of however many: a conditional UPDATE), and a tick after a missed hour (no
    worker was up, or a new installation) catches up. The job is requested through the outbox
    in the transaction that takes the lease: a scheduler killed in between leaves neither.
    """
    now = utcnow()
    if not await take_lease(session, FORECAST_LEASE, holder, next_forecast_refresh(now, zone, hour) - now):
        return False
    request_forecasts(session)
    return True
