"""Recompute every order's contribution: `oms report rebuild` (after a time-zone change, a
restore, or to check that the incremental tables were right)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from oms_graphql.db.engine import Database
from oms_graphql.db.models import Order
from oms_graphql.domain.reports.facts import add_orders, clear, refresh_orders

BATCH = 10_000  # order ids a step covers


async def count_orders(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def rebuild_reports(database: Database, zone: ZoneInfo, progress: Callable[[int], None] | None = None) -> int:
    """Empty the report tables and refill them from the orders, one committed range of order
    ids at a time (a rebuild stopped half-way is run again from the start).

    Orders changed meanwhile are refreshed by their own jobs, which lock the order rows as
    the steps do, so nothing is counted twice; orders placed after the clear are their jobs'
    alone. Returns how many orders were read.
    """
    async with database.session() as session, session.begin():
        await clear(session)
        first, last = (await session.execute(select(func.min(Order.id), func.max(Order.id)))).one()
    if first is None:
        return 0
    starts = iter(range(first, last + 1, BATCH))
    done = 0

    async def steps() -> None:
        nonlocal done
        for start in starts:
            async with database.session() as session, session.begin():
                batch = select(Order.id).where(Order.id.between(start, start + BATCH - 1)).order_by(Order.id)
                if database.dialect == "postgresql":
                    batch = batch.with_for_update()
                ids = list(await session.scalars(batch))
                refreshed = await add_orders(session, ids, zone)
            if refreshed:
                async with database.session() as session, session.begin():
                    await refresh_orders(session, refreshed, zone)
            done += len(ids)
            if progress is not None:
                progress(len(ids))

    # On PostgreSQL two steps run at once, so one computes while the other waits on the database.
    async with asyncio.TaskGroup() as group:
        for _ in range(2 if database.dialect == "postgresql" else 1):
            group.create_task(steps())
    return done
