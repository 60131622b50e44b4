"""What a customer may see of one order without a token: its status and its parcels' tracking.

The customer proves it is their order with the phone or e-mail they gave (any
formatting: digits of a phone, e-mail in any case, plus-addressing ignored).
The answer has no name, no street and no phone, only the city. Failed attempts
are limited per order number, so numbers cannot be tried against guessed contacts.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Address, Customer, Order, Shipment, ShipmentEvent
from oms_graphql.domain.errors import DomainError

MAX_FAILED_ATTEMPTS = 5
ATTEMPT_WINDOW_SECONDS = 15 * 60


class TooManyAttempts(DomainError):
    code = "RATE_LIMITED"


@dataclass(frozen=True)
class TrackingEventView:
    code: str
    description: str | None
    location: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class TrackedShipment:
    carrier: str | None
    tracking_number: str | None
    status: str
    events: tuple[TrackingEventView, ...]


@dataclass(frozen=True)
class OrderTracking:
    number: str
    status: str
    placed_at: datetime
    promised_deliver_by: datetime | None
    city: str | None
    shipments: tuple[TrackedShipment, ...]


class _Attempts:
    """Failed look-ups per order number in the last window (per process)."""

    def __init__(self) -> None:
        self.failed: dict[str, deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def check(self, number: str) -> None:
        now = time.monotonic()
        with self.lock:
            recent = self.failed[number]
            while recent and recent[0] < now - ATTEMPT_WINDOW_SECONDS:
                recent.popleft()
            if len(recent) >= MAX_FAILED_ATTEMPTS:
                wait = int(recent[0] + ATTEMPT_WINDOW_SECONDS - now) + 1
                raise TooManyAttempts(f"Too many attempts for this order; try again in {wait} seconds.", ("contact",))

    def fail(self, number: str) -> None:
        with self.lock:
            self.failed[number].append(time.monotonic())


_attempts = _Attempts()


def _digits(phone: str | None) -> str:
    return "".join(ch for ch in phone or "" if ch.isdigit())


def _email(email: str | None) -> str:
    local, _, domain = (email or "").strip().lower().partition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if domain else ""


def contact_matches(contact: str, phones: list[str | None], emails: list[str | None]) -> bool:
    """The phone (its last 7+ digits, whatever the country prefix) or the e-mail of the order."""
    if "@" in contact:
        given = _email(contact)
        return bool(given) and any(given == _email(email) for email in emails)
    given = _digits(contact)
    if len(given) < 7:
        return False
    return any(
        (stored := _digits(phone)) and (stored.endswith(given) or given.endswith(stored)) and len(stored) >= 7
        for phone in phones
    )


async def order_tracking(session: AsyncSession, number: str, contact: str) -> OrderTracking | None:
    """The order's tracking when ``contact`` is its phone or e-mail, else None (counted as a failed try)."""
    _attempts.check(number)
    order = await session.scalar(select(Order).where(Order.number == number))
    address = await session.get(Address, order.shipping_address_id) if order else None
    customer = await session.get(Customer, order.customer_id) if order and order.customer_id else None
    phones = [address.phone if address else None, customer.phone if customer else None]
    emails = [address.email if address else None, customer.email if customer else None]
    if order is None or not contact_matches(contact, phones, emails):
        _attempts.fail(number)
        return None
    shipments = (
        await session.scalars(
            select(Shipment).where(Shipment.order_id == order.id, Shipment.status != "CANCELLED").order_by(Shipment.id)
        )
    ).all()
    events = (
        await session.scalars(
            select(ShipmentEvent)
            .where(ShipmentEvent.shipment_id.in_([shipment.id for shipment in shipments]))
            .order_by(ShipmentEvent.occurred_at)
        )
    ).all()
    return OrderTracking(
        number=order.number,
        status=order.status,
        placed_at=order.placed_at,
        promised_deliver_by=order.promised_at,
        city=address.city if address else None,
        shipments=tuple(
            TrackedShipment(
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                status=shipment.status,
                events=tuple(
                    TrackingEventView(event.code, event.description, event.location, event.occurred_at)
                    for event in events
                    if event.shipment_id == shipment.id
                ),
            )
            for shipment in shipments
        ),
    )
