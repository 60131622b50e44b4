"""Cancelling a shipment: before the carrier was asked, or at the carrier before it collected it.

A PENDING shipment is simply dropped (:func:`dispatch.cancel_pending`). A LABEL_CREATED or
DISPATCHED one whose carrier has not collected it yet (no IN_TRANSIT or later event) is
cancelled in three steps, so that no carrier is called inside a transaction:

1. :func:`cancel_call` (a transaction): checks it can still be cancelled and says what to
   ask the carrier (its waybill).
2. The caller (the shipmentCancel resolver, or the ``cancel_shipment`` job when the carrier
   could not be reached) calls the carrier plugin's ``oms_carrier_cancel``; a refusal
   changes nothing here.
3. :func:`complete_cancel` (a transaction): the shipment is CANCELLED, its units go back
   from shipped to reserved at its location (SHIP_CANCELLED rows in the ledger: on hand up,
   and a RESERVE row), its fulfillment order is OPEN again (dispatched again by hand, or
   by itself when asked), the order steps back (SHIPPED → PARTIALLY_SHIPPED or ALLOCATED),
   and a channel already told of the shipment is asked to forget it (or people are told to
   fix it on the marketplace). Done twice, the second time changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Allocation,
    Carrier,
    Channel,
    FulfillmentOrder,
    Location,
    Order,
    Product,
    Shipment,
    ShipmentEvent,
    ShipmentLine,
    utcnow,
)
from oms_graphql.domain import fulfillment, tracking
from oms_graphql.domain.carriers import carrier_config
from oms_graphql.domain.channels import raise_alert
from oms_graphql.domain.errors import DomainError, InvalidTransition, NotFound
from oms_graphql.domain.inventory import MovementReason, Reference, move_stock
from oms_graphql.domain.orders import OrderStatus, order_by_id, step_back_for_cancelled_shipment
from oms_graphql.domain.shipments import RETRACT_JOB, confirmation_for
from oms_graphql.events.outbox import request_job
from oms_graphql.plugins.carrier_contract import CarrierConfig, Waybill
from oms_graphql.plugins.contract import ChannelConfig, PayloadError, PermanentError, ShipmentConfirmation
from oms_graphql.plugins.host import plugin_manager

CANCELLABLE = ("LABEL_CREATED", "DISPATCHED")
# Events that mean the carrier has the parcel: too late to cancel, it is a return now.
COLLECTED = ("IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED", "FAILED_ATTEMPT", "EXCEPTION", "RETURNED_TO_SENDER")
CANCEL_JOB = "cancel_shipment"
CANCEL_FAILED = "SHIPMENT_CANCEL_FAILED"
CHANNEL_NOT_TOLD = "SHIPMENT_CANCELLED_AT_CHANNEL"


@dataclass(frozen=True)
class CancelCall:
    shipment_id: int
    carrier: CarrierConfig
    waybill: Waybill


async def _collected(session: AsyncSession, shipment: Shipment) -> str | None:
    return await session.scalar(
        select(ShipmentEvent.code)
        .where(ShipmentEvent.shipment_id == shipment.id, ShipmentEvent.code.in_(COLLECTED))
        .order_by(ShipmentEvent.occurred_at.desc())
        .limit(1)
    )


async def cancel_call(session: AsyncSession, shipment: Shipment) -> CancelCall | None:
    """What to ask the carrier to cancel ``shipment``; None when it is cancelled already.

    Refused (INVALID_TRANSITION) when the carrier has collected it (use a return) or it is
    not a dispatched one.
    """
    if shipment.status == "CANCELLED":
        return None
    collected = await _collected(session, shipment)
    if collected is not None or shipment.status not in CANCELLABLE:
        raise InvalidTransition(
            f"This shipment is {shipment.status}"
            + (f" and its carrier reported it {collected}" if collected and collected != shipment.status else "")
            + ": the carrier has the parcel, so it can no longer be cancelled; "
            "ask the customer for a return instead (returnRequest).",
            ("id",),
        )
    carrier = await session.scalar(select(Carrier).where(Carrier.code == shipment.carrier))
    if carrier is None:
        raise NotFound(
            f"No carrier account {shipment.carrier!r} exists any more, so the waybill cannot be cancelled through "
            "the OMS: cancel it with the carrier, then mark it by hand.",
            ("id",),
        )
    return CancelCall(
        shipment.id,
        carrier_config(carrier),
        Waybill(tracking_number=shipment.tracking_number or "", carrier_reference=shipment.carrier_reference),
    )


async def cancel_call_by_id(session: AsyncSession, shipment_id: int) -> CancelCall | None:
    shipment = await session.get(Shipment, shipment_id)
    if shipment is None:
        return None
    return await cancel_call(session, shipment)


class CarrierRefused(DomainError):
    """The carrier would not cancel the waybill (collected already, too late, not allowed)."""

    code = "CARRIER_REFUSED"


def ask_carrier(call: CancelCall) -> None:
    """Ask the carrier plugin to cancel the waybill (network I/O: never inside a transaction).

    Raises :class:`CarrierRefused` with the carrier's words when it says no, and lets a
    plugin's ``RetryableError`` through (the carrier could not answer now).
    """
    try:
        done = plugin_manager().hook.oms_carrier_cancel(carrier=call.carrier, waybill=call.waybill)
    except (PermanentError, PayloadError) as error:
        raise CarrierRefused(f"{call.carrier.code} refused the cancellation: {error}", ("id",)) from error
    if done is None:
        raise CarrierRefused(
            f"No installed plugin cancels waybills of carrier kind {call.carrier.kind!r}: cancel "
            f"{call.waybill.tracking_number} with the carrier itself.",
            ("id",),
            "CARRIER_CANNOT_CANCEL",
        )
    if not done:
        raise CarrierRefused(f"{call.carrier.code} did not cancel waybill {call.waybill.tracking_number}.", ("id",))


def request_cancel(session: AsyncSession, shipment: Shipment, *, redispatch: bool, actor: str | None) -> None:
    """Cancel at the carrier in a job (retried while the carrier cannot be reached), once this commits."""
    request_job(session, CANCEL_JOB, shipment_id=shipment.id, redispatch=redispatch, by=actor)


async def complete_cancel(
    session: AsyncSession, shipment_id: int, *, redispatch: bool = False, actor: str | None = None
) -> Shipment | None:
    """The carrier cancelled the waybill: book it here (see the module docstring). None when
    there is nothing (left) to do: already cancelled, or gone."""
    shipment = await session.get(Shipment, shipment_id, with_for_update=True)
    if shipment is None or shipment.status == "CANCELLED":
        return None
    if shipment.status not in CANCELLABLE or shipment.fulfillment_order_id is None:
        await raise_alert(
            session,
            CANCEL_FAILED,
            f"{shipment.carrier} cancelled waybill {shipment.tracking_number}, but the shipment is {shipment.status} "
            "here: check with the carrier where the parcel is.",
        )
        return None
    order = await order_by_id(session, shipment.order_id, lock=True)
    location = await session.get(Location, shipment.location_id)
    held = await session.get(FulfillmentOrder, shipment.fulfillment_order_id, with_for_update=True)
    assert location is not None and held is not None
    reference = Reference(
        "SHIPMENT", str(shipment.id), f"{order.number} {shipment.carrier} {shipment.tracking_number} cancelled", actor
    )
    lines = (await session.scalars(select(ShipmentLine).where(ShipmentLine.shipment_id == shipment.id))).all()
    for line in lines:
        await _unship_line(session, held, line, location, reference)
    previous, shipment.status = shipment.status, "CANCELLED"
    if held.status == fulfillment.CLOSED:
        held.status = fulfillment.OPEN
    still_out = await session.scalar(
        select(Shipment.id).where(
            Shipment.order_id == order.id,
            Shipment.id != shipment.id,
            Shipment.dispatched_at.is_not(None),
            Shipment.status != "CANCELLED",
        )
    )
    if order.status in (OrderStatus.SHIPPED, OrderStatus.PARTIALLY_SHIPPED):
        step_back_for_cancelled_shipment(
            session,
            order,
            OrderStatus.PARTIALLY_SHIPPED if still_out is not None else OrderStatus.ALLOCATED,
            f"Shipment {shipment.carrier} {shipment.tracking_number} cancelled before collection",
            actor,
        )
    await tracking.announce(session, shipment, previous, utcnow())
    if shipment.channel_confirmed_at is not None:
        request_job(session, RETRACT_JOB, shipment_id=shipment.id)
    if redispatch and location.auto_dispatch:
        request_job(session, "dispatch_fulfillment_order", fulfillment_order_id=held.id)
    await session.flush()
    return shipment


async def _unship_line(
    session: AsyncSession, held: FulfillmentOrder, line: ShipmentLine, location: Location, reference: Reference
) -> None:
    allocations = (
        await session.scalars(
            select(Allocation)
            .where(
                Allocation.fulfillment_order_id == held.id,
                Allocation.order_line_id == line.order_line_id,
                Allocation.shipped_quantity > 0,
            )
            .order_by(Allocation.id)
        )
    ).all()
    left = line.quantity
    for allocation in allocations:
        units = min(left, allocation.shipped_quantity)
        if units <= 0:
            continue
        product = await session.get(Product, allocation.product_id)
        assert product is not None
        figures = await move_stock(
            session,
            product=product,
            location=location,
            reason=MovementReason.SHIP_CANCELLED,
            on_hand=units,
            reserved=units,
            reference=reference,
        )
        if figures is None:
            raise DomainError(f"The ledger refused to take back {units} of {product.sku}; run `oms stock verify`.")
        allocation.shipped_quantity -= units
        allocation.status = "RESERVED"
        left -= units


async def record_refusal(session: AsyncSession, shipment_id: int, problem: str) -> None:
    """The carrier would not cancel (in the job): nothing changed; people are told."""
    shipment = await session.get(Shipment, shipment_id)
    if shipment is None:
        return
    await raise_alert(
        session,
        CANCEL_FAILED,
        f"{shipment.carrier} would not cancel waybill {shipment.tracking_number}: {problem}. The shipment stays "
        f"{shipment.status}.",
    )


# --- telling the channel ----------------------------------------------------


async def retraction_for(session: AsyncSession, shipment_id: int) -> tuple[ChannelConfig, ShipmentConfirmation] | None:
    """What the channel was told about this (now cancelled) shipment; None when it was told nothing."""
    shipment = await session.get(Shipment, shipment_id)
    if shipment is None or shipment.status != "CANCELLED" or shipment.channel_confirmed_at is None:
        return None
    return await confirmation_for(session, shipment_id, include_cancelled=True)


async def channel_cannot_retract(session: AsyncSession, shipment_id: int, why: str) -> None:
    shipment = await session.get(Shipment, shipment_id)
    order = await session.get(Order, shipment.order_id) if shipment else None
    channel = await session.get(Channel, order.channel_id) if order else None
    if shipment is None or order is None or channel is None:
        return
    await raise_alert(
        session,
        CHANNEL_NOT_TOLD,
        f"Shipment {shipment.carrier} {shipment.tracking_number} of order {order.number} was cancelled, but "
        f"{channel.code} was told it shipped and {why}: correct the shipment in the {channel.kind} seller console "
        f"(order {order.external_id}), or give it the new tracking number once it ships again.",
    )
