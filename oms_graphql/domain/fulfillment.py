"""Fulfillment orders: the part of an order that one location picks, packs and ships.

Allocation makes one fulfillment order per location an order takes stock from
(Shopify's idea). It can be held without holding the customer's order (its
dispatch stops, nothing else), and moved to another location while nothing of
it has shipped: the reservations move in the same transaction, reserved at the
new location first (never oversold, safety stock kept) and released at the old
one after.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Allocation,
    FulfillmentOrder,
    Hold,
    Location,
    Order,
    OrderEvent,
    Product,
    Shipment,
    utcnow,
)
from oms_graphql.domain.errors import DomainError, InsufficientStock, InvalidTransition, NotFound
from oms_graphql.domain.inventory import MovementReason, Reference, location_by_code, move_stock
from oms_graphql.domain.orders import HoldReason
from oms_graphql.events.outbox import request_job

OPEN, ON_HOLD, IN_PROGRESS, CLOSED, CANCELLED = "OPEN", "ON_HOLD", "IN_PROGRESS", "CLOSED", "CANCELLED"


async def fulfillment_order_by_id(
    session: AsyncSession, fulfillment_order_id: int, *, lock: bool = False
) -> FulfillmentOrder:
    query = select(FulfillmentOrder).where(FulfillmentOrder.id == fulfillment_order_id)
    found = await session.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound("No fulfillment order has this id.", ("id",))
    return found


def _note(session: AsyncSession, order: Order, kind: str, message: str, actor: str | None) -> None:
    # In the order's history (Order.events); its status does not change, so orderEvents stays quiet.
    session.add(OrderEvent(order_id=order.id, kind=kind, message=message, actor=actor))


async def move_fulfillment_order(
    session: AsyncSession, fulfillment_order: FulfillmentOrder, location_code: str, actor: str | None
) -> FulfillmentOrder:
    """Re-allocate an unshipped fulfillment order to ``location_code``; returns the one that now holds it
    (the same one, or the order's fulfillment order already open at that location)."""
    if fulfillment_order.status not in (OPEN, ON_HOLD):
        raise InvalidTransition(
            f"This fulfillment order is {fulfillment_order.status}; only an OPEN or ON_HOLD one can move.", ("id",)
        )
    target = await location_by_code(session, location_code)
    if target.id == fulfillment_order.location_id:
        raise DomainError("The fulfillment order is at this location already.", ("locationCode",), "SAME_LOCATION")
    if not target.can_ship:
        raise DomainError(f"{target.code} does not ship orders (canShip is false).", ("locationCode",), "CANNOT_SHIP")
    shipments = await session.scalar(
        select(Shipment.id).where(Shipment.fulfillment_order_id == fulfillment_order.id, Shipment.status != "CANCELLED")
    )
    allocations = list(
        (
            await session.scalars(
                select(Allocation)
                .where(Allocation.fulfillment_order_id == fulfillment_order.id, Allocation.status == "RESERVED")
                .order_by(Allocation.product_id)  # one lock order for every mover: no deadlocks
            )
        ).all()
    )
    if shipments is not None or any(allocation.shipped_quantity for allocation in allocations):
        raise InvalidTransition("Part of this fulfillment order has shipped; it cannot move any more.", ("id",))
    order = await session.get(Order, fulfillment_order.order_id, with_for_update=True)
    source = await session.get(Location, fulfillment_order.location_id)
    assert order is not None and source is not None
    reference = Reference("ORDER", str(order.id), order.number, actor)
    for allocation in allocations:
        product = await session.get(Product, allocation.product_id)
        assert product is not None
        taken = await move_stock(
            session,
            product=product,
            location=target,
            reason=MovementReason.RESERVE,
            reserved=allocation.quantity,
            reference=reference,
            keep_safety_stock=True,
        )
        if taken is None:
            raise InsufficientStock(
                f"{target.code} has fewer than {allocation.quantity} of {product.sku} available "
                "(above its safety stock); choose another location.",
                ("locationCode",),
            )
        released = await move_stock(
            session,
            product=product,
            location=source,
            reason=MovementReason.RELEASE,
            reserved=-allocation.quantity,
            reference=reference,
        )
        if released is None:
            raise DomainError("The ledger refused to release a reservation; run `oms stock verify`.")
        allocation.location_id = target.id
        allocation.reason = f"moved from {source.code} to {target.code}" + (f" by {actor}" if actor else "")
    holder = await session.scalar(
        select(FulfillmentOrder).where(
            FulfillmentOrder.order_id == order.id,
            FulfillmentOrder.location_id == target.id,
            FulfillmentOrder.status.in_((OPEN, ON_HOLD)),
        )
    )
    if holder is None:
        fulfillment_order.location_id = target.id
        holder = fulfillment_order
    else:
        for allocation in allocations:
            allocation.fulfillment_order_id = holder.id
        for hold in await open_holds(session, fulfillment_order.id):
            hold.fulfillment_order_id = holder.id
        holder.status = ON_HOLD if holder.status == ON_HOLD or fulfillment_order.status == ON_HOLD else OPEN
        fulfillment_order.status = CANCELLED
    _note(session, order, "FULFILLMENT_MOVED", f"Fulfillment moved from {source.code} to {target.code}", actor)
    # What the old location held is free again: backorders waiting for it may go now.
    for product_id in sorted({allocation.product_id for allocation in allocations}):
        request_job(session, "allocate_backorders", product_id=product_id)
    await session.flush()
    return holder


async def open_holds(session: AsyncSession, fulfillment_order_id: int) -> list[Hold]:
    return list(
        (
            await session.scalars(
                select(Hold)
                .where(Hold.fulfillment_order_id == fulfillment_order_id, Hold.released_at.is_(None))
                .order_by(Hold.id)
            )
        ).all()
    )


async def hold_fulfillment_order(
    session: AsyncSession,
    fulfillment_order: FulfillmentOrder,
    reason: HoldReason,
    note: str | None,
    actor: str | None,
) -> FulfillmentOrder:
    """Stop this fulfillment order's dispatch (the order's other fulfillment orders go on)."""
    if fulfillment_order.status not in (OPEN, ON_HOLD):
        raise InvalidTransition(f"This fulfillment order is {fulfillment_order.status}; it cannot be held.", ("id",))
    if not any(hold.reason == reason for hold in await open_holds(session, fulfillment_order.id)):
        session.add(
            Hold(
                order_id=fulfillment_order.order_id,
                fulfillment_order_id=fulfillment_order.id,
                reason=reason.value,
                note=note,
                raised_by=actor,
            )
        )
    fulfillment_order.status = ON_HOLD
    await session.flush()
    return fulfillment_order


async def release_fulfillment_order(
    session: AsyncSession, fulfillment_order: FulfillmentOrder, actor: str | None
) -> FulfillmentOrder:
    """Release every open hold of the fulfillment order; it may be dispatched again."""
    holds = await open_holds(session, fulfillment_order.id)
    if fulfillment_order.status != ON_HOLD or not holds:
        raise InvalidTransition(f"This fulfillment order is {fulfillment_order.status}, not ON_HOLD.", ("id",))
    now = utcnow()
    for hold in holds:
        hold.released_at, hold.released_by = now, actor
    fulfillment_order.status = OPEN
    await session.flush()
    return fulfillment_order
