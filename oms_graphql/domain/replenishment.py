"""Reorder policy per SKU and location: safety stock, reorder point, reorder quantity, lead time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import StockLevel, utcnow
from oms_graphql.domain import limits, low_stock
from oms_graphql.domain.errors import Problems
from oms_graphql.domain.inventory import STOCK_CHANGED_JOB, level_id, product_and_location
from oms_graphql.events.outbox import request_job


@dataclass(frozen=True)
class ReorderPolicy:
    """None leaves a figure as it is."""

    safety_stock: int | None = None
    reorder_point: int | None = None
    reorder_quantity: int | None = None
    lead_time_days: int | None = None


async def set_reorder_policy(
    session: AsyncSession, *, sku: str, location_code: str, policy: ReorderPolicy
) -> StockLevel:
    """Set the policy of one level (created empty if needed) and re-check the low-stock alert.

    Raising the reorder point above what is available raises the alert at once;
    lowering it under what is available resolves it.
    """
    problems = Problems()
    for name, value in (
        ("safetyStock", policy.safety_stock),
        ("reorderPoint", policy.reorder_point),
        ("reorderQuantity", policy.reorder_quantity),
        ("leadTimeDays", policy.lead_time_days),
    ):
        problems.not_negative((name,), value)
        if name != "leadTimeDays":
            limits.check_units(problems, (name,), value)
    if policy.lead_time_days is not None and policy.lead_time_days > 365:
        problems.add(("leadTimeDays",), "leadTimeDays must be at most 365.", "TOO_LARGE")
    problems.raise_if_any()
    product, location = await product_and_location(session, sku, location_code)
    level = await level_id(session, product.id, location.id)
    values: dict = {"updated_at": utcnow()}
    for key in ("safety_stock", "reorder_point", "reorder_quantity", "lead_time_days"):
        if getattr(policy, key) is not None:
            values[key] = getattr(policy, key)
    if policy.safety_stock is not None:
        # Safety stock changes what may be sold: channels must hear about it.
        values["sync_version"] = StockLevel.sync_version + 1
    row = (
        await session.execute(
            update(StockLevel)
            .where(StockLevel.id == level)
            .values(values)
            .returning(StockLevel.sync_version, StockLevel.synced_version)
            .execution_options(synchronize_session=False)
        )
    ).one()
    if policy.safety_stock is not None and row[0] == row[1] + 1:
        request_job(session, STOCK_CHANGED_JOB, product_id=product.id)
    stock = await session.scalar(
        select(StockLevel).where(StockLevel.id == level).execution_options(populate_existing=True)
    )
    assert stock is not None
    available = max(0, stock.on_hand - stock.reserved - stock.safety_stock)
    await low_stock.check_crossing(
        session,
        level_id=level,
        product=product,
        location=location,
        available=available,
        in_transit=stock.in_transit,
        reorder_point=stock.reorder_point,
        alerted=stock.low_stock_alerted,
    )
    await session.refresh(stock)
    return stock
