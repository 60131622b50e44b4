"""Orders: creation, the status machine, payment, holds and cancellation."""

from __future__ import annotations

import enum
import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    CompoundSelect,
    Select,
    String,
    Table,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Address,
    Allocation,
    Channel,
    Hold,
    Location,
    Order,
    OrderEvent,
    OrderLine,
    OutboxEntry,
    Product,
    utcnow,
)
from oms_graphql.domain import limits
from oms_graphql.domain.customers import CustomerDetails, find_or_create_customer_id
from oms_graphql.domain.errors import DomainError, InvalidTransition, NotFound, Problems
from oms_graphql.domain.inventory import MovementReason, Reference, move_stock
from oms_graphql.domain.money import is_currency, round_money
from oms_graphql.domain.reports import request_refresh
from oms_graphql.events.outbox import note_outbox_written, record_event, request_job

# The tables the busy paths (order entry, payment) write with Core statements, past the unit of work.
ADDRESSES: Table = Address.__table__  # type: ignore[assignment]
ORDER_LINES: Table = OrderLine.__table__  # type: ignore[assignment]
ORDER_EVENTS: Table = OrderEvent.__table__  # type: ignore[assignment]
OUTBOX: Table = OutboxEntry.__table__  # type: ignore[assignment]


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    ON_HOLD = "ON_HOLD"
    BACKORDERED = "BACKORDERED"
    ALLOCATED = "ALLOCATED"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.CONFIRMED, S.ON_HOLD, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.ALLOCATED, S.BACKORDERED, S.ON_HOLD, S.CANCELLED}),
    S.BACKORDERED: frozenset({S.ALLOCATED, S.ON_HOLD, S.CANCELLED}),
    S.ALLOCATED: frozenset({S.PARTIALLY_SHIPPED, S.SHIPPED, S.BACKORDERED, S.ON_HOLD, S.CANCELLED}),
    S.PARTIALLY_SHIPPED: frozenset({S.SHIPPED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.COMPLETED}),
    S.DELIVERED: frozenset({S.COMPLETED}),
    # Releasing the last hold resumes where the order was (see release_holds).
    S.ON_HOLD: frozenset({S.PENDING, S.CONFIRMED, S.BACKORDERED, S.ALLOCATED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}

# Statuses whose reservations are still held (cancelling must release them).
HOLDS_STOCK = frozenset({S.ALLOCATED, S.ON_HOLD})


class HoldReason(enum.StrEnum):
    ADDRESS_INCOMPLETE = "ADDRESS_INCOMPLETE"
    UNMAPPED_SKU = "UNMAPPED_SKU"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    BUYER_NOTE = "BUYER_NOTE"
    RISK = "RISK"
    PRICE_ANOMALY = "PRICE_ANOMALY"
    REFUND_IN_PROGRESS = "REFUND_IN_PROGRESS"
    CHANNEL_HOLD = "CHANNEL_HOLD"
    DELIVERY_PROBLEM = "DELIVERY_PROBLEM"  # the carrier refused the shipment (address, service, size)
    MANUAL = "MANUAL"


def can_transition(current: str, target: OrderStatus) -> bool:
    return target in TRANSITIONS[OrderStatus(current)]


# --- order numbers ----------------------------------------------------------

# Crockford's base32 without I, L, O, U: read aloud over the phone without confusion.
_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# A day has 32⁶ ≈ 10⁹ numbers: a second draw is rare, a fifth one would mean the day is full.
NUMBER_DRAWS = 5


def new_order_number(now: datetime) -> str:
    """``YYMMDD-XXXXXX``: the day it was placed plus six random characters."""
    suffix = "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(6))
    return f"{now:%y%m%d}-{suffix}"


# --- creating orders --------------------------------------------------------


@dataclass(frozen=True)
class AddressDetails:
    country: str
    line1: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    region: str | None = None
    city: str | None = None
    district: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class LineDetails:
    quantity: int
    unit_price: Decimal
    sku: str | None = None
    discount: Decimal = Decimal("0")
    title: str | None = None
    channel_line_id: str | None = None
    channel_sku_id: str | None = None
    product_id: int | None = None  # set by the caller when it resolved the SKU itself
    refunded_quantity: int = 0


@dataclass(frozen=True)
class NewOrder:
    channel_code: str
    currency: str
    shipping_address: AddressDetails
    lines: list[LineDetails]
    external_id: str | None = None
    customer: CustomerDetails | None = None
    shipping_fee: Decimal = Decimal("0")
    discount: Decimal = Decimal("0")
    tax: Decimal = Decimal("0")
    delivery_option: str | None = None
    pickup_location_code: str | None = None
    paid: bool = False
    paid_at: datetime | None = None
    placed_at: datetime | None = None
    note: str | None = None
    promised_at: datetime | None = None  # delivery promised by then
    promised_ship_by: datetime | None = None  # dispatched by then (default: default_ship_by at payment)
    holds: list[tuple[HoldReason, str | None]] = field(default_factory=list)
    actor: str | None = None


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    discount: Decimal
    shipping_fee: Decimal
    tax: Decimal
    total: Decimal


def compute_totals(
    currency: str, lines: list[LineDetails], discount: Decimal, shipping_fee: Decimal, tax: Decimal
) -> Totals:
    subtotal = sum((line.quantity * line.unit_price - line.discount for line in lines), Decimal("0"))
    total = subtotal - discount + shipping_fee + tax
    return Totals(*(round_money(value, currency) for value in (subtotal, discount, shipping_fee, tax, total)))


def check_address(problems: Problems, path: tuple[str, ...], address: AddressDetails) -> None:
    if not address.country or len(address.country) != 2 or not address.country.isalpha():
        problems.add((*path, "country"), "country must be an ISO 3166-1 alpha-2 code such as CN or US.")
    problems.text((*path, "line1"), address.line1, 300, required=True)
    for name, limit in (
        ("name", 200),
        ("phone", 40),
        ("email", 254),
        ("region", 100),
        ("city", 100),
        ("district", 100),
        ("line2", 300),
        ("postalCode", 20),
    ):
        attribute = "postal_code" if name == "postalCode" else name
        problems.text((*path, name), getattr(address, attribute), limit)
    if address.latitude is not None and not -90 <= address.latitude <= 90:
        problems.add((*path, "latitude"), "latitude must be between -90 and 90.")
    if address.longitude is not None and not -180 <= address.longitude <= 180:
        problems.add((*path, "longitude"), "longitude must be between -180 and 180.")


def check_new_order(new: NewOrder) -> Problems:
    problems = Problems()
    if not is_currency(new.currency):
        problems.add(("currency",), "currency must be an ISO 4217 code such as CNY or USD.")
    if not new.lines:
        problems.add(("lines",), "An order needs at least one line.", "REQUIRED")
    for index, line in enumerate(new.lines):
        problems.positive(("lines", index, "quantity"), line.quantity)
        limits.check_units(problems, ("lines", index, "quantity"), line.quantity)
        problems.not_negative(("lines", index, "unitPrice"), line.unit_price)
        limits.check_amount(problems, ("lines", index, "unitPrice"), line.unit_price, new.currency, unit_price=True)
        limits.check_amount(problems, ("lines", index, "discount"), line.discount, new.currency, unit_price=True)
        if line.sku is not None:
            problems.text(("lines", index, "sku"), line.sku, 64, required=True)
        problems.not_negative(("lines", index, "discount"), line.discount)
        if line.discount > line.quantity * line.unit_price:
            problems.add(("lines", index, "discount"), "A line's discount cannot exceed its value.", "TOO_LARGE")
    for name, value in (("shippingFee", new.shipping_fee), ("discount", new.discount), ("tax", new.tax)):
        problems.not_negative((name,), value)
        limits.check_amount(problems, (name,), value, new.currency)
    if not problems.items:
        totals = compute_totals(new.currency, new.lines, new.discount, new.shipping_fee, new.tax)
        for name in ("subtotal", "total"):
            limits.check_total(problems, ("lines",), getattr(totals, name))
    problems.text(("externalId",), new.external_id, 100)
    problems.text(("note",), new.note, 2000)
    if new.customer:
        problems.text(("customer", "name"), new.customer.name, 200)
        problems.text(("customer", "phone"), new.customer.phone, 40)
        problems.text(("customer", "email"), new.customer.email, 254)
    check_address(problems, ("shippingAddress",), new.shipping_address)
    for name, moment in (
        ("placedAt", new.placed_at),
        ("promisedDeliverBy", new.promised_at),
        ("promisedShipBy", new.promised_ship_by),
    ):
        if moment is not None and moment.tzinfo is None:
            problems.add((name,), f"{name} has no time zone: give it in UTC (…Z) or with an offset.", "INVALID")
    if (
        new.promised_ship_by
        and new.promised_at
        and new.promised_ship_by.tzinfo
        and new.promised_at.tzinfo
        and new.promised_ship_by > new.promised_at
    ):
        problems.add(
            ("promisedShipBy",),
            "promisedShipBy is after promisedDeliverBy: the order must leave before its delivery is due.",
            "INVALID",
        )
    if new.delivery_option == "PICKUP" and not new.pickup_location_code:
        problems.add(("pickupLocationCode",), "A PICKUP order needs pickupLocationCode.", "REQUIRED")
    return problems


async def channel_by_code(session: AsyncSession, code: str, field: tuple[str, ...] = ("channelCode",)) -> Channel:
    channel = await session.scalar(select(Channel).where(Channel.code == code))
    if channel is None:
        raise _no_channel(code, field)
    return channel


def _no_channel(code: str, field: tuple[str, ...]) -> NotFound:
    return NotFound(f"No channel has code {code!r}. Create it with channelCreate first.", field)


async def existing_order(session: AsyncSession, channel_id: int, external_id: str) -> Order | None:
    return await session.scalar(select(Order).where(Order.channel_id == channel_id, Order.external_id == external_id))


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


# The busy paths' statements are built once: SQLAlchemy then skips their construction and
# reuses their cache key (memoised on the statement), and asyncpg its prepared statement.


@functools.cache
def _references_query(dialect: str, by_external_id: bool, products: bool, pickup: bool) -> CompoundSelect:
    def part(kind: str, id_: Any, key: Any, name: Any = None) -> Select[Any]:
        name = name if name is not None else cast(null(), String())
        return select(literal_column(f"'{kind}'").label("kind"), id_.label("id"), key.label("key"), name.label("name"))

    parts = [part("channel", Channel.id, Channel.code).where(Channel.code == bindparam("channel_code"))]
    if by_external_id:
        channel_id = select(Channel.id).where(Channel.code == bindparam("channel_code")).scalar_subquery()
        parts.append(
            part("order", Order.id, Order.number).where(
                Order.channel_id == channel_id, Order.external_id == bindparam("external_id")
            )
        )
    if products:
        # PostgreSQL: one statement text whatever the number of SKUs, so one prepared statement.
        wanted = (
            Product.sku == any_(bindparam("skus", type_=ARRAY(String())))
            if dialect == "postgresql"
            else Product.sku.in_(bindparam("skus", expanding=True))
        )
        parts.append(part("product", Product.id, Product.sku, Product.name).where(wanted))
    if pickup:
        parts.append(part("location", Location.id, Location.code).where(Location.code == bindparam("pickup_code")))
    return union_all(*parts)


@functools.cache
def _insert_order(dialect: str) -> Any:
    """An ORM-enabled ``INSERT … ON CONFLICT DO NOTHING RETURNING`` the order: a loaded,
    persistent object (callers go on changing it) with no unit of work. Nothing comes back
    when the (channel, external id) is stored already or the drawn number is taken."""
    insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert_into(Order)
        .on_conflict_do_nothing()
        .returning(Order)
        # Every column in the statement, None or not: one statement text, one prepared statement.
        .execution_options(render_nulls=True)
    )


@functools.cache
def _insert_event_and_outbox(outbox_rows: int) -> Any:
    """PostgreSQL: ``WITH event AS (INSERT INTO order_events …) INSERT INTO outbox … VALUES``
    ``outbox_rows`` rows; both stamped with the bind ``at``."""
    at = bindparam("at", type_=OUTBOX.c.created_at.type)
    columns = ("order_id", "kind", "from_status", "to_status", "message", "actor")
    event = insert(ORDER_EVENTS).values({**{name: bindparam(name) for name in columns}, "created_at": at})
    rows = [
        {
            "kind": bindparam(f"kind_{index}"),
            "topic": bindparam(f"topic_{index}"),
            "payload": bindparam(f"payload_{index}", type_=OUTBOX.c.payload.type),
            "created_at": at,
            "attempts": 0,
        }
        for index in range(outbox_rows)
    ]
    return insert(OUTBOX).values(rows).add_cte(event.cte("event"))


_INSERT_ADDRESS = insert(ADDRESSES).returning(ADDRESSES.c.id)
_DELETE_ADDRESS = delete(ADDRESSES).where(ADDRESSES.c.id == bindparam("address_id"))
_INSERT_LINES = insert(ORDER_LINES)
_INSERT_EVENT = insert(ORDER_EVENTS)
_INSERT_OUTBOX = insert(OUTBOX)


@dataclass
class _References:
    """What an order's codes stand for."""

    channel_id: int | None = None
    existing_order_id: int | None = None
    products: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # SKU → (id, name)
    pickup_location_id: int | None = None


async def _references(session: AsyncSession, new: NewOrder, skus: list[str]) -> _References:
    """The channel, the order already stored under the external id, the products and the pickup
    location: one UNION ALL, one round trip, instead of one query each."""
    query = _references_query(_dialect(session), bool(new.external_id), bool(skus), bool(new.pickup_location_code))
    params = {
        "channel_code": new.channel_code,
        "external_id": new.external_id,
        "skus": skus,
        "pickup_code": new.pickup_location_code,
    }
    found = _References()
    for kind, id_, key, name in await session.execute(query, params):
        if kind == "channel":
            found.channel_id = id_
        elif kind == "order":
            found.existing_order_id = id_
        elif kind == "product":
            found.products[key] = (id_, name)
        else:
            found.pickup_location_id = id_
    return found


def _line_row(
    order_id: int, number: int, line: LineDetails, products: dict[str, tuple[int, str | None]]
) -> dict[str, Any]:
    product_id, product_name = products.get(line.sku or "", (None, None))
    return {
        "order_id": order_id,
        "line_no": number,
        "product_id": line.product_id or product_id,
        "sku": line.sku,
        "channel_line_id": line.channel_line_id,
        "channel_sku_id": line.channel_sku_id,
        "title": line.title or product_name,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "discount": line.discount,
        "refunded_quantity": line.refunded_quantity,
    }


async def create_order(session: AsyncSession, new: NewOrder) -> tuple[Order, bool]:
    """Create an order; returns ``(order, created)``.

    The same ``(channel, external id)`` twice returns the existing order and
    creates nothing, so a retried request or a re-delivered channel order is
    harmless, also when both arrive at once.

    Order entry is the busiest write path (a promotion's burst of orders), so the rows are
    written with Core statements, a fixed number whatever the number of lines: one SELECT
    for every code, the customer's resolution (one statement on PostgreSQL), then one INSERT
    each for the address, the order (``RETURNING`` the row), the lines, the event and the
    outbox rows.
    """
    problems = check_new_order(new)
    problems.raise_if_any()
    skus = sorted({line.sku for line in new.lines if line.sku and line.product_id is None})
    found = await _references(session, new, skus)
    if found.channel_id is None:
        raise _no_channel(new.channel_code, ("channelCode",))
    if found.existing_order_id is not None:
        return await order_by_id(session, found.existing_order_id), False

    problems = Problems()
    for index, line in enumerate(new.lines):
        if line.sku and line.product_id is None and line.sku not in found.products:
            problems.add(("lines", index, "sku"), f"No product has SKU {line.sku!r}.", "NOT_FOUND")
    if new.pickup_location_code and found.pickup_location_id is None:
        problems.add(("pickupLocationCode",), f"No location has code {new.pickup_location_code!r}.", "NOT_FOUND")
    totals = compute_totals(new.currency, new.lines, new.discount, new.shipping_fee, new.tax)
    if totals.total < 0:
        problems.add(("discount",), "The discount is larger than the order's value.", "TOO_LARGE")
    problems.raise_if_any()

    now = utcnow()
    # A national phone number is read in the country the order ships to.
    buyer = (
        replace(new.customer, country=new.customer.country or new.shipping_address.country) if new.customer else None
    )
    customer_id = await find_or_create_customer_id(session, buyer) if buyer else None
    address = {key: getattr(new.shipping_address, key) for key in AddressDetails.__dataclass_fields__}
    address_id = await session.scalar(
        _INSERT_ADDRESS, {**address, "customer_id": customer_id, "country": new.shipping_address.country.upper()}
    )
    paid_at = (new.paid_at or now) if new.paid else None
    placed_at = new.placed_at or now
    values = {
        "number": new_order_number(placed_at),
        "channel_id": found.channel_id,
        "external_id": new.external_id,
        "status": S.CONFIRMED if new.paid else S.PENDING,
        "customer_id": customer_id,
        "shipping_address_id": address_id,
        "currency": new.currency,
        "subtotal": totals.subtotal,
        "discount": totals.discount,
        "shipping_fee": totals.shipping_fee,
        "tax": totals.tax,
        "total": totals.total,
        "delivery_option": new.delivery_option,
        "pickup_location_id": found.pickup_location_id,
        "note": new.note,
        "placed_at": placed_at,
        "paid_at": paid_at,
        "promised_at": new.promised_at,
        "promised_ship_by": new.promised_ship_by
        or (default_ship_by(new.delivery_option, paid_at) if paid_at else None),
    }
    # An ORM-enabled INSERT … RETURNING: the order comes back as a loaded, persistent object
    # (callers go on changing it) without the unit of work's bookkeeping.
    for _draw in range(NUMBER_DRAWS):
        order = await session.scalar(_insert_order(_dialect(session)), [values])
        if order is not None:
            break
        if new.external_id and (found_order := await existing_order(session, found.channel_id, new.external_id)):
            # Lost a race with a concurrent insert of the same channel order: that one stands.
            await session.execute(_DELETE_ADDRESS, {"address_id": address_id})
            return found_order, False
        values["number"] = new_order_number(placed_at)  # another order of the day has this number
    else:
        raise RuntimeError(f"No free order number in {NUMBER_DRAWS} draws: the day's numbers are running out.")
    await session.execute(
        _INSERT_LINES,
        [_line_row(order.id, number, line, found.products) for number, line in enumerate(new.lines, start=1)],
    )
    # A held order waits for its holds' release before it is allocated.
    jobs = [("allocate_order", {"order_id": order.id})] if order.status == S.CONFIRMED and not new.holds else []
    await _write_status_change(session, order, None, order.status, "Order created", new.actor, new.channel_code, jobs)
    for reason, note in new.holds:
        await place_hold(session, order, reason, note=note, actor=new.actor)
    return order, True


# --- status changes ---------------------------------------------------------


def _record_status(
    session: AsyncSession,
    order: Order,
    previous: str | None,
    current: str,
    message: str | None,
    actor: str | None,
    channel_code: str | None = None,
) -> None:
    session.add(
        OrderEvent(
            order_id=order.id,
            kind="STATUS_CHANGED",
            from_status=previous,
            to_status=current,
            message=message,
            actor=actor,
        )
    )
    _publish(session, order, "STATUS_CHANGED", previous, current, message, channel_code)


def _event_payload(
    order: Order, kind: str, previous: str | None, current: str, message: str | None, channel_code: str | None
) -> dict[str, Any]:
    """What ``orderEvents`` subscribers receive about a change of ``order``."""
    return {
        "orderId": order.id,
        "number": order.number,
        "channelId": order.channel_id,
        "channelCode": channel_code,
        "customerId": order.customer_id,
        "kind": kind,
        "fromStatus": previous,
        "status": current,
        "message": message,
        "at": utcnow().isoformat(),
    }


def _publish(
    session: AsyncSession,
    order: Order,
    kind: str,
    previous: str | None,
    current: str,
    message: str | None,
    channel_code: str | None = None,
) -> None:
    # Every change a report can see passes here: its figures follow through the outbox.
    request_refresh(session, order.id)
    record_event(session, "order", _event_payload(order, kind, previous, current, message, channel_code))


async def _write_status_change(
    session: AsyncSession,
    order: Order,
    previous: str | None,
    current: str,
    message: str | None,
    actor: str | None,
    channel_code: str | None,
    jobs: list[tuple[str, dict[str, Any]]],
) -> None:
    """:func:`_record_status` and then ``request_job`` for each of ``jobs``, written at once with
    Core INSERTs (the event; the outbox rows: one statement on PostgreSQL, two on SQLite) instead
    of through the unit of work: the busy paths (order entry, payment) use it."""
    event = {
        "order_id": order.id,
        "kind": "STATUS_CHANGED",
        "from_status": previous,
        "to_status": current,
        "message": message,
        "actor": actor,
    }
    payload = _event_payload(order, "STATUS_CHANGED", previous, current, message, channel_code)
    outbox = [{"kind": "event", "topic": "order", "payload": payload}]
    outbox += [{"kind": "job", "topic": actor_name, "payload": kwargs} for actor_name, kwargs in jobs]
    if _dialect(session) == "postgresql":
        # One round trip: the event's INSERT as a data-modifying CTE of the outbox INSERT.
        params = {f"{name}_{index}": value for index, row in enumerate(outbox) for name, value in row.items()}
        await session.execute(_insert_event_and_outbox(len(outbox)), {**event, **params, "at": utcnow()})
    else:
        await session.execute(_INSERT_EVENT, event)
        await session.execute(_INSERT_OUTBOX, outbox)
    note_outbox_written(session)
    request_refresh(session, order.id)


def note_event(session: AsyncSession, order: Order, kind: str, message: str, actor: str | None) -> None:
    """Something happened to the order without changing its status (a return, a refund): in its
    history (``Order.events``) and on ``orderEvents`` with this ``kind``."""
    session.add(OrderEvent(order_id=order.id, kind=kind, message=message[:1000], actor=actor))
    _publish(session, order, kind, order.status, order.status, message)


def set_status(
    session: AsyncSession,
    order: Order,
    target: OrderStatus,
    message: str | None = None,
    actor: str | None = None,
) -> None:
    """Move ``order`` to ``target`` or refuse with INVALID_TRANSITION (the order unchanged)."""
    if order.status == target:
        return
    if not can_transition(order.status, target):
        raise InvalidTransition(f"Order {order.number} is {order.status}; it cannot become {target}.", ("id",))
    previous = order.status
    order.status = target
    _record_status(session, order, previous, target, message, actor)


async def set_statuses(
    session: AsyncSession, orders: Sequence[tuple[Order, str | None]], target: OrderStatus, actor: str | None = None
) -> None:
    """:func:`set_status` for many orders, each with its message: one UPDATE for all of them.

    Every transition is checked first, so one refused leaves every order unchanged.
    Their history rows and "order" events are added as :func:`set_status` adds them
    (the session writes each kind in one multi-row insert).
    """
    moving = [(order, message) for order, message in orders if order.status != target]
    for order, _message in moving:
        if not can_transition(order.status, target):
            raise InvalidTransition(f"Order {order.number} is {order.status}; it cannot become {target}.", ("id",))
    if not moving:
        return
    previous = {order.id: order.status for order, _message in moving}
    # "evaluate" sets the status of the loaded orders too, without a second UPDATE at flush.
    await session.execute(
        update(Order)
        .where(Order.id.in_(sorted(previous)))
        .values(status=target, updated_at=utcnow())
        .execution_options(synchronize_session="evaluate")
    )
    for order, message in moving:
        _record_status(session, order, previous[order.id], target, message, actor)


# A shipment cancelled at the carrier before collection takes the order back a step.
SHIPMENT_UNDONE = {
    S.SHIPPED: frozenset({S.PARTIALLY_SHIPPED, S.ALLOCATED}),
    S.PARTIALLY_SHIPPED: frozenset({S.ALLOCATED}),
}


def step_back_for_cancelled_shipment(
    session: AsyncSession, order: Order, target: OrderStatus, message: str, actor: str | None
) -> None:
    """SHIPPED → PARTIALLY_SHIPPED / ALLOCATED, or PARTIALLY_SHIPPED → ALLOCATED: a dispatched
    shipment never left (cancelled at its carrier). Only that path may move an order back."""
    if order.status == target:
        return
    if target not in SHIPMENT_UNDONE.get(OrderStatus(order.status), frozenset()):
        raise InvalidTransition(f"Order {order.number} is {order.status}; it cannot go back to {target}.", ("id",))
    previous = order.status
    order.status = target
    _record_status(session, order, previous, target, message, actor)


async def order_by_id(session: AsyncSession, order_id: int, *, lock: bool = False) -> Order:
    query = select(Order).where(Order.id == order_id)
    if lock:
        query = query.with_for_update()
    order = await session.scalar(query)
    if order is None:
        raise NotFound("No order has this id.", ("id",))
    return order


async def confirm_payment(
    session: AsyncSession, order: Order, paid_at: datetime | None = None, actor: str | None = None
) -> Order:
    if order.paid_at is not None and order.status != S.PENDING:
        if order.status == S.CANCELLED:
            raise InvalidTransition(f"Order {order.number} is CANCELLED; it cannot be paid.", ("id",))
        return order  # already paid: confirming again changes nothing
    if order.status == S.ON_HOLD:
        order.paid_at = paid_at or utcnow()
        promise_ship_by(order)
        if order.resume_status == S.PENDING:
            order.resume_status = S.CONFIRMED
        return order
    set_status(session, order, S.CONFIRMED, "Payment confirmed", actor)
    order.paid_at = paid_at or utcnow()
    promise_ship_by(order)
    request_job(session, "allocate_order", order_id=order.id)
    return order


SAME_DAY = "SAME_DAY"  # the delivery option whose order leaves on the day it was paid


@functools.cache
def _confirm_pending() -> Any:
    """PENDING → CONFIRMED in one guarded ``UPDATE … RETURNING`` the order (ORM-enabled: a
    loaded object, no unit of work); no row when the order is not PENDING (or not there)."""
    moment = Order.promised_ship_by.type
    ship_by = case(
        (Order.delivery_option == SAME_DAY, bindparam("same_day_ship_by", type_=moment)),
        else_=bindparam("ship_by", type_=moment),
    )
    return (
        update(Order)
        .where(Order.id == bindparam("order_id"), Order.status == S.PENDING)
        .values(
            status=S.CONFIRMED,
            paid_at=bindparam("paid_at", type_=moment),
            promised_ship_by=func.coalesce(Order.promised_ship_by, ship_by),
        )
        .returning(Order)
        .execution_options(synchronize_session=False)
    )


async def confirm_payment_of(
    session: AsyncSession, order_id: int, paid_at: datetime | None = None, actor: str | None = None
) -> Order:
    """:func:`confirm_payment` of the order with this id (``orderConfirmPayment``).

    The usual case, a PENDING order, is one guarded UPDATE and the event's two INSERTs; a
    concurrent confirmation waits for the row and then finds it no longer PENDING, so only one
    of them records the change. Any other status goes through :func:`confirm_payment`.
    """
    paid_at = paid_at or utcnow()
    order = await session.scalar(
        _confirm_pending(),
        {
            "order_id": order_id,
            "paid_at": paid_at,
            "same_day_ship_by": default_ship_by(SAME_DAY, paid_at),
            "ship_by": default_ship_by(None, paid_at),
        },
    )
    if order is None:
        return await confirm_payment(session, await order_by_id(session, order_id, lock=True), paid_at, actor)
    jobs = [("allocate_order", {"order_id": order.id})]
    await _write_status_change(session, order, S.PENDING, S.CONFIRMED, "Payment confirmed", actor, None, jobs)
    return order


def default_ship_by(delivery_option: str | None, paid_at: datetime) -> datetime:
    """When an order paid at ``paid_at`` must be dispatched if nobody gave a date (its SLA).

    A SAME_DAY order leaves on the day it was paid (by 23:59:59 UTC of that day); every
    other kind (STANDARD, EXPRESS, PICKUP, or none asked for) within 24 hours of payment.
    """
    if delivery_option == SAME_DAY:
        return paid_at.replace(hour=23, minute=59, second=59, microsecond=0)
    return paid_at + timedelta(days=1)


def promise_ship_by(order: Order) -> None:
    """Give a paid order its default ship-by date (:func:`default_ship_by`) unless it has one."""
    if order.promised_ship_by is None and order.paid_at is not None:
        order.promised_ship_by = default_ship_by(order.delivery_option, order.paid_at)


async def open_holds(session: AsyncSession, order_id: int) -> list[Hold]:
    return list(
        (
            await session.scalars(
                select(Hold)
                # A fulfillment order's own holds stop its dispatch only, not the order.
                .where(Hold.order_id == order_id, Hold.fulfillment_order_id.is_(None), Hold.released_at.is_(None))
                .order_by(Hold.id)
            )
        ).all()
    )


async def place_hold(
    session: AsyncSession,
    order: Order,
    reason: HoldReason,
    *,
    note: str | None = None,
    actor: str | None = None,
    deadline: datetime | None = None,
) -> Hold:
    """Put a typed hold on the order; the order is ON_HOLD while any hold is open."""
    if order.status != S.ON_HOLD and not can_transition(order.status, S.ON_HOLD):
        raise InvalidTransition(f"Order {order.number} is {order.status}; it can no longer be held.", ("id",))
    for hold in await open_holds(session, order.id):
        if hold.reason == reason:
            return hold  # one open hold per reason: holding twice changes nothing
    hold = Hold(order_id=order.id, reason=reason.value, note=note, raised_by=actor, deadline=deadline)
    session.add(hold)
    if order.status != S.ON_HOLD:
        order.resume_status = order.status
        set_status(session, order, S.ON_HOLD, f"Held: {reason.value}" + (f" ({note})" if note else ""), actor)
    await session.flush()
    return hold


async def release_holds(
    session: AsyncSession,
    order: Order,
    *,
    reason: HoldReason | None = None,
    actor: str | None = None,
) -> Order:
    """Release the open holds (all, or those of one reason); the last one resumes the flow."""
    holds = await open_holds(session, order.id)
    if order.status != S.ON_HOLD or not holds:
        raise InvalidTransition(f"Order {order.number} is {order.status}, not ON_HOLD.", ("id",))
    released = [hold for hold in holds if reason is None or hold.reason == reason]
    if not released:
        raise DomainError(f"Order {order.number} has no open {reason} hold.", ("reason",), "NOT_FOUND")
    now = utcnow()
    for hold in released:
        hold.released_at, hold.released_by = now, actor
    if len(released) < len(holds):
        return order
    resume = OrderStatus(order.resume_status or S.PENDING)
    if resume == S.PENDING and order.paid_at is not None:
        resume = S.CONFIRMED
    order.resume_status = None
    set_status(session, order, resume, "All holds released", actor)
    if resume in (S.CONFIRMED, S.BACKORDERED):
        request_job(session, "allocate_order", order_id=order.id)
    return order


async def cancel_order(session: AsyncSession, order: Order, reason: str | None, actor: str | None) -> Order:
    """Cancel the order and give its reserved stock back."""
    if not can_transition(order.status, S.CANCELLED):
        raise InvalidTransition(
            f"Order {order.number} is {order.status}; only orders not yet shipped can be cancelled.", ("id",)
        )
    await release_reservations(session, order, actor=actor)
    for hold in await open_holds(session, order.id):
        hold.released_at, hold.released_by = utcnow(), actor
    order.cancelled_at = utcnow()
    order.resume_status = None
    set_status(session, order, S.CANCELLED, reason or "Cancelled", actor)
    return order


async def release_reservations(session: AsyncSession, order: Order, actor: str | None = None) -> int:
    """Release every unshipped reservation of the order; return the units released."""
    allocations = (
        await session.scalars(
            select(Allocation).where(Allocation.order_id == order.id, Allocation.status == "RESERVED")
        )
    ).all()
    released = 0
    products_freed: set[int] = set()
    for allocation in allocations:
        units = allocation.quantity - allocation.shipped_quantity
        if units > 0:
            product = await session.get(Product, allocation.product_id)
            location = await session.get(Location, allocation.location_id)
            assert product is not None and location is not None
            figures = await move_stock(
                session,
                product=product,
                location=location,
                reason=MovementReason.RELEASE,
                reserved=-units,
                reference=Reference("ORDER", str(order.id), order.number, actor),
            )
            if figures is None:
                raise DomainError("The ledger refused to release a reservation; run `oms stock verify`.")
            released += units
            products_freed.add(allocation.product_id)
        allocation.status = "RELEASED"
    for product_id in sorted(products_freed):
        request_job(session, "allocate_backorders", product_id=product_id)
    return released
