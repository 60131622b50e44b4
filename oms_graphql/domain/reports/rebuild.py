"""Recompute every order's contribution: `oms report rebuild` (after a time-zone change, a
restore, or to check that the incremental tables were right)."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from oms_graphql.db.engine import Database
from oms_graphql.db.models import Order
from oms_graphql.domain.reports.facts import clear, refresh_orders
from oms_graphql.domain.reports.stock_days import rebuild_stock_days

BATCH = 2000


async def count_orders(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def rebuild_reports(database: Database, zone: ZoneInfo, progress: Callable[[int], None] | None = None) -> int:
    """Empty the report tables and refill them from the orders, one committed batch at a time
    (and the daily stock aggregate from the ledger, in one transaction).

    Orders changed meanwhile are refreshed by their own jobs, which lock the order rows as
    the batches do, so nothing is counted twice. Returns how many orders were read.
    """
    async with database.session() as session, session.begin():
        await rebuild_stock_days(session, zone)
    async with database.session() as session, session.begin():
        await clear(session)
    done, last_id = 0, 0
    while True:
        async with database.session() as session, session.begin():
            ids = list(
                await session.scalars(select(Order.id).where(Order.id > last_id).order_by(Order.id).limit(BATCH))
            )
            if not ids:
                return done
            await refresh_orders(session, ids, zone)
        last_id = ids[-1]
        done += len(ids)
        if progress is not None:
            progress(len(ids))
