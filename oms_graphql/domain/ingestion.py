"""A channel's order, normalised by its plugin, applied to our order (the upsert).

The raw payloads themselves are kept by :mod:`oms_graphql.domain.inbound`.
The upsert is keyed by (channel, external id), so a re-delivered or re-pulled order updates
the order it already made and never duplicates it:

* paid later → payment confirmed (then allocation);
* cancelled / closed at the channel → cancelled here, its stock released;
* address changed → the order's address follows while nothing has shipped;
* a line refunded → ``refunded_quantity`` and the totals follow, the refunded
  units' reservation is released;
* a channel SKU nobody mapped → the order waits ON_HOLD (UNMAPPED_SKU) until
  ``channelListingSet`` maps it, which releases the hold;
* locked / frozen at the channel → a CHANNEL_HOLD hold while it lasts;
* shipped or finished outside the OMS → recorded as such (reservations consumed);
* fulfilled by the channel from its own stock (Amazon AFN) → recorded for the
  sales figures without ever reserving our stock;
* a paid in-store sale (a channel selling from one of our stores) takes the stock
  from that store at once, whatever state it reaches us in (OPEN with tenders, or
  COMPLETED: the usual counter sale) and however (webhook, pull, first seen as an update).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Address,
    Allocation,
    Channel,
    ChannelListing,
    FulfillmentOrder,
    Location,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    utcnow,
)
from oms_graphql.domain import limits, returns
from oms_graphql.domain import orders as order_rules
from oms_graphql.domain.customers import CustomerDetails
from oms_graphql.domain.errors import DomainError
from oms_graphql.domain.inventory import MovementReason, Reference, move_stock
from oms_graphql.domain.money import round_money
from oms_graphql.domain.orders import (
    AddressDetails,
    HoldReason,
    LineDetails,
    NewOrder,
    OrderStatus,
    cancel_order,
    confirm_payment,
    create_order,
    open_holds,
    place_hold,
    release_holds,
    set_status,
)
from oms_graphql.domain.reports import request_refresh
from oms_graphql.plugins.contract import (
    ChannelOrderStatus,
    NormalizedAddress,
    NormalizedLine,
    NormalizedOrder,
)

# Shown while a channel has not released the buyer's address (Amazon Pending orders).
NO_ADDRESS = AddressDetails(country="ZZ", line1="(the channel has not sent the address yet)")
SHIPPED_OR_LATER = frozenset(
    {OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED}
)


# --- the upsert -------------------------------------------------------------


async def upsert_order(session: AsyncSession, channel: Channel, new: NormalizedOrder) -> tuple[Order, str]:
    """Create the order, or bring the existing one up to date; returns (order, what happened)."""
    existing = await session.scalar(
        select(Order).where(Order.channel_id == channel.id, Order.external_id == new.external_id).with_for_update()
    )
    if existing is None:
        order, created = await _create(session, channel, new)
        if created:
            return order, "created"
        existing = order  # a concurrent ingestion created it a moment ago
    if new.updated_at and existing.channel_updated_at and new.updated_at < existing.channel_updated_at:
        return existing, "stale: the order changed at the channel since this version"
    return existing, await _update(session, channel, existing, new)


@dataclass
class ResolvedLine:
    """A channel's order line matched to our product (or not, and then maybe unmapped)."""

    details: LineDetails
    unmapped_code: str | None  # the channel's code of a line nobody mapped yet


async def resolve_lines(
    session: AsyncSession, channel: Channel, orders: list[NormalizedOrder]
) -> list[list[ResolvedLine]]:
    """Each order's lines matched to our products (by the channel's listing, else our SKU), in
    two queries for all the orders at once."""
    every = [line for new in orders for line in new.lines]
    codes = {code for line in every for code in (line.channel_sku_id, line.channel_item_id) if code}
    listings = (
        {
            listing.channel_sku_id: listing.product_id
            for listing in (
                await session.scalars(
                    select(ChannelListing).where(
                        ChannelListing.channel_id == channel.id, ChannelListing.channel_sku_id.in_(codes)
                    )
                )
            ).all()
        }
        if codes
        else {}
    )
    merchant = {line.merchant_sku for line in every if line.merchant_sku}
    listed_ids = set(listings.values())
    products = (
        (await session.scalars(select(Product).where((Product.sku.in_(merchant)) | (Product.id.in_(listed_ids))))).all()
        if merchant or listed_ids
        else []
    )
    by_sku = {product.sku: product for product in products}
    by_id = {product.id: product for product in products}
    return [[_match_line(line, listings, by_sku, by_id) for line in new.lines] for new in orders]


def _match_line(
    line: NormalizedLine, listings: dict[str, int], by_sku: dict[str, Product], by_id: dict[int, Product]
) -> ResolvedLine:
    product = None
    if line.channel_sku_id and line.channel_sku_id in listings:
        product = by_id.get(listings[line.channel_sku_id])
    elif line.merchant_sku and line.merchant_sku in by_sku:
        product = by_sku[line.merchant_sku]
    elif line.channel_item_id and line.channel_item_id in listings:
        product = by_id.get(listings[line.channel_item_id])
    code = line.channel_sku_id or line.merchant_sku
    return ResolvedLine(
        LineDetails(
            quantity=line.quantity,
            unit_price=line.unit_price,
            sku=product.sku if product else None,
            discount=line.discount,
            # Our product's name when the channel sends no title (as create_order would).
            title=_clip(line.title, 300) or (product.name if product else None),
            channel_line_id=line.channel_line_id,
            channel_sku_id=code,
            product_id=product.id if product else None,
            refunded_quantity=min(line.refunded_quantity, line.quantity),
        ),
        # A line with no code at all (a POS custom amount) is money only, not stock, and
        # a line refunded in full before we saw it will never need stock either.
        unmapped_code=code if product is None and code and line.refunded_quantity < line.quantity else None,
    )


def _clip(text: str | None, limit: int) -> str | None:
    return text[:limit] if text else text


def _address(address: NormalizedAddress) -> AddressDetails:
    return AddressDetails(
        country=(address.country or "ZZ").upper()[:2],
        line1=_clip(address.line1, 300) or "-",
        name=_clip(address.name, 200),
        phone=_clip(address.phone, 40),
        email=_clip(address.email, 254),
        region=_clip(address.region, 100),
        city=_clip(address.city, 100),
        district=_clip(address.district, 100),
        line2=_clip(address.line2, 300),
        postal_code=_clip(address.postal_code, 20),
    )


async def _store_location(session: AsyncSession, new: NormalizedOrder) -> Location | None:
    """The store an in-store sale is sold from, as the plugin names it (a POS names its channel's
    ``settings.locationCode``); None when the order is no store sale."""
    code = new.location_code
    if not code:
        return None
    location = await session.scalar(select(Location).where(Location.code == code))
    if location is None:
        raise DomainError(
            f"The channel sells from location {code!r}, which does not exist. Create it with locationCreate "
            "(or fix settings.locationCode), then replay this message.",
            ("locationCode",),
            "NOT_FOUND",
        )
    return location


def _is_paid(new: NormalizedOrder) -> bool:
    return new.paid_at is not None or new.status in (
        ChannelOrderStatus.PAID,
        ChannelOrderStatus.SHIPPED,
        ChannelOrderStatus.COMPLETED,
    )


def _is_store_sale(store: Location | None, new: NormalizedOrder) -> bool:
    """A paid sale from one of our stores' shelves: it takes that store's stock.

    Whatever state it reaches us in: OPEN with tenders, or COMPLETED / SHIPPED (the usual
    counter sale, paid and handed over). A store's COMPLETED is not "finished outside the OMS"
    as a marketplace's is: the goods left our shelf, so the store's ledger must say so.
    """
    return (
        store is not None
        and not new.fulfilled_by_channel
        and new.status != ChannelOrderStatus.CANCELLED
        and _is_paid(new)
    )


def _not_sold_yet(order: Order) -> bool:
    """The store sale has not taken its stock yet.

    Then a COMPLETED from the POS must not skip the stock as "finished outside the OMS":
    unpaid until now, it is sold at the store at once; held (an unmapped SKU, the store's
    books short), it keeps waiting for its stock. SHIPPED or later means it took its stock.
    ALLOCATED or BACKORDERED (and CONFIRMED just after a release, until the allocation job
    runs) means an operator released a sale the store could not cover to ordinary
    allocation, and that goes on as it is.
    """
    waiting = (OrderStatus.PENDING, OrderStatus.CONFIRMED)
    return order.status in waiting or (
        order.status == OrderStatus.ON_HOLD and (order.resume_status is None or order.resume_status in waiting)
    )


def new_order_from(
    channel: Channel, new: NormalizedOrder, lines: list[ResolvedLine], store: Location | None
) -> NewOrder:
    """What a channel's order becomes here when first seen: its address, holds and payment (pure)."""
    paid = _is_paid(new)
    store_sale = _is_store_sale(store, new)
    if new.shipping_address:
        address = _address(new.shipping_address)
    elif store is not None:
        address = AddressDetails(
            country=store.country,
            line1=store.line1,
            city=store.city,
            region=store.region,
            district=store.district,
            postal_code=store.postal_code,
            name=store.name,
            latitude=store.latitude,
            longitude=store.longitude,
        )
    else:
        address = NO_ADDRESS
    holds: list[tuple[HoldReason, str | None]] = []
    takes_our_stock = store_sale or (
        not new.fulfilled_by_channel
        and new.status
        not in (
            ChannelOrderStatus.CANCELLED,
            ChannelOrderStatus.SHIPPED,
            ChannelOrderStatus.COMPLETED,
        )
    )
    if takes_our_stock:
        unmapped = sorted({line.unmapped_code for line in lines if line.unmapped_code})
        if unmapped:
            holds.append((HoldReason.UNMAPPED_SKU, _unmapped_note(unmapped)))
        if new.status == ChannelOrderStatus.ON_HOLD:
            holds.append((HoldReason.CHANNEL_HOLD, _clip(new.hold_reason or new.raw_status, 1000)))
        if refunding := _refunding(new):
            holds.append((HoldReason.REFUND_IN_PROGRESS, _refund_note(refunding)))
        if paid and address is NO_ADDRESS and store is None:
            holds.append((HoldReason.ADDRESS_INCOMPLETE, "The channel sent no shipping address."))
    buyer = new.buyer
    return NewOrder(
        channel_code=channel.code,
        currency=new.currency,
        shipping_address=address,
        lines=[line.details for line in lines],
        external_id=new.external_id,
        customer=CustomerDetails(
            name=_clip(buyer.name, 200),
            # Taobao and JD give the buyer's mobile only as the receiver's: most orders ship to
            # the buyer, so it stands for the buyer's when the buyer sent none (see README).
            phone=_clip(buyer.phone or address.phone, 40),
            email=_clip(buyer.email, 254),
            channel_code=channel.code,
            channel_buyer_id=_clip(buyer.channel_buyer_id, 254),
        )
        if buyer
        else None,
        shipping_fee=new.shipping_fee,
        discount=new.discount,
        tax=_channel_tax(new, lines),
        # Only an order that will take our stock is confirmed (and so allocated) here.
        paid=paid and takes_our_stock and store is None,
        paid_at=new.paid_at,
        placed_at=new.placed_at,
        note=_clip(new.note, 2000),
        promised_at=new.deliver_by,
        promised_ship_by=new.ship_by,
        holds=holds,
        actor=_actor(channel),
    )


def is_plain_new_order(new: NormalizedOrder, order: NewOrder) -> bool:
    """A new order that ``create_order`` alone makes in full (with its totals over the units not
    refunded): no hold (so no refund in progress), no store sale, nothing cancelled, shipped or
    fulfilled at the channel. The usual order of a burst: a page of them is created with set
    operations (:mod:`.ingestion_bulk`)."""
    return (
        new.location_code is None
        and not new.fulfilled_by_channel
        and new.status not in (ChannelOrderStatus.CANCELLED, ChannelOrderStatus.SHIPPED, ChannelOrderStatus.COMPLETED)
        and not order.holds
        and order.pickup_location_code is None
    )


async def _create(session: AsyncSession, channel: Channel, new: NormalizedOrder) -> tuple[Order, bool]:
    lines = (await resolve_lines(session, channel, [new]))[0]
    store = await _store_location(session, new)
    paid = _is_paid(new)
    store_sale = _is_store_sale(store, new)
    order, created = await create_order(session, new_order_from(channel, new, lines, store))
    if not created:
        return order, False
    order.channel_updated_at = new.updated_at or new.placed_at
    if paid and order.paid_at is None:
        order.paid_at = new.paid_at or new.placed_at
        order_rules.promise_ship_by(order)
    await session.flush()
    order_lines = await _order_lines(session, order)
    if any(line.refunded_quantity for line in order_lines):
        _apply_totals(order, order_lines)
    if new.status == ChannelOrderStatus.CANCELLED:
        await cancel_order(session, order, f"Cancelled at the channel ({new.raw_status})", _actor(channel))
    elif new.fulfilled_by_channel:
        await _fulfilled_by_channel(session, channel, order, new)
    elif store_sale:
        assert store is not None
        _note(session, order, STORE_SALE, f"A sale in the store: it takes its stock from {store.code}", _actor(channel))
        if order.status == OrderStatus.ON_HOLD:  # e.g. an unmapped SKU: sold once the hold is gone
            await _remember_completion(session, order, channel, store, new)
        else:
            set_status(session, order, OrderStatus.CONFIRMED, "Paid at the store", _actor(channel))
            await sell_at_store(session, channel, order, store, new)
    elif new.status in (ChannelOrderStatus.SHIPPED, ChannelOrderStatus.COMPLETED):
        await _shipped_elsewhere(session, channel, order, new)
        await _apply_after_sales(session, order, new, _actor(channel))
    return order, True


def _channel_tax(new: NormalizedOrder, lines: list[ResolvedLine]) -> Decimal:
    """The tax the channel charged: what the buyer paid beyond the goods, shipping and discounts.

    Channels report tax (a POS's sales tax, Amazon's item tax) in their total, not in the lines;
    without it the order's total would fall short of what the buyer paid.
    """
    if new.total is None or not new.total.is_finite() or abs(new.total) > limits.MAX_AMOUNT:
        return Decimal("0")  # an unreadable total: the order's own figures are checked by create_order
    goods = order_rules.compute_totals(
        new.currency, [line.details for line in lines], new.discount, new.shipping_fee, Decimal("0")
    )
    return max(Decimal("0"), round_money(new.total, new.currency) - goods.total)


def _unmapped_note(codes: list[str]) -> str:
    return (
        _clip(
            f"Channel SKU {', '.join(codes)} is not mapped to one of our SKUs: map it with channelListingSet "
            "and the order is released.",
            1000,
        )
        or ""
    )


def _actor(channel: Channel) -> str:
    return f"channel:{channel.code}"


async def _order_lines(session: AsyncSession, order: Order) -> list[OrderLine]:
    return list(
        (
            await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no))
        ).all()
    )


def _apply_totals(order: Order, lines: list[OrderLine]) -> None:
    order.subtotal, order.total = kept_totals(order.currency, lines, order.discount, order.shipping_fee, order.tax)


def kept_totals(
    currency: str, lines: Sequence[OrderLine | LineDetails], discount: Decimal, shipping_fee: Decimal, tax: Decimal
) -> tuple[Decimal, Decimal]:
    """(subtotal, total) over the units not refunded (a line's discount shrinks with its units)."""
    subtotal = Decimal("0")
    for line in lines:
        kept = line.quantity - line.refunded_quantity
        if kept <= 0:
            continue
        subtotal += kept * line.unit_price - (line.discount or Decimal("0")) * kept / line.quantity
    return round_money(subtotal, currency), round_money(
        max(Decimal("0"), subtotal - discount + shipping_fee + tax), currency
    )


def _note(session: AsyncSession, order: Order, kind: str, message: str, actor: str) -> None:
    session.add(OrderEvent(order_id=order.id, kind=kind, message=_clip(message, 1000), actor=actor))


def _jump(session: AsyncSession, order: Order, target: OrderStatus, message: str, actor: str) -> None:
    """Record a status the channel reports as done fact (shipped elsewhere), outside the usual steps."""
    if order.status == target:
        return
    previous = order.status
    order.status = target
    order.resume_status = None
    order_rules._record_status(session, order, previous, target, message, actor)


async def _update(session: AsyncSession, channel: Channel, order: Order, new: NormalizedOrder) -> str:
    actor = _actor(channel)
    changes: list[str] = []
    if new.updated_at:
        order.channel_updated_at = new.updated_at
    if await _apply_refunds(session, order, new, actor):
        changes.append("refunded")
    changes.extend(await _apply_after_sales(session, order, new, actor))
    if new.shipping_address and await _apply_address(session, order, new.shipping_address, actor):
        changes.append("address changed")
    status = OrderStatus(order.status)
    store = await _store_location(session, new)
    not_sold_yet = _is_store_sale(store, new) and _not_sold_yet(order)
    if not_sold_yet and store is not None and not await is_store_sale(session, order):
        _note(session, order, STORE_SALE, f"A sale in the store: it takes its stock from {store.code}", actor)
    if new.status == ChannelOrderStatus.CANCELLED:
        if status == OrderStatus.CANCELLED:
            pass
        elif order_rules.can_transition(status, OrderStatus.CANCELLED):
            await cancel_order(session, order, f"Cancelled at the channel ({new.raw_status})", actor)
            changes.append("cancelled")
        else:
            _note(
                session,
                order,
                "CHANNEL_CANCELLED_LATE",
                f"The channel cancelled the order ({new.raw_status}) after it was {status}: handle it as a return.",
                actor,
            )
            changes.append("cancelled at the channel after shipping")
    elif status == OrderStatus.CANCELLED:
        pass  # cancelled here first: a late paid/shipped status at the channel changes nothing
    elif new.fulfilled_by_channel:
        if await _fulfilled_by_channel(session, channel, order, new):
            changes.append("fulfilled by the channel")
    elif new.status in (ChannelOrderStatus.SHIPPED, ChannelOrderStatus.COMPLETED) and not not_sold_yet:
        if await _shipped_elsewhere(session, channel, order, new):
            changes.append(new.status.value.lower())
    else:
        if (_is_paid(new) and order.paid_at is None) or (status == OrderStatus.PENDING and _is_paid(new)):
            await confirm_payment(session, order, new.paid_at, actor)
            changes.append("paid")
            # Paid at the store just now (perhaps completed at once): the sale takes its stock now.
            if store is not None and order.status == OrderStatus.CONFIRMED:
                await sell_at_store(session, channel, order, store, new)
                if order.status != OrderStatus.ON_HOLD:
                    changes.append(f"sold at {store.code}")
        if not_sold_yet and order.status == OrderStatus.ON_HOLD:
            assert store is not None
            await _remember_completion(session, order, channel, store, new)
        held = {hold.reason for hold in await open_holds(session, order.id)}
        if new.status == ChannelOrderStatus.ON_HOLD:
            if HoldReason.CHANNEL_HOLD not in held and (
                order.status == OrderStatus.ON_HOLD or order_rules.can_transition(order.status, OrderStatus.ON_HOLD)
            ):
                await place_hold(
                    session,
                    order,
                    HoldReason.CHANNEL_HOLD,
                    note=_clip(new.hold_reason or new.raw_status, 1000),
                    actor=actor,
                )
                changes.append("held by the channel")
        elif HoldReason.CHANNEL_HOLD in held:
            await release_holds(session, order, reason=HoldReason.CHANNEL_HOLD, actor=actor)
            changes.append("channel hold released")
    return ", ".join(changes) or "unchanged"


def _refunding(new: NormalizedOrder) -> list[NormalizedLine]:
    return [line for line in new.lines if line.refund and line.refund.status in returns.IN_PROGRESS]


def _refund_note(lines: list[NormalizedLine]) -> str:
    ids = ", ".join(f"{line.refund.refund_id} (line {line.channel_line_id})" for line in lines if line.refund)
    return f"The buyer asked for a refund at the channel: {ids}. Settle it there before shipping."[:1000]


async def _apply_after_sales(session: AsyncSession, order: Order, new: NormalizedOrder, actor: str) -> list[str]:
    """The channel's after-sale requests: on shipped lines a Return (domain/returns); on unshipped
    ones a REFUND_IN_PROGRESS hold while any is open, released when none is."""
    if not any(line.refund for line in new.lines) or order.status == OrderStatus.CANCELLED:
        return []
    by_channel_id = {line.channel_line_id: line for line in await _order_lines(session, order) if line.channel_line_id}
    shipped = await returns.shipped_by_line(session, order)
    changes: list[str] = []
    waiting: list[NormalizedLine] = []
    for incoming in new.lines:
        line = by_channel_id.get(incoming.channel_line_id)
        if line is None or incoming.refund is None:
            continue
        if shipped.get(line.id, 0):
            if change := await returns.channel_after_sale(session, order, line, incoming.refund, actor):
                changes.append(change)
        elif incoming.refund.status in returns.IN_PROGRESS:
            waiting.append(incoming)
    held = {hold.reason for hold in await open_holds(session, order.id)}
    if waiting and HoldReason.REFUND_IN_PROGRESS not in held:
        if order.status == OrderStatus.ON_HOLD or order_rules.can_transition(order.status, OrderStatus.ON_HOLD):
            await place_hold(session, order, HoldReason.REFUND_IN_PROGRESS, note=_refund_note(waiting), actor=actor)
            changes.append("held: refund in progress")
    elif not waiting and HoldReason.REFUND_IN_PROGRESS in held:
        await release_holds(session, order, reason=HoldReason.REFUND_IN_PROGRESS, actor=actor)
        changes.append("refund settled: hold released")
    return changes


async def _apply_refunds(session: AsyncSession, order: Order, new: NormalizedOrder, actor: str) -> bool:
    """Units refunded before they shipped: they need no stock, and the totals shrink. (Refunds of
    shipped units are returns: :func:`_apply_after_sales`.)"""
    lines = await _order_lines(session, order)
    by_channel_id = {line.channel_line_id: line for line in lines if line.channel_line_id}
    grown = [
        (line, min(incoming.refunded_quantity, line.quantity))
        for incoming in new.lines
        if (line := by_channel_id.get(incoming.channel_line_id))
        and min(incoming.refunded_quantity, line.quantity) > line.refunded_quantity
    ]
    if not grown:  # the usual update: no shipment query on the ingestion path
        return False
    shipped = await returns.shipped_by_line(session, order)
    changed = False
    for line, refunded in grown:
        if shipped.get(line.id, 0):
            continue
        units = refunded - line.refunded_quantity
        line.refunded_quantity = refunded
        await _release_refunded_units(session, order, line, units, actor)
        _note(
            session,
            order,
            "LINE_REFUNDED",
            f"{units} × {line.sku or line.channel_sku_id} refunded at the channel",
            actor,
        )
        changed = True
    if changed:
        _apply_totals(order, lines)
        request_refresh(session, order.id)  # its units and revenue in the reports shrink
        if all(line.refunded_quantity >= line.quantity for line in lines) and order_rules.can_transition(
            order.status, OrderStatus.CANCELLED
        ):
            await cancel_order(session, order, "Every line was refunded at the channel", actor)
    return changed


async def _release_refunded_units(session: AsyncSession, order: Order, line: OrderLine, units: int, actor: str) -> None:
    allocations = (
        await session.scalars(
            select(Allocation).where(Allocation.order_line_id == line.id, Allocation.status == "RESERVED")
        )
    ).all()
    for allocation in allocations:
        if units <= 0:
            break
        take = min(units, allocation.quantity - allocation.shipped_quantity)
        if take <= 0:
            continue
        product = await session.get(Product, allocation.product_id)
        location = await session.get(Location, allocation.location_id)
        assert product is not None and location is not None
        await move_stock(
            session,
            product=product,
            location=location,
            reason=MovementReason.RELEASE,
            reserved=-take,
            reference=Reference("ORDER", str(order.id), order.number, actor),
        )
        if take == allocation.quantity:
            allocation.status = "RELEASED"
        else:
            allocation.quantity -= take
        units -= take


async def _apply_address(session: AsyncSession, order: Order, incoming: NormalizedAddress, actor: str) -> bool:
    if order.status in SHIPPED_OR_LATER or order.status == OrderStatus.CANCELLED:
        return False
    address = await session.get(Address, order.shipping_address_id)
    assert address is not None
    details = _address(incoming)
    fields = ("country", "line1", "name", "phone", "email", "region", "city", "district", "line2", "postal_code")
    if all(getattr(address, name) == getattr(details, name) for name in fields):
        return False
    for name in fields:
        setattr(address, name, getattr(details, name))
    address.latitude = address.longitude = None  # the old coordinates belong to the old address
    _note(session, order, "ADDRESS_CHANGED", "The buyer changed the shipping address at the channel", actor)
    held = {hold.reason for hold in await open_holds(session, order.id)}
    if HoldReason.ADDRESS_INCOMPLETE in held:
        await release_holds(session, order, reason=HoldReason.ADDRESS_INCOMPLETE, actor=actor)
    return True


async def _consume_reservations(session: AsyncSession, order: Order, actor: str) -> None:
    """The goods left with a shipment the OMS did not make: reserved units leave the ledger."""
    allocations = (
        await session.scalars(
            select(Allocation).where(Allocation.order_id == order.id, Allocation.status == "RESERVED")
        )
    ).all()
    for allocation in allocations:
        units = allocation.quantity - allocation.shipped_quantity
        if units > 0:
            product = await session.get(Product, allocation.product_id)
            location = await session.get(Location, allocation.location_id)
            assert product is not None and location is not None
            await move_stock(
                session,
                product=product,
                location=location,
                reason=MovementReason.SHIP,
                on_hand=-units,
                reserved=-units,
                reference=Reference("ORDER", str(order.id), f"{order.number} shipped at the channel", actor),
            )
            allocation.shipped_quantity = allocation.quantity
        allocation.status = "SHIPPED"


async def _close_holds(session: AsyncSession, order: Order, actor: str) -> None:
    now = utcnow()
    for hold in await open_holds(session, order.id):
        hold.released_at, hold.released_by = now, actor


async def _shipped_elsewhere(session: AsyncSession, channel: Channel, order: Order, new: NormalizedOrder) -> bool:
    actor = _actor(channel)
    target = OrderStatus.COMPLETED if new.status == ChannelOrderStatus.COMPLETED else OrderStatus.SHIPPED
    status = OrderStatus(order.status)
    if status in SHIPPED_OR_LATER:
        if target == OrderStatus.COMPLETED and status != OrderStatus.COMPLETED:
            _jump(session, order, OrderStatus.COMPLETED, f"Completed at the channel ({new.raw_status})", actor)
            return True
        if status == OrderStatus.PARTIALLY_SHIPPED and target == OrderStatus.SHIPPED:
            # The rest left through the channel's own shipping: the OMS's share is done too.
            await _consume_reservations(session, order, actor)
            _jump(session, order, OrderStatus.SHIPPED, f"Shipped at the channel ({new.raw_status})", actor)
            return True
        return False
    if status == OrderStatus.CANCELLED:
        return False
    await _consume_reservations(session, order, actor)
    await _close_holds(session, order, actor)
    order.paid_at = order.paid_at or new.paid_at or new.placed_at
    unreserved = status not in (OrderStatus.ALLOCATED,)
    _jump(
        session,
        order,
        target,
        f"{'Completed' if target == OrderStatus.COMPLETED else 'Shipped'} outside the OMS ({new.raw_status})"
        + ("; no stock was reserved here, so count the stock if it left one of our locations" if unreserved else ""),
        actor,
    )
    return True


async def _fulfilled_by_channel(session: AsyncSession, channel: Channel, order: Order, new: NormalizedOrder) -> bool:
    """The channel ships from its own stock (Amazon AFN): record the sale, never touch ours."""
    actor = _actor(channel)
    if new.status == ChannelOrderStatus.UNPAID or order.status == OrderStatus.CANCELLED:
        return False
    await _close_holds(session, order, actor)
    order.paid_at = order.paid_at or new.paid_at or new.placed_at
    target = OrderStatus.COMPLETED if new.status == ChannelOrderStatus.COMPLETED else OrderStatus.SHIPPED
    if order.status == target:
        return False
    if order.status in (OrderStatus.ALLOCATED, OrderStatus.ON_HOLD, OrderStatus.BACKORDERED, OrderStatus.CONFIRMED):
        await order_rules.release_reservations(session, order, actor)
    _jump(session, order, target, f"Fulfilled by the channel from its own stock ({new.raw_status})", actor)
    return True


# The order event that marks a sale in the store (handed over there, not shipped): when a hold
# on it goes (an unmapped SKU mapped), it takes the store's stock instead of being allocated.
STORE_SALE = "STORE_SALE"


async def is_store_sale(session: AsyncSession, order: Order) -> bool:
    found = await session.scalar(
        select(OrderEvent.id).where(OrderEvent.order_id == order.id, OrderEvent.kind == STORE_SALE).limit(1)
    )
    return found is not None


# The order event that keeps a POS's COMPLETED while the sale waits ON_HOLD (an unmapped SKU,
# a store short of stock): the POS sends nothing more about a finished sale, so when the hold
# goes and the sale takes its stock, this says it is COMPLETED rather than only handed over.
COMPLETED_AT_STORE = "COMPLETED_AT_STORE"


async def _remember_completion(
    session: AsyncSession, order: Order, channel: Channel, store: Location, new: NormalizedOrder
) -> None:
    if new.status == ChannelOrderStatus.COMPLETED and not await _completed_at_store(session, order):
        _note(
            session,
            order,
            COMPLETED_AT_STORE,
            f"The POS completed the sale ({new.raw_status}) while it waits here: it completes once "
            f"its stock is taken from {store.code}.",
            _actor(channel),
        )


async def _completed_at_store(session: AsyncSession, order: Order) -> bool:
    found = await session.scalar(
        select(OrderEvent.id).where(OrderEvent.order_id == order.id, OrderEvent.kind == COMPLETED_AT_STORE).limit(1)
    )
    return found is not None


async def sell_at_store(
    session: AsyncSession, channel: Channel, order: Order, store: Location, new: NormalizedOrder | None = None
) -> None:
    """An in-store sale: the goods left the store's shelf, so its stock goes down at once.

    The order is ALLOCATED to the store and SHIPPED (COMPLETED when the POS says so, now or
    while the sale waited on a hold); it takes its units from this store only.

    If the store's books show fewer units than were sold, the sale did happen: the books are
    wrong, not the till. Still, the ledger never goes negative and we do not invent stock to
    cover it: nothing is taken, and the order waits ON_HOLD (OUT_OF_STOCK) for someone to count
    the store's stock and release the order, which then goes through ordinary allocation (the
    operator's call, as for any order released from a hold).
    """
    actor = _actor(channel)
    lines = [
        line
        for line in await _order_lines(session, order)
        if line.product_id is not None and line.quantity > line.refunded_quantity
    ]
    reference = Reference("ORDER", str(order.id), f"{order.number} sold at {store.code}", actor)
    short: list[str] = []
    fulfillment = FulfillmentOrder(order_id=order.id, location_id=store.id, status="CLOSED")
    try:
        async with session.begin_nested():
            session.add(fulfillment)
            await session.flush()
            for line in lines:
                units = line.quantity - line.refunded_quantity
                product = await session.get(Product, line.product_id)
                assert product is not None
                figures = await move_stock(
                    session,
                    product=product,
                    location=store,
                    reason=MovementReason.SHIP,
                    on_hand=-units,
                    reference=reference,
                )
                if figures is None:
                    short.append(product.sku)
                    continue
                session.add(
                    Allocation(
                        order_id=order.id,
                        order_line_id=line.id,
                        fulfillment_order_id=fulfillment.id,
                        location_id=store.id,
                        product_id=product.id,
                        quantity=units,
                        shipped_quantity=units,
                        status="SHIPPED",
                        reason="sold in the store",
                    )
                )
            if short:
                raise _StoreShort()
    except _StoreShort:
        await place_hold(
            session,
            order,
            HoldReason.OUT_OF_STOCK,
            note=f"{store.code} sold {', '.join(short)} but its stock shows fewer: count the stock, "
            "then release the order.",
            actor=actor,
        )
        return
    set_status(session, order, OrderStatus.ALLOCATED, f"Sold at {store.code}", actor)
    set_status(session, order, OrderStatus.SHIPPED, f"Handed over at {store.code}", actor)
    completed = (
        new.status == ChannelOrderStatus.COMPLETED if new is not None else await _completed_at_store(session, order)
    )
    if completed:
        set_status(session, order, OrderStatus.COMPLETED, "Completed at the POS", actor)


class _StoreShort(Exception):
    pass


# --- mapping listings releases held orders --------------------------------


async def map_unmapped_lines(
    session: AsyncSession, channel: Channel, channel_sku_id: str, product: Product, actor: str | None
) -> list[int]:
    """Give this channel SKU's unmapped order lines our product; release orders with nothing left unmapped."""
    channel_orders = select(Order.id).where(Order.channel_id == channel.id)
    order_ids = list(
        (
            await session.scalars(
                select(OrderLine.order_id)
                .where(
                    OrderLine.channel_sku_id == channel_sku_id,
                    OrderLine.product_id.is_(None),
                    OrderLine.order_id.in_(channel_orders),
                )
                .distinct()
            )
        ).all()
    )
    if not order_ids:
        return []
    await session.execute(
        update(OrderLine)
        .where(
            OrderLine.order_id.in_(order_ids),
            OrderLine.channel_sku_id == channel_sku_id,
            OrderLine.product_id.is_(None),
        )
        .values(product_id=product.id, sku=product.sku)
        .execution_options(synchronize_session=False)
    )
    released = []
    for order_id in sorted(order_ids):
        order = await order_rules.order_by_id(session, order_id, lock=True)
        still_unmapped = await session.scalar(
            select(OrderLine.id)
            .where(
                OrderLine.order_id == order.id,
                OrderLine.product_id.is_(None),
                OrderLine.channel_sku_id.is_not(None),
                OrderLine.refunded_quantity < OrderLine.quantity,
            )
            .limit(1)
        )
        holds = await open_holds(session, order.id)
        if still_unmapped is not None or not any(hold.reason == HoldReason.UNMAPPED_SKU for hold in holds):
            continue
        await release_holds(session, order, reason=HoldReason.UNMAPPED_SKU, actor=actor)
        released.append(order.id)
        store_code = (channel.settings or {}).get("locationCode")
        # Only a sale in the store takes its stock there; a POS order to be shipped is allocated.
        if store_code and order.status == OrderStatus.CONFIRMED and await is_store_sale(session, order):
            store = await session.scalar(select(Location).where(Location.code == store_code))
            if store is not None:
                await sell_at_store(session, channel, order, store)
    return released
