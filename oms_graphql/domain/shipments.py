"""Shipments: dispatching a fulfillment order, and telling the sales channel.

Kept minimal on purpose (the delivery work extends it): :func:`dispatch`
ships what a fulfillment order still has reserved — SHIP movements in the
ledger, a Shipment with its lines, the order SHIPPED or PARTIALLY_SHIPPED — and
asks for the ``confirm_shipment`` job, which tells the channel (Taobao offline
send, JD shipment, Amazon confirmShipment) and is retried until accepted.
Whoever else dispatches a shipment calls :func:`request_channel_confirmation`.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Allocation,
    Carrier,
    Channel,
    FulfillmentOrder,
    Location,
    Order,
    OrderLine,
    Product,
    Shipment,
    ShipmentLine,
    utcnow,
)
from oms_graphql.domain.carriers import carrier_config
from oms_graphql.domain.channels import channel_config, raise_alert
from oms_graphql.domain.errors import DomainError, NotFound, Problems
from oms_graphql.domain.inventory import MovementReason, Reference, move_stock
from oms_graphql.domain.orders import OrderStatus, order_by_id, set_status
from oms_graphql.domain.reports import request_refresh
from oms_graphql.events.outbox import request_job
from oms_graphql.plugins.contract import ChannelConfig, ShipmentConfirmation
from oms_graphql.plugins.contract import ShipmentLine as ConfirmedLine
from oms_graphql.plugins.host import carrier_kinds, plugin_manager
from oms_graphql.redaction import redact

CONFIRM_JOB = "confirm_shipment"
RETRACT_JOB = "retract_shipment_confirmation"


def request_channel_confirmation(session: AsyncSession, shipment: Shipment) -> None:
    request_job(session, CONFIRM_JOB, shipment_id=shipment.id)


async def dispatch(
    session: AsyncSession,
    fulfillment_order_id: int,
    *,
    carrier: str,
    tracking_number: str,
    service: str | None = None,
    actor: str | None = None,
    pending: Shipment | None = None,
) -> Shipment:
    """Ship everything the fulfillment order has reserved and not shipped yet.

    ``pending``: the shipment made for it beforehand (a carrier waybill was asked for
    it), completed here; else a new one.
    """
    problems = Problems()
    problems.text(("carrier",), carrier, 64, required=True)
    problems.text(("trackingNumber",), tracking_number, 100, required=True)
    problems.raise_if_any()
    fulfillment = await session.get(FulfillmentOrder, fulfillment_order_id, with_for_update=True)
    if fulfillment is None:
        raise NotFound("No fulfillment order has this id.", ("fulfillmentOrderId",))
    if fulfillment.status in ("ON_HOLD", "CANCELLED"):
        raise DomainError(
            f"This fulfillment order is {fulfillment.status}"
            + ("; release it (fulfillmentOrderRelease) to ship it." if fulfillment.status == "ON_HOLD" else "."),
            ("fulfillmentOrderId",),
            "INVALID_TRANSITION",
        )
    order = await order_by_id(session, fulfillment.order_id, lock=True)
    if order.status not in (OrderStatus.ALLOCATED, OrderStatus.PARTIALLY_SHIPPED):
        raise DomainError(
            f"Order {order.number} is {order.status}; only allocated orders ship.", ("id",), "INVALID_TRANSITION"
        )
    allocations = (
        await session.scalars(
            select(Allocation).where(Allocation.fulfillment_order_id == fulfillment.id, Allocation.status == "RESERVED")
        )
    ).all()
    if not allocations:
        raise DomainError("This fulfillment order has nothing left to ship.", ("id",), "NOTHING_TO_SHIP")
    location = await session.get(Location, fulfillment.location_id)
    assert location is not None
    now = utcnow()
    shipment = pending or Shipment(
        order_id=order.id, fulfillment_order_id=fulfillment.id, location_id=location.id, created_at=now
    )
    shipment.status, shipment.carrier, shipment.service = "DISPATCHED", carrier, service
    shipment.tracking_number, shipment.dispatched_at = tracking_number, now
    session.add(shipment)
    await session.flush()
    reference = Reference("SHIPMENT", str(shipment.id), f"{order.number} {carrier} {tracking_number}", actor)
    for allocation in allocations:
        units = allocation.quantity - allocation.shipped_quantity
        product = await session.get(Product, allocation.product_id)
        assert product is not None
        figures = await move_stock(
            session,
            product=product,
            location=location,
            reason=MovementReason.SHIP,
            on_hand=-units,
            reserved=-units,
            reference=reference,
        )
        if figures is None:
            raise DomainError(f"The ledger refused to ship {units} of {product.sku}; run `oms stock verify`.")
        allocation.shipped_quantity = allocation.quantity
        allocation.status = "SHIPPED"
        session.add(ShipmentLine(shipment_id=shipment.id, order_line_id=allocation.order_line_id, quantity=units))
    fulfillment.status = "CLOSED"
    open_units = await session.scalar(
        select(func.count())
        .select_from(Allocation)
        .where(Allocation.order_id == order.id, Allocation.status == "RESERVED")
    )
    target = OrderStatus.PARTIALLY_SHIPPED if open_units else OrderStatus.SHIPPED
    set_status(session, order, target, f"Dispatched {carrier} {tracking_number} from {location.code}", actor)
    request_refresh(session, order.id)  # a second parcel may leave the status as it was
    request_channel_confirmation(session, shipment)
    return shipment


async def marketplace_carrier_code(
    session: AsyncSession, carrier: str | None, channel_kind: str, service: str | None = None
) -> str:
    """The carrier as the marketplace names it (Taobao ``SF``, JD ``467``, Amazon ``USPS``…) when
    ``carrier`` is one of our carrier accounts: the plugin's name for the service's transporting
    carrier, else its kind's; as given otherwise (a carrier typed in by hand)."""
    if not carrier:
        return ""
    account = await session.scalar(select(Carrier).where(Carrier.code == carrier))
    if account is None:
        return carrier
    named = plugin_manager().hook.oms_carrier_marketplace_code(
        carrier=carrier_config(account), service_code=service or "", channel_kind=channel_kind
    )
    if named:
        return str(named)
    kind = carrier_kinds().get(account.kind)
    return (kind.marketplace_codes.get(channel_kind) if kind else None) or carrier


async def confirmation_for(
    session: AsyncSession, shipment_id: int, *, include_cancelled: bool = False
) -> tuple[ChannelConfig, ShipmentConfirmation] | None:
    """What to tell the channel about this shipment; None when there is nothing to tell (told
    already, not dispatched, or cancelled before the channel heard of it).

    ``include_cancelled``: what the channel was told of a shipment cancelled since (to retract it).
    """
    shipment = await session.get(Shipment, shipment_id)
    if shipment is None or shipment.dispatched_at is None:
        return None
    if not include_cancelled and (shipment.channel_confirmed_at is not None or shipment.status == "CANCELLED"):
        return None
    order = await session.get(Order, shipment.order_id)
    assert order is not None
    channel = await session.get(Channel, order.channel_id)
    if channel is None or channel.kind == "manual" or not order.external_id:
        return None
    lines = (
        await session.execute(
            select(OrderLine, ShipmentLine.quantity)
            .join(ShipmentLine, ShipmentLine.order_line_id == OrderLine.id)
            .where(ShipmentLine.shipment_id == shipment.id)
        )
    ).all()
    all_lines = (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all()
    shipped_here = {line.id: units for line, units in lines}
    # Partial when some unit of the order is not in this parcel (nor refunded).
    partial = any(
        shipped_here.get(line.id, 0) < line.quantity - line.refunded_quantity
        for line in all_lines
        if line.product_id is not None
    )
    carrier_code = await marketplace_carrier_code(session, shipment.carrier, channel.kind, shipment.service)
    return channel_config(channel), ShipmentConfirmation(
        external_order_id=order.external_id,
        carrier_code=carrier_code,
        tracking_number=shipment.tracking_number or "",
        shipped_at=shipment.dispatched_at,
        lines=[
            ConfirmedLine(channel_line_id=line.channel_line_id, quantity=units)
            for line, units in lines
            if line.channel_line_id
        ],
        partial=partial,
        # Our carrier account's code means nothing to the marketplace: name the carrier as it does.
        carrier_name=carrier_code or shipment.carrier,
        service=shipment.service,
    )


async def record_confirmation(
    session: AsyncSession, shipment_id: int, *, accepted: bool, error: str | None = None
) -> int:
    """Note one attempt to tell the channel; returns the number of attempts so far."""
    shipment = await session.get(Shipment, shipment_id, with_for_update=True)
    if shipment is None:
        return 0
    shipment.channel_confirm_attempts = (shipment.channel_confirm_attempts or 0) + 1
    if accepted:
        shipment.channel_confirmed_at = utcnow()
        shipment.channel_confirm_error = None
        if shipment.status == "CANCELLED":
            # Cancelled at the carrier while the channel was being told: take it back there too.
            request_job(session, RETRACT_JOB, shipment_id=shipment.id)
    else:
        shipment.channel_confirm_error = redact(error or "refused")[:4000]
    return shipment.channel_confirm_attempts


CONFIRMATION_FAILED = "SHIPMENT_CONFIRMATION_FAILED"
# Transient refusals are retried quietly until then; after that people are told (once).
ALERT_AFTER_ATTEMPTS = 3


async def record_refusal(
    session: AsyncSession, shipment_id: int, channel_code: str, order_id: str, error: str, *, permanent: bool
) -> None:
    """The channel did not accept a confirmation: note it, and alert people when it matters."""
    attempts = await record_confirmation(session, shipment_id, accepted=False, error=error)
    if permanent or attempts == ALERT_AFTER_ATTEMPTS:
        await raise_alert(
            session,
            CONFIRMATION_FAILED,
            f"{channel_code} has not accepted the shipment of order {order_id} "
            f"({attempts} attempt(s)): {error}" + ("" if permanent else " — still retrying"),
        )
