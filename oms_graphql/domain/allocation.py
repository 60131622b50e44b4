"""Allocation: decide where each order is fulfilled from and reserve the stock.

The first allocation is simple on purpose: rank locations (a plugin strategy
may do it; by default the ones that can fill the whole order first, then by
priority), take what each can give line by line, and reserve it with the
ledger's guarded update. If any unit cannot be reserved the savepoint is
rolled back and the order waits as BACKORDERED.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Address,
    Allocation,
    FulfillmentOrder,
    Location,
    Order,
    OrderLine,
    Product,
    StockLevel,
)
from oms_graphql.domain.inventory import MovementReason, Reference, move_stock
from oms_graphql.domain.orders import OrderStatus, order_by_id, set_status
from oms_graphql.events.outbox import request_job
from oms_graphql.plugins.contract import AllocationRequest, CandidateLocation

# The dispatch job of a fulfillment order whose location dispatches by itself (domain/dispatch).
AUTO_DISPATCH_JOB = "dispatch_fulfillment_order"

RankLocations = Callable[[AllocationRequest, list[CandidateLocation]], list[str] | None]


@dataclass(frozen=True)
class AllocationOutcome:
    order_id: int
    status: str
    changed: bool


class _Short(Exception):
    """Not enough stock anywhere for one line; unwinds the savepoint."""


def default_rank(request: AllocationRequest, candidates: list[CandidateLocation]) -> list[str]:
    def fills_all(candidate: CandidateLocation) -> bool:
        return all(candidate.available.get(sku, 0) >= units for sku, units in request.lines.items())

    ranked = sorted(candidates, key=lambda c: (not fills_all(c), c.priority, c.code))
    return [candidate.code for candidate in ranked]


async def _candidates(session: AsyncSession, product_ids: list[int]) -> list[tuple[Location, dict[int, int]]]:
    rows = await session.execute(
        select(
            Location,
            StockLevel.product_id,
            StockLevel.on_hand - StockLevel.reserved - StockLevel.safety_stock,
        )
        .join(StockLevel, StockLevel.location_id == Location.id)
        .where(StockLevel.product_id.in_(product_ids), Location.active.is_(True), Location.can_ship.is_(True))
    )
    by_location: dict[int, tuple[Location, dict[int, int]]] = {}
    for location, product_id, available in rows:
        entry = by_location.setdefault(location.id, (location, {}))
        entry[1][product_id] = max(0, int(available))
    return list(by_location.values())


async def allocate_order(
    session: AsyncSession, order_id: int, rank: RankLocations | None = None, actor: str | None = "allocator"
) -> AllocationOutcome:
    """Reserve stock for a CONFIRMED or BACKORDERED order; any other status is left alone.

    Idempotent: an order already ALLOCATED (or held, or cancelled) is not touched.
    """
    order = await order_by_id(session, order_id, lock=True)
    if order.status not in (OrderStatus.CONFIRMED, OrderStatus.BACKORDERED):
        return AllocationOutcome(order.id, order.status, False)
    lines = [
        line
        for line in (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all()
        if line.product_id is not None and line.quantity > line.refunded_quantity
    ]
    products = {
        product.id: product
        for product in (
            await session.scalars(select(Product).where(Product.id.in_({line.product_id for line in lines})))
        ).all()
    }
    # (line, its product, units still wanted): unmapped and fully refunded lines need no stock.
    wanted = [(line, products[line.product_id or 0], line.quantity - line.refunded_quantity) for line in lines]
    locations = await _candidates(session, list(products))
    address = await session.get(Address, order.shipping_address_id)
    request = AllocationRequest(
        order_number=order.number,
        lines={product.sku: units for _line, product, units in wanted},
        latitude=address.latitude if address else None,
        longitude=address.longitude if address else None,
        country=address.country if address else None,
        region=address.region if address else None,
    )
    candidates = [
        CandidateLocation(
            code=location.code,
            kind=location.kind,
            priority=location.priority,
            available={products[pid].sku: units for pid, units in available.items()},
            latitude=location.latitude,
            longitude=location.longitude,
        )
        for location, available in locations
    ]
    order_of_codes = (rank(request, candidates) if rank else None) or default_rank(request, candidates)
    by_code = {location.code: (location, available) for location, available in locations}
    ranked = [by_code[code] for code in order_of_codes if code in by_code]

    reference = Reference("ORDER", str(order.id), order.number, actor)
    try:
        async with session.begin_nested():
            taken: list[tuple[OrderLine, Location, int]] = []
            for line, product, remaining in wanted:
                for location, available in ranked:
                    take = min(remaining, available.get(product.id, 0))
                    if take <= 0:
                        continue
                    figures = await move_stock(
                        session,
                        product=product,
                        location=location,
                        reason=MovementReason.RESERVE,
                        reserved=take,
                        reference=reference,
                        keep_safety_stock=True,
                    )
                    if figures is None:  # a concurrent order took it first
                        continue
                    available[product.id] -= take
                    taken.append((line, location, take))
                    remaining -= take
                    if remaining == 0:
                        break
                if remaining > 0:
                    raise _Short(line.sku)
            fulfillment_orders: dict[int, FulfillmentOrder] = {}
            for _line, location, _units in taken:
                if location.id not in fulfillment_orders:
                    fulfillment_orders[location.id] = FulfillmentOrder(order_id=order.id, location_id=location.id)
                    session.add(fulfillment_orders[location.id])
            await session.flush()
            for line, location, units in taken:
                session.add(
                    Allocation(
                        order_id=order.id,
                        order_line_id=line.id,
                        fulfillment_order_id=fulfillment_orders[location.id].id,
                        location_id=location.id,
                        product_id=line.product_id,
                        quantity=units,
                        reason=f"priority {location.priority}"
                        + ("; fills the whole order" if len(fulfillment_orders) == 1 else "; split"),
                    )
                )
            set_status(
                session,
                order,
                OrderStatus.ALLOCATED,
                f"Allocated to {_codes(fulfillment_orders, ranked)}",
                actor,
            )
            for location_id, fulfillment_order in fulfillment_orders.items():
                if next(location for _line, location, _units in taken if location.id == location_id).auto_dispatch:
                    request_job(session, AUTO_DISPATCH_JOB, fulfillment_order_id=fulfillment_order.id)
    except _Short as short:
        if order.status != OrderStatus.BACKORDERED:
            set_status(session, order, OrderStatus.BACKORDERED, f"Not enough stock of {short.args[0]}", actor)
            return AllocationOutcome(order.id, order.status, True)
        return AllocationOutcome(order.id, order.status, False)
    return AllocationOutcome(order.id, order.status, True)


def _codes(fulfillment_orders: dict[int, FulfillmentOrder], ranked: list[tuple[Location, dict[int, int]]]) -> str:
    return ", ".join(location.code for location, _ in ranked if location.id in fulfillment_orders)


async def backordered_order_ids(session: AsyncSession, product_id: int) -> list[int]:
    """BACKORDERED orders that want this product, oldest first."""
    rows = await session.scalars(
        select(Order.id)
        .where(
            Order.status == OrderStatus.BACKORDERED,
            Order.id.in_(select(OrderLine.order_id).where(OrderLine.product_id == product_id)),
        )
        .order_by(Order.placed_at, Order.id)
    )
    return list(rows.all())
