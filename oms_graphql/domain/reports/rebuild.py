"""Recompute every order's contribution: `oms report rebuild` (after a time-zone change, a
restore, or to check that the incremental tables were right)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, tuple_

from oms_graphql.db.engine import Database
from oms_graphql.db.models import Order
from oms_graphql.domain.reports.facts import add_orders, clear, refresh_orders
from oms_graphql.domain.reports.stock_days import rebuild_stock_days

BATCH = 10_000  # orders a step adds


async def count_orders(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def rebuild_reports(database: Database, zone: ZoneInfo, progress: Callable[[int], None] | None = None) -> int:
    """Empty the report tables and refill them from the orders, one committed step of orders
    at a time (a rebuild stopped half-way is run again from the start), and the daily stock
    aggregate from the ledger in one transaction.

    The steps go in placed order: every report row is of one placed day, so a step adds up its
    orders' entries in memory and writes each row once, and seldom adds into a row another step
    wrote. Orders changed meanwhile are refreshed by their own jobs, which lock the order rows
    as the steps do, so nothing is counted twice. Returns how many orders were read.
    """
    placed = tuple_(Order.placed_at, Order.id)
    async with database.session() as session, session.begin():
        await rebuild_stock_days(session, zone)
    async with database.session() as session, session.begin():
        await clear(session)
        numbered = select(
            Order.placed_at, Order.id, func.row_number().over(order_by=(Order.placed_at, Order.id)).label("n")
        ).subquery()
        firsts = [
            tuple(first)
            for first in await session.execute(
                select(numbered.c.placed_at, numbered.c.id)
                .where((numbered.c.n - 1) % BATCH == 0)
                .order_by(numbered.c.n)
            )
        ]
    steps = iter(zip(firsts, [*firsts[1:], None], strict=True))
    done = 0

    async def work() -> None:
        nonlocal done
        for first, following in steps:
            orders = placed >= first if following is None else (placed >= first) & (placed < following)
            async with database.session() as session, session.begin():
                added, refreshed = await add_orders(session, orders, zone)
            if refreshed:
                async with database.session() as session, session.begin():
                    await refresh_orders(session, refreshed, zone)
            done += added
            if progress is not None:
                progress(added)

    # On PostgreSQL two steps run at once, so one computes while the other waits on the database.
    async with asyncio.TaskGroup() as group:
        for _ in range(2 if database.dialect == "postgresql" else 1):
            group.create_task(work())
    return done
