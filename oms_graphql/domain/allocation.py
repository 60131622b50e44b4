"""Allocation: decide where each order is fulfilled from and reserve the stock.

Where is the planner's choice (:mod:`allocation_plan`: fewest locations, then the
lowest score of shipping cost, distance, priority and stock balance), unless an
allocation plugin ranks the locations (then each line is taken from the first
ranked location with stock, as the first version did).

Orders are allocated in batches (one order is a batch of one): the batch's orders,
lines, addresses and the stock of its products are read in a few queries, each
order is planned against what the orders before it left, and the whole batch is
reserved at once by the ledger (:func:`inventory.reserve_many`: every level
locked in (location, product) order, one guarded UPDATE). If a concurrent
transaction took stock that a plan counted on, the batch is planned again with
its levels locked first. An order whose stock is short waits as BACKORDERED.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from oms_graphql.db.models import (
    Address,
    Allocation,
    FulfillmentOrder,
    Location,
    Order,
    OrderLine,
    OutboxEntry,
    Product,
    StockLevel,
    utcnow,
)
from oms_graphql.domain import allocation_plan, geo
from oms_graphql.domain.allocation_plan import Destination, Plan, Site, Want
from oms_graphql.domain.errors import NotFound
from oms_graphql.domain.inventory import Reference, Take, reserve_many
from oms_graphql.domain.orders import OrderStatus, set_statuses
from oms_graphql.plugins.carrier_contract import DeliveryKind
from oms_graphql.plugins.contract import AllocationRequest, CandidateLocation

# The dispatch job of the fulfillment orders a transaction allocated at locations that dispatch
# by themselves (domain/dispatch), and how many it takes at most: it calls their carriers one after
# the other, which must fit in a job's time limit (5 minutes), and a redelivered job redoes no more.
AUTO_DISPATCH_JOB = "dispatch_fulfillment_orders"
AUTO_DISPATCH_BATCH_SIZE = 50
_AUTO_DISPATCH_REQUEST = "auto_dispatch_request"
# Orders allocated together at most (a channel page is ~100): bounds each statement's parameters.
BATCH_SIZE = 200

RankLocations = Callable[[AllocationRequest, list[CandidateLocation]], list[str] | None]


@dataclass(frozen=True)
class AllocationOutcome:
    order_id: int
    status: str
    changed: bool


class _Raced(Exception):
    """A reservation was refused: a concurrent order took the stock first."""


async def _sites(
    session: AsyncSession, product_ids: Sequence[int], locked: bool = False
) -> tuple[list[Site], dict[int, Location]]:
    """Where the products are free to take; ``locked``: the levels locked, in (location, product) order."""
    free = StockLevel.on_hand - StockLevel.reserved - StockLevel.safety_stock
    query = (
        select(Location, StockLevel.product_id, free, free - StockLevel.reorder_point)
        .join(StockLevel, StockLevel.location_id == Location.id)
        .where(
            StockLevel.product_id.in_(product_ids),
            Location.active.is_(True),
            Location.can_ship.is_(True),
            free > 0,
        )
    )
    if locked:
        query = query.order_by(StockLevel.location_id, StockLevel.product_id).with_for_update(of=StockLevel)
    rows = await session.execute(query)
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


@dataclass
class _Order:
    """One order being allocated: what it wants and where it goes."""

    order: Order
    wants: list[Want]
    address: Address | None
    destination: Destination


@dataclass(frozen=True)
class _Planned:
    pending: _Order
    plan: Plan
    others: list[Plan]


async def allocate_order(
    session: AsyncSession, order_id: int, rank: RankLocations | None = None, actor: str | None = "allocator"
) -> AllocationOutcome:
    """Reserve stock for a CONFIRMED or BACKORDERED order; any other status is left alone.

    Idempotent: an order already ALLOCATED (or held, or cancelled) is not touched.
    """
    [outcome] = await allocate_orders(session, [order_id], rank=rank, actor=actor)
    return outcome


async def allocate_orders(
    session: AsyncSession,
    order_ids: Sequence[int],
    rank: RankLocations | None = None,
    actor: str | None = "allocator",
) -> list[AllocationOutcome]:
    """Allocate a batch of orders in the caller's transaction (a page of ingested orders), in id order.

    Each order gets what :func:`allocate_order` would give it one after the other;
    the fulfillment orders, allocations, status changes and events of the whole
    batch are written in a few multi-row inserts. Idempotent per order.
    """
    outcomes: list[AllocationOutcome] = []
    ids = sorted(set(order_ids))
    for start in range(0, len(ids), BATCH_SIZE):
        outcomes += await _allocate_batch(session, ids[start : start + BATCH_SIZE], rank, actor)
    return outcomes


async def _allocate_batch(
    session: AsyncSession, order_ids: list[int], rank: RankLocations | None, actor: str | None
) -> list[AllocationOutcome]:
    rows = (
        await session.execute(
            select(Order, Address)
            .outerjoin(Address, Address.id == Order.shipping_address_id)
            .where(Order.id.in_(order_ids))
            .order_by(Order.id)
            .with_for_update(of=Order)
        )
    ).all()
    orders = [order for order, _address in rows]
    addresses: dict[int, Address | None] = {order.id: address for order, address in rows}
    if len(orders) != len(order_ids):
        raise NotFound("No order has this id.", ("id",))
    waiting = [order for order in orders if order.status in (OrderStatus.CONFIRMED, OrderStatus.BACKORDERED)]
    if not waiting:  # already allocated (or held, or cancelled): nothing to do
        return [AllocationOutcome(order.id, order.status, False) for order in orders]
    pending, products = await _load(session, waiting, addresses)
    planned: list[_Planned] = []
    for locked in (False, True):
        # First against the figures as read. If a concurrent transaction took stock that a plan
        # counted on, rolling back the savepoint gives back every row lock the attempt took, and
        # the batch is planned again with its levels locked first, in the one (location, product)
        # order every allocator locks in: that attempt cannot be refused, and cannot deadlock.
        tried, short, locations = await _plan(session, pending, products, rank, locked)
        if not tried:
            break  # every order is short: nothing to reserve
        takes = [_takes(one, locations, products, actor) for one in tried]
        try:
            async with session.begin_nested():
                reserved = await reserve_many(session, takes)
                if not locked and not all(reserved):
                    raise _Raced
        except _Raced:
            continue
        planned = [one for one, ok in zip(tried, reserved, strict=True) if ok]
        for one, ok in zip(tried, reserved, strict=True):
            if not ok:  # not expected: the levels were locked
                short[one.pending.order.id] = "stock that concurrent orders took first"
        break
    await _record(session, planned, locations, actor)
    backordered = [order for order in waiting if order.id in short and order.status != OrderStatus.BACKORDERED]
    await set_statuses(
        session,
        [(order, f"Not enough stock of {short[order.id]}") for order in backordered],
        OrderStatus.BACKORDERED,
        actor,
    )
    changed = {one.pending.order.id for one in planned} | {order.id for order in backordered}
    return [AllocationOutcome(order.id, order.status, order.id in changed) for order in orders]


async def _plan(
    session: AsyncSession,
    pending: Sequence[_Order],
    products: dict[int, Product],
    rank: RankLocations | None,
    locked: bool,
) -> tuple[list[_Planned], dict[int, str], dict[int, Location]]:
    """Each order planned in turn against what the orders before it left; (plans, short SKU by order, sites)."""
    sites, locations = await _sites(
        session, sorted({want.product_id for each in pending for want in each.wants}), locked
    )
    planned, short = [], {}
    for each in pending:
        mine = _sites_for(sites, each.wants)
        candidates = _candidates(rank, each, mine)
        if not candidates:
            short[each.order.id] = _short_sku(each.wants, mine)
            continue
        planned.append(_Planned(each, candidates[0], candidates[1:]))
        _take(sites, candidates[0])
    return planned, short, locations


async def _load(
    session: AsyncSession, orders: Sequence[Order], addresses: dict[int, Address | None]
) -> tuple[list[_Order], dict[int, Product]]:
    """The orders' lines that need stock (unmapped and fully refunded ones do not) and pickup stores."""
    if not orders:
        return [], {}
    rows = await session.execute(
        select(OrderLine, Product)
        .join(Product, Product.id == OrderLine.product_id)
        .where(OrderLine.order_id.in_([order.id for order in orders]), OrderLine.quantity > OrderLine.refunded_quantity)
        .order_by(OrderLine.order_id, OrderLine.line_no)
    )
    wants: dict[int, list[Want]] = {}
    products: dict[int, Product] = {}
    for line, product in rows:
        products[product.id] = product
        wants.setdefault(line.order_id, []).append(_want(line, product))
    pickup_ids = {order.pickup_location_id for order in orders if order.delivery_option == DeliveryKind.PICKUP}
    pickups: dict[int, Location] = {}
    if pickup_ids - {None}:
        pickups = {loc.id: loc for loc in await session.scalars(select(Location).where(Location.id.in_(pickup_ids)))}
    pending = []
    for order in orders:
        address = addresses[order.id]
        pending.append(_Order(order, wants.get(order.id, []), address, _destination(order, address, pickups)))
    return pending, products


def _destination(order: Order, address: Address | None, pickups: dict[int, Location]) -> Destination:
    kind = DeliveryKind.STANDARD
    if order.delivery_option in (DeliveryKind.EXPRESS, DeliveryKind.SAME_DAY):
        kind = DeliveryKind(order.delivery_option)
    place: Location | Address | None = address
    pickup_id = order.pickup_location_id if order.delivery_option == DeliveryKind.PICKUP else None
    if pickup_id is not None:
        place = pickups.get(pickup_id)
    return Destination(geo.point_of(place) if place else None, kind, order.currency, pickup_id)


def _sites_for(sites: Sequence[Site], wants: Sequence[Want]) -> list[Site]:
    """The sites as one order sees them: only its products, only where some are free (as a query of its own)."""
    mine = []
    wanted = {want.product_id for want in wants}
    for site in sites:
        available = {pid: units for pid, units in site.available.items() if pid in wanted and units > 0}
        if available:
            above = {pid: units for pid, units in site.above_reorder.items() if pid in available}
            mine.append(replace(site, available=available, above_reorder=above))
    return mine


def _take(sites: Sequence[Site], plan: Plan) -> None:
    """Count a plan's units out of the shared figures, for the orders planned after it."""
    by_id = {site.location_id: site for site in sites}
    for part in plan.parts:
        site = by_id[part.site.location_id]
        for want, units in part.takes:
            site.available[want.product_id] -= units
            if want.product_id in site.above_reorder:
                site.above_reorder[want.product_id] -= units


def _candidates(rank: RankLocations | None, each: _Order, sites: list[Site]) -> list[Plan]:
    ranked = _ranked_by_plugin(rank, each.order, each.address, each.wants, sites) if rank else None
    if ranked is None:
        return allocation_plan.plans(each.wants, sites, each.destination)
    naive = allocation_plan.naive_plan(each.wants, ranked, each.destination)
    return [naive] if naive else []


def _takes(
    one: _Planned, locations: dict[int, Location], products: dict[int, Product], actor: str | None
) -> list[Take]:
    order = one.pending.order
    reference = Reference("ORDER", str(order.id), order.number, actor)
    # Sorted as every allocator takes them (location, then product), so the ledger reads the same.
    takes = sorted(
        (part.site.location_id, want.product_id, units) for part in one.plan.parts for want, units in part.takes
    )
    return [Take(products[pid], locations[lid], units, reference) for lid, pid, units in takes]


async def _record(
    session: AsyncSession, planned: Sequence[_Planned], locations: dict[int, Location], actor: str | None
) -> None:
    """The reserved orders' fulfillment orders, allocations and status, each kind in one statement."""
    if not planned:
        return
    now = utcnow()
    parts = [(one, part) for one in planned for part in one.plan.parts]
    fulfillment_ids = (
        await session.scalars(
            insert(FulfillmentOrder).returning(FulfillmentOrder.id, sort_by_parameter_order=True),
            [
                {
                    "order_id": one.pending.order.id,
                    "location_id": part.site.location_id,
                    "status": "OPEN",
                    "created_at": now,
                }
                for one, part in parts
            ],
        )
    ).all()
    allocations = []
    for (one, part), fulfillment_id in zip(parts, fulfillment_ids, strict=True):
        order = one.pending.order
        text = allocation_plan.reason(one.plan, part, one.pending.wants, one.others, order.currency)
        allocations += [
            {
                "order_id": order.id,
                "order_line_id": want.line_id,
                "fulfillment_order_id": fulfillment_id,
                "location_id": part.site.location_id,
                "product_id": want.product_id,
                "quantity": units,
                "shipped_quantity": 0,
                "status": "RESERVED",
                "reason": text,
                "score": round(part.score, 4),
                "created_at": now,
            }
            for want, units in part.takes
        ]
    await session.execute(insert(Allocation), allocations)
    await set_statuses(
        session,
        [(one.pending.order, f"Allocated to {', '.join(one.plan.codes)}") for one in planned],
        OrderStatus.ALLOCATED,
        actor,
    )
    # Where the location dispatches by itself: one job for the batch's fulfillment orders.
    request_automatic_dispatch(
        session,
        [
            fulfillment_id
            for (_one, part), fulfillment_id in zip(parts, fulfillment_ids, strict=True)
            if locations[part.site.location_id].auto_dispatch
        ],
    )


def request_automatic_dispatch(session: AsyncSession, fulfillment_order_ids: Sequence[int]) -> None:
    """Dispatch these newly allocated fulfillment orders by themselves once this commits.

    The fulfillment orders one transaction asks for share one ``dispatch_fulfillment_orders``
    job (up to :data:`AUTO_DISPATCH_BATCH_SIZE`), whatever number of batches it allocated.
    """
    if not fulfillment_order_ids:
        return
    info = session.sync_session.info
    entry, asked = info.get(_AUTO_DISPATCH_REQUEST, (None, []))
    together = [*asked, *fulfillment_order_ids]
    if entry is not None and entry in session.sync_session and len(together) <= AUTO_DISPATCH_BATCH_SIZE:
        entry.payload = {"fulfillment_order_ids": together}  # a new list: the row is written again
        info[_AUTO_DISPATCH_REQUEST] = (entry, together)
        return
    for start in range(0, len(fulfillment_order_ids), AUTO_DISPATCH_BATCH_SIZE):
        asked = list(fulfillment_order_ids[start : start + AUTO_DISPATCH_BATCH_SIZE])
        entry = OutboxEntry(kind="job", topic=AUTO_DISPATCH_JOB, payload={"fulfillment_order_ids": asked})
        session.add(entry)
    info[_AUTO_DISPATCH_REQUEST] = (entry, asked)


@event.listens_for(Session, "after_transaction_end")
def _forget_automatic_dispatch(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # committed (the job is written) or rolled back (it is gone)
        session.info.pop(_AUTO_DISPATCH_REQUEST, None)


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


def serving_pages(order_ids: Sequence[int], size: int = BATCH_SIZE) -> list[list[int]]:
    """Orders in the order they are served, cut into pages that :func:`allocate_orders` serves
    in that same order: it plans a page in id order, so a page ends where the ids stop rising
    (an order placed earlier but stored later starts the next one)."""
    pages: list[list[int]] = []
    for order_id in order_ids:
        if pages and len(pages[-1]) < size and pages[-1][-1] < order_id:
            pages[-1].append(order_id)
        else:
            pages.append([order_id])
    return pages
