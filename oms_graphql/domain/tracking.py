"""Tracking: carrier events move shipments (and orders) towards DELIVERED.

Events come pushed (a carrier's webhook, stored first as a TRACKING inbound
message) or polled. Each is kept with the carrier's own code and text; the same
event twice is stored once, and an event older than the shipment's latest does
not move it back, so duplicate and out-of-order pushes are harmless. A shipment
whose every sibling is delivered makes its order DELIVERED; a failed attempt, an
exception or a return to sender raises an alert for the people who can act.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Address,
    Carrier,
    FulfillmentOrder,
    InboundMessage,
    Location,
    Order,
    Shipment,
    ShipmentEvent,
    utcnow,
)
from oms_graphql.domain.carriers import carrier_config, carrier_kind
from oms_graphql.domain.channels import raise_alert
from oms_graphql.domain.errors import InvalidTransition
from oms_graphql.domain.inbound import FAILED, PROCESSED, RECEIVED, record_outcome, store_message
from oms_graphql.domain.orders import OrderStatus, can_transition, order_by_id, set_status
from oms_graphql.domain.reports import request_refresh
from oms_graphql.events.outbox import record_event, request_job
from oms_graphql.plugins.carrier_contract import CarrierConfig, TrackingEvent, TrackingPush, TrackingStatus
from oms_graphql.plugins.contract import PayloadError

TRACKING = "TRACKING"
TRACKING_JOB = "ingest_tracking_message"
POLL_JOB = "poll_shipment_tracking"
DELIVERY_EXCEPTION = "DELIVERY_EXCEPTION"

# The neutral tracking vocabulary onto ShipmentStatus (API.md). PRE_TRANSIT: the label
# exists but nothing moved; it does not change a dispatched shipment.
SHIPMENT_STATUS = {
    TrackingStatus.PRE_TRANSIT: "LABEL_CREATED",
    TrackingStatus.IN_TRANSIT: "IN_TRANSIT",
    TrackingStatus.OUT_FOR_DELIVERY: "OUT_FOR_DELIVERY",
    TrackingStatus.DELIVERED: "DELIVERED",
    TrackingStatus.FAILED_ATTEMPT: "FAILED_ATTEMPT",
    TrackingStatus.EXCEPTION: "EXCEPTION",
    TrackingStatus.RETURNED_TO_SENDER: "RETURNED_TO_SENDER",
}
ALERTING = {TrackingStatus.FAILED_ATTEMPT, TrackingStatus.EXCEPTION, TrackingStatus.RETURNED_TO_SENDER}


@dataclass(frozen=True)
class TrackingOutcome:
    events: int  # new events stored
    shipments: int  # shipments they concerned
    unknown: tuple[str, ...]  # tracking numbers no shipment has


async def _shipments_by_tracking(
    session: AsyncSession, carrier_code: str, numbers: set[str], any_carrier: bool
) -> dict[str, Shipment]:
    query = select(Shipment).where(Shipment.tracking_number.in_(numbers), Shipment.status != "CANCELLED")
    if not any_carrier:
        query = query.where(Shipment.carrier == carrier_code)
    found: dict[str, Shipment] = {}
    for shipment in (await session.scalars(query.order_by(Shipment.id).with_for_update())).all():
        found.setdefault(shipment.tracking_number or "", shipment)
    return found


async def apply_tracking(
    session: AsyncSession, carrier_code: str, events: Sequence[TrackingEvent], *, any_carrier: bool = False
) -> TrackingOutcome:
    """Store the events of shipments of ``carrier_code`` and move each shipment to its latest status.

    ``any_carrier``: match shipments by tracking number alone (a tracking-only service such
    as Kuaidi100 follows parcels of other carriers).
    """
    numbers = {event.tracking_number for event in events}
    shipments = await _shipments_by_tracking(session, carrier_code, numbers, any_carrier) if numbers else {}
    stored = 0
    touched: set[int] = set()
    for shipment in shipments.values():
        known = {
            (row.code, row.carrier_code, row.occurred_at)
            for row in (
                await session.scalars(select(ShipmentEvent).where(ShipmentEvent.shipment_id == shipment.id))
            ).all()
        }
        latest = max((occurred for _code, _carrier, occurred in known), default=None)
        mine = sorted(
            (event for event in events if event.tracking_number == shipment.tracking_number),
            key=lambda event: event.occurred_at,
        )
        for event in mine:
            status = SHIPMENT_STATUS[event.status]
            if (status, event.carrier_code or None, event.occurred_at) in known:
                continue  # the same event again
            known.add((status, event.carrier_code or None, event.occurred_at))
            session.add(
                ShipmentEvent(
                    shipment_id=shipment.id,
                    code=status,
                    carrier_code=(event.carrier_code or None) and event.carrier_code[:64],
                    description=event.description[:500] or None,
                    location=(event.location or None) and event.location[:200],
                    occurred_at=event.occurred_at,
                )
            )
            stored += 1
            touched.add(shipment.id)
            if event.status in ALERTING:
                await raise_alert(
                    session,
                    DELIVERY_EXCEPTION,
                    f"Shipment {shipment.tracking_number} ({carrier_code}): {status} — {event.description}".strip(),
                )
            if latest is not None and event.occurred_at < latest:
                continue  # an older event arriving late: kept in the history, the status stays
            latest = event.occurred_at
            await _move_shipment(session, shipment, event, status)
    await session.flush()
    return TrackingOutcome(stored, len(touched), tuple(sorted(numbers - set(shipments))))


async def announce(session: AsyncSession, shipment: Shipment, previous: str | None, at: datetime) -> None:
    """Publish a shipment's status change (the shipmentEvents subscription), with this transaction."""
    order = await session.get(Order, shipment.order_id)
    record_event(
        session,
        "shipment",
        {
            "shipmentId": shipment.id,
            "orderId": shipment.order_id,
            "customerId": order.customer_id if order else None,
            "carrier": shipment.carrier,
            "trackingNumber": shipment.tracking_number,
            "fromStatus": previous,
            "status": shipment.status,
            "at": at.isoformat(),
        },
    )


async def mark_delivered(session: AsyncSession, shipment: Shipment, at: datetime, actor: str | None) -> Shipment:
    """Delivered, as a person says (a pickup handed over, a carrier that does not track)."""
    if shipment.status in ("PENDING", "CANCELLED", "DELIVERED", "RETURNED_TO_SENDER"):
        raise InvalidTransition(f"This shipment is {shipment.status}; only a dispatched one can be delivered.", ("id",))
    session.add(
        ShipmentEvent(
            shipment_id=shipment.id,
            code="DELIVERED",
            carrier_code="MANUAL",
            description=f"Marked delivered by {actor or 'hand'}"[:500],
            occurred_at=at,
        )
    )
    manual = TrackingEvent(shipment.tracking_number or "", TrackingStatus.DELIVERED, at, "MANUAL")
    await _move_shipment(session, shipment, manual, "DELIVERED")
    await session.flush()
    return shipment


async def _move_shipment(session: AsyncSession, shipment: Shipment, event: TrackingEvent, status: str) -> None:
    if status == "LABEL_CREATED" and shipment.status != "PENDING":
        return
    # A delivered parcel goes back only to its sender (status_map.json's precedence rule):
    # a carrier's stray scan after delivery, or a code it maps to IN_TRANSIT, does not undo it.
    if shipment.status == status or (shipment.status == "DELIVERED" and status != "RETURNED_TO_SENDER"):
        return
    previous, shipment.status = shipment.status, status
    await announce(session, shipment, previous, event.occurred_at)
    if status != "DELIVERED":
        return
    shipment.delivered_at = event.occurred_at
    request_refresh(session, shipment.order_id)
    siblings = (
        await session.scalars(
            select(Shipment.status).where(Shipment.order_id == shipment.order_id, Shipment.status != "CANCELLED")
        )
    ).all()
    order = await order_by_id(session, shipment.order_id, lock=True)
    if all(sibling == "DELIVERED" for sibling in siblings) and can_transition(order.status, OrderStatus.DELIVERED):
        set_status(session, order, OrderStatus.DELIVERED, f"Delivered ({shipment.tracking_number})", "tracking")


# --- pushed tracking, stored first ------------------------------------------

# The job layer passes the plugin call in: (carrier, raw body) → the events it holds.
ParsePush = Callable[[Carrier, bytes], TrackingPush | None]


async def store_push(session: AsyncSession, carrier_code: str, body: str, headers: dict[str, str]) -> InboundMessage:
    """Keep a pushed tracking request before anything reads it (REJECTED later if it is forged)."""
    return await store_message(session, source=carrier_code, kind=TRACKING, body=body, headers=headers)


def queue_push(session: AsyncSession, message: InboundMessage) -> None:
    message.queued_at = utcnow()
    request_job(session, TRACKING_JOB, message_id=message.id)


async def ingest_push(session: AsyncSession, message_id: int, parse: ParsePush) -> TrackingOutcome | None:
    """Apply a stored, accepted tracking push; the message records what came of it (FAILED: replayable)."""
    message = await session.scalar(select(InboundMessage).where(InboundMessage.id == message_id).with_for_update())
    if message is None or message.status != RECEIVED or message.kind != TRACKING:
        return None
    message.attempts = (message.attempts or 0) + 1
    carrier = await session.scalar(select(Carrier).where(Carrier.code == message.source))
    if carrier is None:
        record_outcome(message, FAILED, error=f"No carrier has code {message.source!r} any more.")
        return None
    try:
        push = parse(carrier, message.body.encode("utf-8"))
        if push is None:
            raise PayloadError(f"No installed plugin reads tracking pushes of carrier kind {carrier.kind!r}")
    except (PayloadError, ValueError) as error:
        record_outcome(message, FAILED, error=f"{type(error).__name__}: {error}")
        return None
    tracking_only = not carrier_kind(carrier.kind).creates_waybills
    outcome = await apply_tracking(session, carrier.code, push.events, any_carrier=tracking_only)
    summary = f"{outcome.events} new event(s) on {outcome.shipments} shipment(s)"
    if outcome.unknown:
        summary += f"; no shipment has {', '.join(outcome.unknown)}"
    record_outcome(message, PROCESSED, outcome=summary)
    return outcome


# --- polling and lateness (the scheduler's delivery sweep) ---------------------

OPEN_STATUSES = ("DISPATCHED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "FAILED_ATTEMPT", "EXCEPTION")
DELAYED_ORDER = "DELAYED_ORDER"


async def due_for_polling(session: AsyncSession, every: timedelta, limit: int = 200) -> list[int]:
    """Open shipments of active carriers not polled for ``every``, marked as polled now."""
    now = utcnow()
    ids = list(
        (
            await session.scalars(
                select(Shipment.id)
                .join(Carrier, Carrier.code == Shipment.carrier)
                .where(
                    Carrier.active.is_(True),
                    Shipment.status.in_(OPEN_STATUSES),
                    Shipment.tracking_number.is_not(None),
                    func.coalesce(Shipment.tracked_at, Shipment.dispatched_at) < now - every,
                )
                .order_by(Shipment.id)
                .limit(limit)
            )
        ).all()
    )
    if ids:
        await session.execute(
            update(Shipment)
            .where(Shipment.id.in_(ids))
            .values(tracked_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids


@dataclass(frozen=True)
class PollCall:
    carrier: CarrierConfig
    tracking_number: str
    phone: str | None


async def poll_call(session: AsyncSession, shipment_id: int) -> PollCall | None:
    shipment = await session.get(Shipment, shipment_id)
    if shipment is None or shipment.status not in OPEN_STATUSES or not shipment.tracking_number:
        return None
    carrier = await session.scalar(select(Carrier).where(Carrier.code == shipment.carrier, Carrier.active.is_(True)))
    order = await session.get(Order, shipment.order_id)
    address = await session.get(Address, order.shipping_address_id) if order else None
    if carrier is None:
        return None
    return PollCall(carrier_config(carrier), shipment.tracking_number, address.phone if address else None)


def is_late(shipment: Shipment, order: Order, now: datetime) -> bool:
    """Dispatched after the order's ship-by date (or still not dispatched past it), or not
    delivered by its promised delivery (or delivered after it)."""
    if shipment.status == "CANCELLED":
        return False
    ship_by, deliver_by = order.promised_ship_by, order.promised_at
    if ship_by is not None and (shipment.dispatched_at or now) > ship_by:
        return True
    return deliver_by is not None and (shipment.delivered_at or now) > deliver_by


async def alert_late_shipments(session: AsyncSession, limit: int = 200) -> int:
    """Tell people once about each open shipment past its order's promised delivery, and once
    about each fulfillment order not dispatched by its order's ship-by date (DELAYED_ORDER)."""
    now = utcnow()
    rows = (
        await session.execute(
            select(Shipment, Order)
            .join(Order, Order.id == Shipment.order_id)
            .where(
                Shipment.status.in_(OPEN_STATUSES),
                Shipment.late_alerted_at.is_(None),
                Order.promised_at.is_not(None),
                Order.promised_at < now,
            )
            .limit(limit)
            .with_for_update(of=Shipment, skip_locked=True)
        )
    ).all()
    for shipment, order in rows:
        shipment.late_alerted_at = now
        await raise_alert(
            session,
            DELAYED_ORDER,
            f"Order {order.number} was promised by {(order.promised_at or now).isoformat()} and shipment "
            f"{shipment.tracking_number} ({shipment.carrier}) is still {shipment.status}.",
        )
    return len(rows) + await _alert_unshipped_past_ship_by(session, now, limit)


async def _alert_unshipped_past_ship_by(session: AsyncSession, now: datetime, limit: int) -> int:
    # An OPEN, held or in-progress fulfillment order has not left yet (a PENDING shipment
    # does not count as dispatched); CLOSED and CANCELLED ones are done.
    rows = (
        await session.execute(
            select(FulfillmentOrder, Order, Location.code)
            .join(Order, Order.id == FulfillmentOrder.order_id)
            .join(Location, Location.id == FulfillmentOrder.location_id)
            .where(
                FulfillmentOrder.status.in_(("OPEN", "ON_HOLD", "IN_PROGRESS")),
                FulfillmentOrder.late_alerted_at.is_(None),
                Order.promised_ship_by.is_not(None),
                Order.promised_ship_by < now,
                Order.status.in_(("ALLOCATED", "PARTIALLY_SHIPPED", "ON_HOLD")),
            )
            .limit(limit)
            .with_for_update(of=FulfillmentOrder, skip_locked=True)
        )
    ).all()
    for fulfillment_order, order, location_code in rows:
        fulfillment_order.late_alerted_at = now
        await raise_alert(
            session,
            DELAYED_ORDER,
            f"Order {order.number} was to be dispatched by {(order.promised_ship_by or now).isoformat()} and its "
            f"fulfillment order at {location_code} is still {fulfillment_order.status}: dispatch it "
            "(shipmentCreate, shipmentDispatch) or tell the customer.",
        )
    return len(rows)
