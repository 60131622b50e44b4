"""Report jobs: keep orders' share of the daily report tables up to date; store the
forecast reorder suggestions."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import dramatiq
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.config import get_settings
from oms_graphql.domain.reports.demand import MAX_SKUS, stocked_skus, store_reorder_forecasts
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
    """The nightly (or asked-for, by reorderForecastRefresh) refresh of the stored forecasts."""
    store_forecasts(skus)
