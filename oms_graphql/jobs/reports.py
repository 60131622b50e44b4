"""Report jobs: keep orders' share of the daily report tables up to date."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import dramatiq
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.config import get_settings
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
