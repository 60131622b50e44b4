"""The daily stock aggregate behind inventoryKpis: per level and report day (OMS_REPORT_TIMEZONE),
the net change of on hand and the units shipped, so a report reads one row per level and
day that moved instead of every ledger row.

:func:`day_booking` is written by ``domain/inventory.move_stock`` with its ledger rows, in
the same statement on PostgreSQL (only a transaction holding the level's row lock touches
its day row, so it adds no lock to wait for, only the upsert's work under the lock already
held). Reservations never move on hand and book nothing. ``oms report rebuild`` (after a
time-zone change) and migration 0022 refill it from the ledger.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Date, Integer, bindparam, case, cast, delete, func, insert, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import FromClause

from oms_graphql.config import get_settings
from oms_graphql.db.models import ReportDailyStock, StockMovement

_DAY_COLUMNS = ("product_id", "location_id", "day", "on_hand_delta", "units_shipped")


def shipped_of(reason: str, on_hand_delta: int) -> int:
    """Units a ledger row shipped (the definition inventoryKpis counts)."""
    return -on_hand_delta if reason == "SHIP" else 0


def day_params(moment: datetime, movements: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The values :func:`day_booking` adds for one change, from its ledger rows."""
    return {
        "day": moment.astimezone(ZoneInfo(get_settings().report_timezone)).date(),
        "day_shipped": sum(shipped_of(row["reason"], row["on_hand_delta"]) for row in movements),
    }


@functools.cache
def day_booking(dialect: str, after: FromClause | None = None) -> Any:
    """INSERT .. ON CONFLICT that adds one change to its level's day. Its values are move_stock's
    parameters (of_product_id, at_location_id, by_on_hand) and :func:`day_params`; selected from
    ``after`` (the guarded UPDATE's CTE), a refused change books nothing."""
    on_hand, shipped = bindparam("by_on_hand", type_=Integer), bindparam("day_shipped", type_=Integer)
    values = select(
        bindparam("of_product_id", type_=BigInteger),
        bindparam("at_location_id", type_=BigInteger),
        bindparam("day", type_=Date),
        on_hand,
        shipped,
    ).where(or_(on_hand != 0, shipped != 0))
    if after is not None:
        values = values.select_from(after)
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # The Core table, not the ORM entity (whose INSERT with parameters is a bulk insert).
    table = ReportDailyStock.metadata.tables[ReportDailyStock.__tablename__]
    statement = make(table).from_select(list(_DAY_COLUMNS), values)
    return statement.on_conflict_do_update(
        index_elements=["product_id", "location_id", "day"],
        set_={
            "on_hand_delta": table.c.on_hand_delta + statement.excluded.on_hand_delta,
            "units_shipped": table.c.units_shipped + statement.excluded.units_shipped,
        },
    )


async def rebuild_stock_days(session: AsyncSession, zone: ZoneInfo) -> int:
    """Refill the aggregate from the whole ledger in ``zone``; how many (level, day) rows.

    On PostgreSQL the ledger is locked against writes (SHARE) first: once the lock is granted
    every movement before it has committed with its day booking, and none can write until this
    transaction commits, so nothing is counted twice or missed.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await session.execute(text("LOCK TABLE stock_movements IN SHARE MODE"))
    await session.execute(delete(ReportDailyStock))
    moved = StockMovement.on_hand_delta != 0
    if postgres:
        day = cast(func.timezone(zone.key, StockMovement.created_at), Date)
        shipped = case((StockMovement.reason == "SHIP", -StockMovement.on_hand_delta), else_=0)
        result = await session.execute(
            insert(ReportDailyStock).from_select(
                list(_DAY_COLUMNS),
                select(
                    StockMovement.product_id,
                    StockMovement.location_id,
                    day,
                    func.sum(StockMovement.on_hand_delta),
                    func.sum(shipped),
                )
                .where(moved)
                .group_by(StockMovement.product_id, StockMovement.location_id, day),
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
    # SQLite keeps no time zones: the days are cut here.
    totals: dict[tuple[int, int, date], list[int]] = defaultdict(lambda: [0, 0])
    rows = await session.stream(
        select(
            StockMovement.product_id,
            StockMovement.location_id,
            StockMovement.reason,
            StockMovement.on_hand_delta,
            StockMovement.created_at,
        ).where(moved)
    )
    async for product_id, location_id, reason, delta, created_at in rows:
        total = totals[(product_id, location_id, created_at.astimezone(zone).date())]
        total[0] += delta
        total[1] += shipped_of(reason, delta)
    if totals:
        await session.execute(
            insert(ReportDailyStock),
            [dict(zip(_DAY_COLUMNS, (*key, *total), strict=True)) for key, total in totals.items()],
        )
    return len(totals)
