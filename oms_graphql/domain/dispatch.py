"""Dispatch: a fulfillment order becomes a shipment with a carrier's waybill and label.

Three steps, so that no carrier is called inside a transaction and nothing is
dispatched twice:

1. ``create_shipment`` (a transaction): a PENDING shipment for everything the
   fulfillment order still has to ship, with the delivery option chosen (the
   default choice of :mod:`delivery`, or the carrier and service asked for) and
   why. A second call returns the same PENDING shipment.
2. The job asks the carrier for the waybill (``waybill_request`` says what to
   send; its ``reference`` is fixed per shipment, so a retried call returns the
   first waybill) and the label, outside any transaction.
3. ``complete_dispatch`` (a transaction) keeps the label, books the shipment as
   DISPATCHED (stock reserved → shipped, the order SHIPPED or PARTIALLY_SHIPPED)
   and asks for the channel's confirmation; or ``park`` cancels the PENDING
   shipment when the carrier refused it for good, holds the fulfillment order
   (DELIVERY_PROBLEM) and raises an alert.

A location's allocated orders are dispatched by themselves (``autoDispatch``,
on by default) once at least one carrier is configured; otherwise by hand with
shipmentCreate and shipmentDispatch. The fulfillment orders one transaction allocates
share one job (:func:`allocation.request_automatic_dispatch`), which plans each in a savepoint of
its own (:func:`plan_automatic_many`) and dispatches each shipment on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql import redaction
from oms_graphql.db.models import (
    Address,
    Allocation,
    Carrier,
    FulfillmentOrder,
    Location,
    Order,
    OrderLine,
    Product,
    Shipment,
    ShipmentLabel,
    utcnow,
)
from oms_graphql.domain import delivery, fulfillment, packing, tracking
from oms_graphql.domain.carriers import carrier_config, services_of
from oms_graphql.domain.channels import raise_alert
from oms_graphql.domain.errors import DomainError, InvalidTransition, NotFound
from oms_graphql.domain.orders import HoldReason, OrderStatus, order_by_id
from oms_graphql.domain.shipments import dispatch
from oms_graphql.events.outbox import request_job
from oms_graphql.plugins.carrier_contract import (
    CarrierConfig,
    CarrierService,
    Label,
    Parcel,
    ParcelItem,
    ShipmentRequest,
    Waybill,
)
from oms_graphql.plugins.contract import NormalizedAddress

log = structlog.get_logger(__name__)

DISPATCH_JOB = "dispatch_shipment"
# The automatic dispatch of one fulfillment order (kept for a redispatch, and for queued messages).
FULFILLMENT_DISPATCH_JOB = "dispatch_fulfillment_order"
DISPATCH_FAILED = "DISPATCH_FAILED"
PENDING = "PENDING"


async def create_shipment(
    session: AsyncSession,
    fulfillment_order_id: int,
    *,
    carrier_code: str | None = None,
    service_code: str | None = None,
    packages: Sequence[packing.Package] | None = None,
    quotes: delivery.Quotes | None = None,
    actor: str | None = None,
) -> Shipment:
    """A PENDING shipment of what the fulfillment order still has to ship, with its delivery option.

    ``packages``: the parcels as a person packed them (checked against the lines and the
    service's per-parcel limits); by default computed from the products (:mod:`packing`).
    """
    fulfillment_order = await fulfillment.fulfillment_order_by_id(session, fulfillment_order_id, lock=True)
    pending = await session.scalar(
        select(Shipment).where(Shipment.fulfillment_order_id == fulfillment_order.id, Shipment.status == PENDING)
    )
    if pending is not None:
        if carrier_code in (None, pending.carrier) and service_code in (None, pending.service):
            return pending  # asked twice: the same shipment
        raise DomainError(
            f"A PENDING shipment with {pending.carrier} {pending.service} exists for it; dispatch that one.",
            ("carrierCode",),
            "PENDING_SHIPMENT",
        )
    if fulfillment_order.status != fulfillment.OPEN:
        raise InvalidTransition(
            f"This fulfillment order is {fulfillment_order.status}; only an OPEN one ships"
            + (" (release it first)." if fulfillment_order.status == fulfillment.ON_HOLD else "."),
            ("fulfillmentOrderId",),
        )
    order = await order_by_id(session, fulfillment_order.order_id)
    if order.status not in (OrderStatus.ALLOCATED, OrderStatus.PARTIALLY_SHIPPED):
        raise InvalidTransition(f"Order {order.number} is {order.status}; only allocated orders ship.", ("id",))
    options = await delivery.delivery_options(session, order.id, quotes)
    if carrier_code is not None:
        mine = [o for o in options if o.carrier_code == carrier_code and service_code in (None, o.service_code)]
        if not mine:
            raise NotFound(
                f"Carrier {carrier_code!r} offers no such service for this order (deliveryOptions lists them).",
                ("carrierCode",) if not service_code else ("serviceCode",),
            )
        option = next((o for o in mine if o.eligible), mine[0])
        if not option.eligible:
            raise DomainError(option.reason, ("serviceCode",), "NOT_ELIGIBLE")
        reason = f"Chosen by {actor or 'hand'}: {option.reason}"
    else:
        option_found = next((o for o in options if o.chosen), None)
        if option_found is None:
            why = "; ".join(sorted({f"{o.carrier_code} {o.service_code}: {o.reason}" for o in options})) or (
                "no carrier is configured (carrierCreate)"
            )
            raise DomainError(f"No carrier service can carry this shipment: {why}", ("id",), "NO_DELIVERY_OPTION")
        option, reason = option_found, option_found.reason
    service = await _service(session, option.carrier_code, option.service_code)
    units = packing.units_of(
        [(product, count) for _line, product, count in await unshipped_lines(session, fulfillment_order.id)]
    )
    if packages is not None:
        packing.check_packages(packages, units, service)
        packed = list(packages)
    else:
        packed = packing.pack(units, service.max_weight_grams if service else None)
    shipment = Shipment(
        order_id=order.id,
        fulfillment_order_id=fulfillment_order.id,
        location_id=fulfillment_order.location_id,
        status=PENDING,
        carrier=option.carrier_code,
        service=option.service_code,
        option_reason=reason[:1000],
        packages=[package.as_json() for package in packed],
    )
    session.add(shipment)
    await session.flush()
    return shipment


async def _service(session: AsyncSession, carrier_code: str, service_code: str) -> CarrierService | None:
    carrier = await session.scalar(select(Carrier).where(Carrier.code == carrier_code))
    return next((item for item in services_of(carrier) if item.code == service_code), None) if carrier else None


async def unshipped_lines(
    session: AsyncSession, fulfillment_order_id: int | None
) -> list[tuple[OrderLine, Product, int]]:
    """What the fulfillment order still has reserved and not shipped, line by line."""
    if fulfillment_order_id is None:
        return []
    return (await unshipped_lines_of(session, [fulfillment_order_id])).get(fulfillment_order_id, [])


async def unshipped_lines_of(
    session: AsyncSession, fulfillment_order_ids: Sequence[int]
) -> dict[int, list[tuple[OrderLine, Product, int]]]:
    """:func:`unshipped_lines` of several fulfillment orders in one query, by fulfillment order."""
    rows = (
        await session.execute(
            select(Allocation, OrderLine, Product)
            .join(OrderLine, OrderLine.id == Allocation.order_line_id)
            .join(Product, Product.id == Allocation.product_id)
            .where(Allocation.fulfillment_order_id.in_(fulfillment_order_ids), Allocation.status == "RESERVED")
            .order_by(Allocation.fulfillment_order_id, OrderLine.line_no)
        )
    ).all()
    found: dict[int, list[tuple[OrderLine, Product, int]]] = {}
    for allocation, line, product in rows:
        found.setdefault(allocation.fulfillment_order_id, []).append(
            (line, product, allocation.quantity - allocation.shipped_quantity)
        )
    return found


def request_dispatch(session: AsyncSession, shipment: Shipment) -> None:
    """Get the shipment's waybill and label from its carrier, in a job, once this commits."""
    request_job(session, DISPATCH_JOB, shipment_id=shipment.id)


@dataclass(frozen=True)
class WaybillCall:
    carrier: CarrierConfig
    request: ShipmentRequest


def plain_address(place: Location | Address, name: str | None = None) -> NormalizedAddress:
    return NormalizedAddress(
        country=place.country,
        line1=place.line1,
        name=getattr(place, "name", None) or name,
        phone=place.phone,
        email=getattr(place, "email", None),
        region=place.region,
        city=place.city,
        district=place.district,
        line2=place.line2,
        postal_code=place.postal_code,
    )


async def waybill_call(session: AsyncSession, shipment_id: int) -> WaybillCall | None:
    """What to ask the carrier for this PENDING shipment; None when it is not pending any more."""
    shipment = await session.get(Shipment, shipment_id)
    if shipment is None or shipment.status != PENDING or not shipment.carrier:
        return None
    carrier = await session.scalar(select(Carrier).where(Carrier.code == shipment.carrier))
    if carrier is None:
        raise NotFound(f"No carrier has code {shipment.carrier!r} any more.", ("carrierCode",))
    order = await session.get(Order, shipment.order_id)
    location = await session.get(Location, shipment.location_id)
    address = await session.get(Address, order.shipping_address_id) if order else None
    assert order is not None and location is not None and address is not None
    lines = await unshipped_lines(session, shipment.fulfillment_order_id)
    if shipment.packages:
        packages = [packing.Package.from_json(entry) for entry in shipment.packages]
    else:  # made before shipments kept their packages: everything in one parcel
        whole = delivery.parcel_of([(product, count) for _line, product, count in lines])
        packages = [packing.Package(max(whole.weight_grams, packing.MIN_PARCEL_GRAMS), whole.longest_mm or None)]
    return WaybillCall(
        carrier_config(carrier),
        ShipmentRequest(
            reference=f"{order.number}-{shipment.id}",
            service_code=shipment.service or "",
            sender=plain_address(location),
            recipient=plain_address(address),
            parcels=tuple(
                Parcel(
                    weight_grams=package.weight_grams,
                    length_mm=package.length_mm,
                    width_mm=package.width_mm,
                    height_mm=package.height_mm,
                )
                for package in packages
            ),
            items=tuple(
                ParcelItem(sku=product.sku, name=line.title or product.name, quantity=count, unit_value=line.unit_price)
                for line, product, count in lines
            ),
            declared_value=sum((line.unit_price * count for line, _product, count in lines), Decimal("0")),
            currency=order.currency,
        ),
    )


async def complete_dispatch(
    session: AsyncSession, shipment_id: int, waybill: Waybill, label: Label | None
) -> Shipment | None:
    """Book the shipment DISPATCHED with its waybill (and keep its label); None when done already."""
    shipment = await session.get(Shipment, shipment_id, with_for_update=True)
    if shipment is None or shipment.status != PENDING or shipment.fulfillment_order_id is None:
        return None
    shipment.carrier_reference = waybill.carrier_reference
    if waybill.parcel_tracking_numbers and shipment.packages:
        # Each parcel's own number (SF child waybills), kept beside its weight and size.
        shipment.packages = [
            {**entry, "trackingNumber": number}
            for entry, number in zip(shipment.packages, waybill.parcel_tracking_numbers, strict=False)
        ] + shipment.packages[len(waybill.parcel_tracking_numbers) :]
    if label is not None:
        session.add(ShipmentLabel(shipment_id=shipment.id, media_type=label.media_type, content=label.content))
        shipment.label_url = f"/shipments/{shipment.id}/label"
    dispatched = await dispatch(
        session,
        shipment.fulfillment_order_id,
        carrier=shipment.carrier or "",
        tracking_number=waybill.tracking_number,
        service=shipment.service,
        actor="dispatch",
        pending=shipment,
    )
    await tracking.announce(session, dispatched, PENDING, dispatched.dispatched_at or utcnow())
    return dispatched


async def park(session: AsyncSession, shipment_id: int, problem: str) -> None:
    """The carrier refused the shipment for good: cancel it, hold its fulfillment order, alert people."""
    shipment = await session.get(Shipment, shipment_id, with_for_update=True)
    if shipment is None or shipment.status != PENDING:
        return
    problem = redaction.redact(problem)
    shipment.status = "CANCELLED"
    order = await session.get(Order, shipment.order_id)
    if shipment.fulfillment_order_id is not None:
        held = await session.get(FulfillmentOrder, shipment.fulfillment_order_id, with_for_update=True)
        if held is not None and held.status in (fulfillment.OPEN, fulfillment.ON_HOLD):
            await fulfillment.hold_fulfillment_order(
                session, held, HoldReason.DELIVERY_PROBLEM, f"{shipment.carrier}: {problem}"[:1000], "dispatch"
            )
    await raise_alert(
        session,
        DISPATCH_FAILED,
        f"{shipment.carrier} refused the shipment of order {order.number if order else shipment.order_id}: {problem} "
        "— fix the address or choose another service (shipmentCreate), then release the fulfillment order.",
    )


async def cancel_pending(session: AsyncSession, shipment: Shipment) -> Shipment:
    """Cancel a shipment the carrier has not been asked for yet (the fulfillment order ships later)."""
    if shipment.status != PENDING:
        raise InvalidTransition(
            f"This shipment is {shipment.status}; only a PENDING one can be cancelled here.", ("id",)
        )
    shipment.status = "CANCELLED"
    await session.flush()
    return shipment


async def hold_undeliverable(session: AsyncSession, fulfillment_order_id: int, problem: str) -> None:
    """No carrier service can carry it (too heavy, cold chain, out of every area): held, and people told."""
    held = await fulfillment.fulfillment_order_by_id(session, fulfillment_order_id, lock=True)
    if held.status != fulfillment.OPEN:
        return
    await fulfillment.hold_fulfillment_order(session, held, HoldReason.DELIVERY_PROBLEM, problem[:1000], "dispatch")
    order = await session.get(Order, held.order_id)
    await raise_alert(
        session, DISPATCH_FAILED, f"Order {order.number if order else held.order_id} cannot be dispatched: {problem}"
    )


async def plan_automatic(
    session: AsyncSession, fulfillment_order_id: int, quotes: delivery.Quotes | None = None
) -> int | None:
    """The PENDING shipment to dispatch for a newly allocated fulfillment order, or None.

    ``quotes``: the carriers' live prices for it (asked before this transaction), preferred
    over the rate table when choosing the option.

    None without any active carrier (the merchant ships by hand), or when it was held,
    moved or shipped by hand meanwhile. When no carrier service can carry it, it is held
    (DELIVERY_PROBLEM) and people are told.
    """
    if not await any_active_carrier(session):
        return None
    return await _plan_one(session, fulfillment_order_id, quotes)


async def any_active_carrier(session: AsyncSession) -> bool:
    """Whether any carrier can be asked; without one the merchant ships by hand."""
    return await session.scalar(select(Carrier.id).where(Carrier.active.is_(True)).limit(1)) is not None


async def plan_automatic_many(
    session: AsyncSession, fulfillment_order_ids: Sequence[int], quotes: Mapping[int, delivery.Quotes]
) -> list[int]:
    """:func:`plan_automatic` of each fulfillment order on its own: the PENDING shipments to dispatch.

    ``quotes``: the live prices by fulfillment order. Each one is planned in a savepoint of
    its own: one that fails unexpectedly is rolled back alone and handed to its own
    ``dispatch_fulfillment_order`` job (retried there), and the others go on.
    """
    if not await any_active_carrier(session):
        return []
    shipment_ids = []
    for fulfillment_order_id in fulfillment_order_ids:
        try:
            async with session.begin_nested():
                shipment_id = await _plan_one(session, fulfillment_order_id, quotes.get(fulfillment_order_id))
        except Exception:
            log.exception(
                "automatic dispatch failed; it gets a job of its own", fulfillment_order_id=fulfillment_order_id
            )
            request_job(session, FULFILLMENT_DISPATCH_JOB, fulfillment_order_id=fulfillment_order_id)
            continue
        if shipment_id is not None:
            shipment_ids.append(shipment_id)
    return shipment_ids


async def _plan_one(session: AsyncSession, fulfillment_order_id: int, quotes: delivery.Quotes | None) -> int | None:
    try:
        shipment = await create_shipment(session, fulfillment_order_id, quotes=quotes, actor="dispatch")
    except DomainError as error:
        if error.code == "NO_DELIVERY_OPTION":
            await hold_undeliverable(session, fulfillment_order_id, error.message)
        return None
    return shipment.id
