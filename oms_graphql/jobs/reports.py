"""Report jobs: keep one order's share of the daily report tables up to date."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import dramatiq
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.config import get_settings
from oms_graphql.domain.reports.facts import refresh_orders
from oms_graphql.jobs.runtime import in_transaction


async def _refresh(session: AsyncSession, order_id: int) -> int:
    return await refresh_orders(session, [order_id], ZoneInfo(get_settings().report_timezone))


@dramatiq.actor(queue_name="reports", max_retries=20)
def refresh_order_report(order_id: int) -> None:
    """Recompute the order's contribution and apply the difference (idempotent: a repeat changes nothing)."""
    in_transaction(lambda session: _refresh(session, order_id))
