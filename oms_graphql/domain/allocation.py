"""Allocation: decide where each order is fulfilled from and reserve the stock.

Where is the planner's choice (:mod:`allocation_plan`: fewest locations, then the
lowest score of shipping cost, distance, priority and stock balance), unless an
allocation plugin ranks the locations (then each line is taken from the first
ranked location with stock, as the first version did). The chosen units are
reserved with the ledger's guarded update; a reservation that a concurrent order
beat us to makes the planner start again with fresh figures. If the stock is
short the savepoint is rolled back and the order waits as BACKORDERED.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from oms_graphql.domain import allocation_plan, geo
from oms_graphql.domain.allocation_plan import Destination, Plan, Site, Want
from oms_graphql.domain.inventory import MovementReason, Reference, move_stock
from oms_graphql.domain.orders import OrderStatus, order_by_id, set_status
from oms_graphql.events.outbox import request_job
from oms_graphql.plugins.carrier_contract import DeliveryKind
from oms_graphql.plugins.contract import AllocationRequest, CandidateLocation

# The dispatch job of a fulfillment order whose location dispatches by itself (domain/dispatch).
AUTO_DISPATCH_JOB = "dispatch_fulfillment_order"
# Plans started again when concurrent orders took the stock a plan counted on.
MAX_REPLANS = 20

RankLocations = Callable[[AllocationRequest, list[CandidateLocation]], list[str] | None]


@dataclass(frozen=True)
class AllocationOutcome:
    order_id: int
    status: str
    changed: bool


class _Raced(Exception):
    """A reservation was refused: a concurrent order took the stock first."""


async def _sites(session: AsyncSession, product_ids: Sequence[int]) -> tuple[list[Site], dict[int, Location]]:
    free = StockLevel.on_hand - StockLevel.reserved - StockLevel.safety_stock
    rows = await session.execute(
        select(Location, StockLevel.product_id, free, free - StockLevel.reorder_point)
        .join(StockLevel, StockLevel.location_id == Location.id)
        .where(
            StockLevel.product_id.in_(product_ids),
            Location.active.is_(True),
            Location.can_ship.is_(True),
            free > 0,
        )
    )
    sites: dict[int, Site] = {}
    locations: dict[int, Location] = {}
    for location, product_id, available, above_reorder in rows:
        site = sites.get(location.id)
        if site is None:
            locations[location.id] = location
            site = sites[location.id] = Site(
                location.id, location.code, location.kind, location.priority, geo.point_of(location), {}
            )
        site.available[product_id] = int(available)
        if above_reorder is not None:
            site.above_reorder[product_id] = int(above_reorder)
    return list(sites.values()), locations


def _ranked_by_plugin(
    rank: RankLocations, order: Order, address: Address | None, wants: Sequence[Want], sites: Sequence[Site]
) -> list[Site] | None:
    skus = {want.product_id: want.sku for want in wants}
    request = AllocationRequest(
        order_number=order.number,
        lines={want.sku: want.units for want in wants},
        latitude=address.latitude if address else None,
        longitude=address.longitude if address else None,
        country=address.country if address else None,
        region=address.region if address else None,
    )
    candidates = [
        CandidateLocation(
            code=site.code,
            kind=site.kind,
            priority=site.priority,
            available={skus[pid]: units for pid, units in site.available.items()},
            latitude=site.point.lat if site.point else None,
            longitude=site.point.lon if site.point else None,
        )
        for site in sites
    ]
    codes = rank(request, candidates)
    if not codes:
        return None
    by_code = {site.code: site for site in sites}
    return [by_code[code] for code in codes if code in by_code]


async def _destination(session: AsyncSession, order: Order, address: Address | None) -> Destination:
    kind = DeliveryKind.STANDARD
    if order.delivery_option in (DeliveryKind.EXPRESS, DeliveryKind.SAME_DAY):
        kind = DeliveryKind(order.delivery_option)
    place: Location | Address | None = address
    pickup_id = order.pickup_location_id if order.delivery_option == DeliveryKind.PICKUP else None
    if pickup_id is not None:
        place = await session.get(Location, pickup_id)
    return Destination(geo.point_of(place) if place else None, kind, order.currency, pickup_id)


async def allocate_order(
    session: AsyncSession, order_id: int, rank: RankLocations | None = None, actor: str | None = "allocator"
) -> AllocationOutcome:
    """Reserve stock for a CONFIRMED or BACKORDERED order; any other status is left alone.

    Idempotent: an order already ALLOCATED (or held, or cancelled) is not touched.
    """
    order = await order_by_id(session, order_id, lock=True)
    if order.status not in (OrderStatus.CONFIRMED, OrderStatus.BACKORDERED):
        return AllocationOutcome(order.id, order.status, False)
    # Unmapped and fully refunded lines need no stock.
    rows = (
        await session.execute(
            select(OrderLine, Product)
            .join(Product, Product.id == OrderLine.product_id)
            .where(OrderLine.order_id == order.id, OrderLine.quantity > OrderLine.refunded_quantity)
            .order_by(OrderLine.line_no)
        )
    ).all()
    products = {product.id: product for _line, product in rows}
    wants = [_want(line, product) for line, product in rows]
    address = await session.get(Address, order.shipping_address_id)
    destination = await _destination(session, order, address)
    reference = Reference("ORDER", str(order.id), order.number, actor)
    short = ""
    for _attempt in range(MAX_REPLANS):
        sites, locations = await _sites(session, list(products))
        ranked = _ranked_by_plugin(rank, order, address, wants, sites) if rank else None
        if ranked is not None:
            naive = allocation_plan.naive_plan(wants, ranked, destination)
            candidates = [naive] if naive else []
        else:
            candidates = allocation_plan.plans(wants, sites, destination)
        if not candidates:
            short = _short_sku(wants, sites)
            break
        try:
            async with session.begin_nested():
                await _reserve(session, order, candidates, wants, locations, products, reference, actor)
        except _Raced:
            continue
        return AllocationOutcome(order.id, order.status, True)
    else:
        short = "stock that concurrent orders took first"
    if order.status != OrderStatus.BACKORDERED:
        set_status(session, order, OrderStatus.BACKORDERED, f"Not enough stock of {short}", actor)
        return AllocationOutcome(order.id, order.status, True)
    return AllocationOutcome(order.id, order.status, False)


async def allocate_orders(
    session: AsyncSession,
    order_ids: Sequence[int],
    rank: RankLocations | None = None,
    actor: str | None = "allocator",
) -> list[AllocationOutcome]:
    """Allocate a batch of orders in the caller's transaction (a page of ingested orders).

    Orders are taken in id order; each is idempotent as in :func:`allocate_order`.
    """
    return [await allocate_order(session, order_id, rank=rank, actor=actor) for order_id in sorted(set(order_ids))]


def _want(line: OrderLine, product: Product) -> Want:
    return Want(
        line_id=line.id,
        product_id=product.id,
        sku=product.sku,
        units=line.quantity - line.refunded_quantity,
        weight_grams=product.weight_grams or 0,
        longest_mm=max(product.length_mm or 0, product.width_mm or 0, product.height_mm or 0),
        handling=frozenset(product.handling or ()),
        drop_ship=product.drop_ship,
    )


def _short_sku(wants: Sequence[Want], sites: Sequence[Site]) -> str:
    for want in wants:
        if sum(site.free(want) for site in sites) < want.units:
            return want.sku
    return wants[0].sku if wants else "nothing"


async def _reserve(
    session: AsyncSession,
    order: Order,
    candidates: list[Plan],
    wants: Sequence[Want],
    locations: dict[int, Location],
    products: dict[int, Product],
    reference: Reference,
    actor: str | None,
) -> None:
    plan, others = candidates[0], candidates[1:]
    # One lock order for every allocator (location, then product): concurrent orders never deadlock.
    takes = sorted(
        ((part.site.location_id, want.product_id, units) for part in plan.parts for want, units in part.takes)
    )
    for location_id, product_id, units in takes:
        figures = await move_stock(
            session,
            product=products[product_id],
            location=locations[location_id],
            reason=MovementReason.RESERVE,
            reserved=units,
            reference=reference,
            keep_safety_stock=True,
        )
        if figures is None:
            raise _Raced
    fulfillment_orders = {
        part.site.location_id: FulfillmentOrder(order_id=order.id, location_id=part.site.location_id)
        for part in plan.parts
    }
    session.add_all(fulfillment_orders.values())
    await session.flush()
    for part in plan.parts:
        text = allocation_plan.reason(plan, part, wants, others, order.currency)
        session.add_all(
            Allocation(
                order_id=order.id,
                order_line_id=want.line_id,
                fulfillment_order_id=fulfillment_orders[part.site.location_id].id,
                location_id=part.site.location_id,
                product_id=want.product_id,
                quantity=units,
                reason=text,
                score=round(part.score, 4),
            )
            for want, units in part.takes
        )
    set_status(session, order, OrderStatus.ALLOCATED, f"Allocated to {', '.join(plan.codes)}", actor)
    for location_id, fulfillment_order in fulfillment_orders.items():
        if locations[location_id].auto_dispatch:
            request_job(session, AUTO_DISPATCH_JOB, fulfillment_order_id=fulfillment_order.id)


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
