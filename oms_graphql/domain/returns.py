"""Returns and refunds: shipped units come back, are inspected, restocked or written off, and paid back.

A return moves REQUESTED → APPROVED → RECEIVED → REFUNDED → CLOSED, or REQUESTED →
REJECTED; anything else is refused (INVALID_TRANSITION). Its rules:

- **Requesting.** By order line (``lineNo``): never more units than were shipped
  (dispatched shipments) minus those already on other returns (open ones count in
  full, received ones by the units that came back). Staff, or the order's own
  customer, may request.
- **Receiving**, once per return: per line, RESELLABLE units go back on hand at the
  chosen location (``restockLocationCode``, default the location the line shipped
  from) as a RETURN movement; DAMAGED units come back too and are written off there
  at once (RETURN then WRITE_OFF, so the ledger shows both); MISSING units never
  arrived and move no stock. Units of the return not listed did not come back.
- **Refunding.** By default what the customer actually paid for the units that came
  back (RESELLABLE and DAMAGED) and that this return has not refunded yet: each line's
  share of the order's total — its own amount after line discount, plus its share,
  by amount, of the order discount, shipping fee and tax — cut into units so that
  returning every unit gives back exactly the order's total, to the cent (see
  :func:`paid_for_units`). A refund may be any positive amount up to what the order
  was paid minus its earlier refunds; several partial refunds are allowed.
- **Order effects.** ``OrderLine.returned_quantity`` counts units back; the order's
  ``refunded_total`` sums its refunds; every step is in the order's history (and on
  ``orderEvents``). Once every unit shipped has come back and no return is still
  open or awaiting its refund, a SHIPPED or DELIVERED order becomes COMPLETED
  (returns stay visible on it).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Address,
    Location,
    Order,
    OrderLine,
    Product,
    Refund,
    Return,
    ReturnLine,
    Shipment,
    ShipmentLine,
    utcnow,
)
from oms_graphql.domain import limits
from oms_graphql.domain.allocation import allocate_order
from oms_graphql.domain.channels import raise_alert
from oms_graphql.domain.errors import DomainError, FieldProblem, InvalidInput, InvalidTransition, NotFound, Problems
from oms_graphql.domain.inventory import Reference, location_by_code, restock, write_off
from oms_graphql.domain.money import minor_units, round_money
from oms_graphql.domain.orders import (
    AddressDetails,
    LineDetails,
    NewOrder,
    OrderStatus,
    create_order,
    note_event,
    order_by_id,
    set_status,
)
from oms_graphql.plugins.contract import LineRefund, RefundStatus


class ReturnStatus(enum.StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    RECEIVED = "RECEIVED"
    REFUNDED = "REFUNDED"
    CLOSED = "CLOSED"


class ReturnReason(enum.StrEnum):
    DAMAGED = "DAMAGED"
    DEFECTIVE = "DEFECTIVE"
    WRONG_ITEM = "WRONG_ITEM"
    NOT_AS_DESCRIBED = "NOT_AS_DESCRIBED"
    SIZE_FIT = "SIZE_FIT"
    CHANGED_MIND = "CHANGED_MIND"
    LATE = "LATE"
    OTHER = "OTHER"


class ReturnCondition(enum.StrEnum):
    RESELLABLE = "RESELLABLE"
    DAMAGED = "DAMAGED"
    MISSING = "MISSING"


S = ReturnStatus
TRANSITIONS: dict[ReturnStatus, frozenset[ReturnStatus]] = {
    S.REQUESTED: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.RECEIVED, S.CLOSED}),  # CLOSED: withdrawn before anything came back
    S.RECEIVED: frozenset({S.REFUNDED, S.CLOSED}),
    S.REFUNDED: frozenset({S.REFUNDED, S.CLOSED}),  # a further partial refund stays REFUNDED
    S.REJECTED: frozenset(),
    S.CLOSED: frozenset(),
}
OPEN = frozenset({S.REQUESTED, S.APPROVED})
# Statuses an order's lines can be returned from: something was shipped.
RETURNABLE_ORDERS = frozenset(
    {OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED}
)
SHIPPED_STATUSES = ("DISPATCHED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED", "FAILED_ATTEMPT", "EXCEPTION")


@dataclass(frozen=True)
class LineRequest:
    line_no: int
    quantity: int
    reason: str


@dataclass(frozen=True)
class LineReceipt:
    line_no: int
    quantity: int
    condition: str
    restock_location_code: str | None = None


# --- money ----------------------------------------------------------------------


def kept(line: OrderLine) -> int:
    """The units of a line the customer still pays for (not refunded at the channel before shipping)."""
    return line.quantity - line.refunded_quantity


def line_values(order: Order, lines: Sequence[OrderLine]) -> dict[int, Decimal]:
    """What the customer paid for each line (by id): the order's total cut by line amount, to the cent.

    Over the units not refunded before shipping (as the order's total is), each line's
    amount after its own discount (which shrinks with its units), plus a share of the rest of the total
    (order discount, shipping fee, tax) in proportion to that amount (by quantity when
    every line is free); rounded to the minor unit with the remainders given to the
    largest fractions, so the lines add up to the order's total exactly.
    """
    amounts = {line.id: kept(line) * line.unit_price - line.discount * kept(line) / line.quantity for line in lines}
    base = sum(amounts.values(), Decimal(0))
    weights = amounts if base > 0 else {line.id: Decimal(kept(line)) for line in lines}
    weight_total = sum(weights.values(), Decimal(0)) or Decimal(1)
    extra = order.total - base
    step = Decimal(1).scaleb(-minor_units(order.currency))
    exact = {line_id: extra * weights[line_id] / weight_total for line_id in amounts}
    shares = {i: (value / step).to_integral_value(rounding=ROUND_FLOOR) * step for i, value in exact.items()}
    left = int(((extra - sum(shares.values(), Decimal(0))) / step).to_integral_value())
    for line_id in sorted(exact, key=lambda i: (shares[i] - exact[i], i))[:left]:
        shares[line_id] += step
    return {line_id: amounts[line_id] + shares[line_id] for line_id in amounts}


def paid_for_units(line_value: Decimal, quantity: int, units: int, currency: str) -> Decimal:
    """What the first ``units`` of a line of ``quantity`` units cost the customer, out of ``line_value``.

    Cumulative, so the refunds of a line's returns add up to its value exactly: the
    k-th returned unit is worth ``paid_for_units(k) − paid_for_units(k − 1)``.
    """
    if units >= quantity:
        return line_value
    exact = line_value * units / quantity
    return exact.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


# --- reading ----------------------------------------------------------------------


async def return_by_id(session: AsyncSession, return_id: int, *, lock: bool = False) -> Return:
    query = select(Return).where(Return.id == return_id)
    found = await session.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound("No return has this id.", ("id",))
    return found


async def _lines_of(session: AsyncSession, order_id: int) -> list[OrderLine]:
    return list((await session.scalars(select(OrderLine).where(OrderLine.order_id == order_id))).all())


async def shipped_by_line(session: AsyncSession, order: Order) -> dict[int, int]:
    """Units of each order line on dispatched, not cancelled, shipments.

    An order the channel reports shipped or finished outside the OMS has no shipments
    here: all its units not refunded count as shipped.
    """
    rows = (
        await session.execute(
            select(ShipmentLine.order_line_id, func.sum(ShipmentLine.quantity), func.count())
            .join(Shipment, Shipment.id == ShipmentLine.shipment_id)
            .where(Shipment.order_id == order.id, Shipment.status.in_(SHIPPED_STATUSES))
            .group_by(ShipmentLine.order_line_id)
        )
    ).all()
    outside = order.status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED)
    any_shipment = select(func.count()).select_from(Shipment).where(Shipment.order_id == order.id)
    if not rows and outside and not await session.scalar(any_shipment):
        return {line.id: line.quantity - line.refunded_quantity for line in await _lines_of(session, order.id)}
    return {line_id: int(units) for line_id, units, _count in rows}


async def _on_returns(session: AsyncSession, order_id: int, excluding: int | None = None) -> dict[int, int]:
    """Units of each line already on returns: open ones in full, received ones by what came back."""
    rows = await session.execute(
        select(ReturnLine, Return.status)
        .join(Return, Return.id == ReturnLine.return_id)
        .where(Return.order_id == order_id, Return.status != S.REJECTED, Return.id != (excluding or 0))
    )
    taken: dict[int, int] = {}
    for line, status in rows:
        units = line.quantity if status in OPEN else line.resellable_quantity + line.damaged_quantity
        taken[line.order_line_id] = taken.get(line.order_line_id, 0) + units
    return taken


# --- the steps -------------------------------------------------------------------


async def request_return(
    session: AsyncSession,
    order_id: int,
    lines: Sequence[LineRequest],
    *,
    note: str | None = None,
    actor: str | None = None,
    external_id: str | None = None,
) -> Return:
    order = await order_by_id(session, order_id, lock=True)
    problems = Problems()
    problems.text(("note",), note, 2000)
    if not lines:
        problems.add(("lines",), "A return needs at least one line.", "REQUIRED")
    if order.status not in RETURNABLE_ORDERS:
        raise InvalidTransition(
            f"Order {order.number} is {order.status}; only shipped units can be returned.", ("orderId",)
        )
    by_no = {line.line_no: line for line in await _lines_of(session, order.id)}
    shipped = await shipped_by_line(session, order)
    taken = await _on_returns(session, order.id)
    seen: set[int] = set()
    for index, wanted in enumerate(lines):
        path = ("lines", index)
        line = by_no.get(wanted.line_no)
        if line is None:
            problems.add((*path, "lineNo"), f"Order {order.number} has no line {wanted.line_no}.", "NOT_FOUND")
            continue
        if wanted.line_no in seen:
            problems.add((*path, "lineNo"), f"Line {wanted.line_no} is listed twice.", "DUPLICATE")
        seen.add(wanted.line_no)
        if wanted.reason not in ReturnReason.__members__:
            problems.add((*path, "reason"), f"reason must be one of {', '.join(ReturnReason)}.")
        problems.positive((*path, "quantity"), wanted.quantity)
        can = shipped.get(line.id, 0) - taken.get(line.id, 0)
        if wanted.quantity > can:
            problems.add(
                (*path, "quantity"),
                f"Line {line.line_no} ({line.sku}) can return {max(can, 0)}: {shipped.get(line.id, 0)} shipped, "
                f"{taken.get(line.id, 0)} already on returns.",
                "TOO_MANY",
            )
    problems.raise_if_any()
    if external_id and await session.scalar(
        select(Return.id).where(Return.order_id == order.id, Return.external_id == external_id)
    ):
        raise DomainError(f"A return for {external_id!r} already exists on this order.", ("externalId",), "DUPLICATE")
    count = await session.scalar(select(func.count()).select_from(Return).where(Return.order_id == order.id))
    row = Return(
        number=f"{order.number}-R{(count or 0) + 1}",
        order_id=order.id,
        status=S.REQUESTED,
        note=note,
        external_id=external_id,
        refund_total=Decimal(0),
        requested_by=actor,
    )
    session.add(row)
    await session.flush()
    session.add_all(
        ReturnLine(
            return_id=row.id,
            order_line_id=by_no[wanted.line_no].id,
            quantity=wanted.quantity,
            reason=wanted.reason,
            resellable_quantity=0,
            damaged_quantity=0,
            missing_quantity=0,
        )
        for wanted in lines
    )
    units = sum(wanted.quantity for wanted in lines)
    note_event(session, order, "RETURN_REQUESTED", f"Return {row.number}: {units} unit(s) requested", actor)
    await session.flush()
    return row


def _move(row: Return, target: ReturnStatus) -> None:
    if target not in TRANSITIONS[ReturnStatus(row.status)]:
        raise InvalidTransition(f"Return {row.number} is {row.status}; it cannot become {target}.", ("id",))
    row.status = target


async def approve_return(session: AsyncSession, return_id: int, actor: str | None) -> Return:
    row = await return_by_id(session, return_id, lock=True)
    _move(row, S.APPROVED)
    order = await order_by_id(session, row.order_id)
    note_event(session, order, "RETURN_APPROVED", f"Return {row.number} approved", actor)
    return row


async def reject_return(session: AsyncSession, return_id: int, reason: str, actor: str | None) -> Return:
    problems = Problems()
    problems.text(("reason",), reason, 1000, required=True)
    problems.raise_if_any()
    row = await return_by_id(session, return_id, lock=True)
    _move(row, S.REJECTED)
    row.reject_reason = reason
    order = await order_by_id(session, row.order_id)
    note_event(session, order, "RETURN_REJECTED", f"Return {row.number} rejected: {reason}", actor)
    return row


async def _shipped_from(session: AsyncSession, order_line_id: int) -> int | None:
    return await session.scalar(
        select(Shipment.location_id)
        .join(ShipmentLine, ShipmentLine.shipment_id == Shipment.id)
        .where(ShipmentLine.order_line_id == order_line_id, Shipment.status.in_(SHIPPED_STATUSES))
        .order_by(Shipment.id)
    )


async def receive_return(
    session: AsyncSession, return_id: int, receipts: Sequence[LineReceipt], actor: str | None
) -> Return:
    row = await return_by_id(session, return_id, lock=True)
    if row.status != S.APPROVED:
        hint = " It was received already." if row.status in (S.RECEIVED, S.REFUNDED, S.CLOSED) else ""
        raise InvalidTransition(
            f"Return {row.number} is {row.status}; only an APPROVED one is received.{hint}", ("id",)
        )
    order = await order_by_id(session, row.order_id, lock=True)
    order_lines = {line.id: line for line in await _lines_of(session, order.id)}
    return_lines = {
        order_lines[line.order_line_id].line_no: line
        for line in (await session.scalars(select(ReturnLine).where(ReturnLine.return_id == row.id))).all()
    }
    problems = Problems()
    if not receipts:
        problems.add(("lines",), "Say what came back: at least one line.", "REQUIRED")
    counted: dict[int, int] = {}
    locations: dict[int, Location] = {}
    for index, receipt in enumerate(receipts):
        path = ("lines", index)
        line = return_lines.get(receipt.line_no)
        if line is None:
            problems.add((*path, "lineNo"), f"Return {row.number} has no line {receipt.line_no}.", "NOT_FOUND")
            continue
        if receipt.condition not in ReturnCondition.__members__:
            problems.add((*path, "condition"), f"condition must be one of {', '.join(ReturnCondition)}.")
        problems.positive((*path, "quantity"), receipt.quantity)
        counted[receipt.line_no] = counted.get(receipt.line_no, 0) + receipt.quantity
        if counted[receipt.line_no] > line.quantity:
            problems.add(
                (*path, "quantity"),
                f"Line {receipt.line_no}: {counted[receipt.line_no]} received, but the return has {line.quantity}.",
                "TOO_MANY",
            )
        if receipt.restock_location_code and receipt.condition != ReturnCondition.MISSING:
            try:
                field = ("lines", str(index), "restockLocationCode")
                locations[index] = await location_by_code(session, receipt.restock_location_code, field)
            except NotFound as error:
                problems.add(error.field or path, error.message, error.code)
    problems.raise_if_any()
    reference = Reference("RETURN", str(row.id), row.number, actor)
    for index, receipt in enumerate(receipts):
        line = return_lines[receipt.line_no]
        order_line = order_lines[line.order_line_id]
        if receipt.condition == ReturnCondition.MISSING:
            line.missing_quantity += receipt.quantity
            continue
        location: Location | None = locations.get(index)
        if location is None:
            location_id = line.restock_location_id or await _shipped_from(session, order_line.id)
            location = await session.get(Location, location_id) if location_id else None
        if location is None or order_line.product_id is None:
            raise DomainError(
                f"Line {receipt.line_no}: say where the units go (restockLocationCode).",
                ("lines", str(index), "restockLocationCode"),
                "REQUIRED",
            )
        product = await session.get(Product, order_line.product_id)
        assert product is not None
        units = receipt.quantity
        await restock(session, sku=product.sku, location_code=location.code, quantity=units, reference=reference)
        if receipt.condition == ReturnCondition.DAMAGED:
            damaged = Reference("RETURN", str(row.id), f"{row.number}: damaged on return", actor)
            await write_off(session, sku=product.sku, location_code=location.code, quantity=units, reference=damaged)
            line.damaged_quantity += receipt.quantity
        else:
            line.resellable_quantity += receipt.quantity
        line.restock_location_id = location.id
        order_line.returned_quantity += receipt.quantity
    _move(row, S.RECEIVED)
    row.received_at = utcnow()
    await session.flush()
    if row.refund_total > 0 and await refund_due(session, row) == 0:
        _move(row, S.REFUNDED)  # the channel paid the buyer back before the goods arrived
    back = sum(r.quantity for r in receipts if r.condition != ReturnCondition.MISSING)
    missing = sum(r.quantity for r in receipts if r.condition == ReturnCondition.MISSING)
    note_event(
        session,
        order,
        "RETURN_RECEIVED",
        f"Return {row.number} received: {back} unit(s) back" + (f", {missing} missing" if missing else ""),
        actor,
    )
    await session.flush()
    await _complete_if_fully_returned(session, order, actor)
    return row


async def refund_due(session: AsyncSession, row: Return) -> Decimal:
    """What the units this return brought back were paid, less what it refunded already."""
    order = await order_by_id(session, row.order_id)
    order_lines = await _lines_of(session, order.id)
    values = line_values(order, order_lines)
    quantities = {line.id: kept(line) for line in order_lines}
    due = Decimal(0)
    for return_line in (await session.scalars(select(ReturnLine).where(ReturnLine.return_id == row.id))).all():
        back = return_line.resellable_quantity + return_line.damaged_quantity
        if not back:
            continue
        before = await _back_before(session, return_line)
        line_id, quantity = return_line.order_line_id, quantities[return_line.order_line_id]
        due += paid_for_units(values[line_id], quantity, before + back, order.currency) - paid_for_units(
            values[line_id], quantity, before, order.currency
        )
    return max(Decimal(0), round_money(due - row.refund_total, order.currency))


async def _back_before(session: AsyncSession, return_line: ReturnLine) -> int:
    """Units of the same order line that came back on earlier returns."""
    units = await session.scalar(
        select(func.coalesce(func.sum(ReturnLine.resellable_quantity + ReturnLine.damaged_quantity), 0)).where(
            ReturnLine.order_line_id == return_line.order_line_id, ReturnLine.return_id < return_line.return_id
        )
    )
    return int(units or 0)


async def refund_return(
    session: AsyncSession, return_id: int, amount: Decimal | None, actor: str | None
) -> tuple[Return, Refund]:
    row = await return_by_id(session, return_id, lock=True)
    if row.status not in (S.RECEIVED, S.REFUNDED):
        raise InvalidTransition(
            f"Return {row.number} is {row.status}; a return is refunded once it is RECEIVED.", ("id",)
        )
    order = await order_by_id(session, row.order_id, lock=True)
    refundable = round_money(order.total - order.refunded_total, order.currency)
    problems = Problems()
    limits.check_amount(problems, ("amount",), amount, order.currency)
    problems.raise_if_any()  # before rounding: 1e999 cannot be rounded to the cent
    value = round_money(amount, order.currency) if amount is not None else await refund_due(session, row)
    if amount is not None and amount != value:
        problems.add(("amount",), f"amount has more decimals than {order.currency} allows.")
    if value <= 0:
        problems.add(
            ("amount",),
            "Nothing is due on this return (no units came back, or it is refunded already); give an amount.",
            "NOTHING_TO_REFUND" if amount is None else "INVALID",
        )
    elif value > refundable:
        problems.add(
            ("amount",),
            f"{value} {order.currency} is more than the {refundable} {order.currency} paid and not yet refunded.",
            "TOO_MUCH",
        )
    problems.raise_if_any()
    refund = Refund(order_id=order.id, return_id=row.id, amount=value, currency=order.currency, actor=actor)
    session.add(refund)
    row.refund_total = round_money(row.refund_total + value, order.currency)
    order.refunded_total = round_money(order.refunded_total + value, order.currency)
    _move(row, S.REFUNDED)
    note_event(session, order, "REFUNDED", f"Return {row.number}: refunded {value} {order.currency}", actor)
    await session.flush()
    await _complete_if_fully_returned(session, order, actor)
    return row, refund


async def close_return(session: AsyncSession, return_id: int, actor: str | None) -> Return:
    row = await return_by_id(session, return_id, lock=True)
    _move(row, S.CLOSED)
    order = await order_by_id(session, row.order_id, lock=True)
    note_event(session, order, "RETURN_CLOSED", f"Return {row.number} closed", actor)
    await session.flush()
    await _complete_if_fully_returned(session, order, actor)
    return row


async def _complete_if_fully_returned(session: AsyncSession, order: Order, actor: str | None) -> None:
    if order.status not in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
        return
    shipped = await shipped_by_line(session, order)
    lines = await _lines_of(session, order.id)
    if not shipped or any(line.returned_quantity < shipped.get(line.id, 0) for line in lines):
        return
    waiting = await session.scalar(
        select(func.count())
        .select_from(Return)
        .where(Return.order_id == order.id, Return.status.in_((S.REQUESTED, S.APPROVED, S.RECEIVED)))
    )
    if not waiting:
        set_status(session, order, OrderStatus.COMPLETED, "Every shipped unit came back", actor)


# --- exchanges -------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    return_: Return
    replacement: Order
    price_difference: Decimal  # replacement total − what the returned units were paid


async def create_exchange(
    session: AsyncSession,
    order_id: int,
    return_lines: Sequence[LineRequest],
    new_lines: Sequence[LineDetails],
    actor: str | None,
) -> Exchange:
    """A return of ``return_lines`` (APPROVED at once) and a paid replacement order of ``new_lines``
    to the same customer and address, allocated in the same transaction."""
    original = await order_by_id(session, order_id)
    if not new_lines:
        raise DomainError("An exchange needs at least one new line.", ("newLines",), "REQUIRED")
    row = await request_return(session, order_id, return_lines, note="Exchange", actor=actor)
    _move(row, S.APPROVED)
    address = await session.get(Address, original.shipping_address_id)
    assert address is not None
    try:
        replacement, _ = await create_order(
            session,
            NewOrder(
                channel_code="manual",
                currency=original.currency,
                shipping_address=AddressDetails(
                    **{key: getattr(address, key) for key in AddressDetails.__dataclass_fields__}
                ),
                lines=list(new_lines),
                paid=True,
                delivery_option=original.delivery_option,
                note=f"Exchange for return {row.number} of order {original.number}",
                actor=actor,
            ),
        )
    except DomainError as error:
        raise _as_new_lines(error) from None
    replacement.customer_id = original.customer_id
    row.replacement_order_id = replacement.id
    await session.flush()
    await allocate_order(session, replacement.id, actor=actor)
    returned_value = await _value_of(session, original, row)
    difference = round_money(replacement.total - returned_value, original.currency)
    note_event(
        session,
        original,
        "EXCHANGE_CREATED",
        f"Exchange: return {row.number}, replacement order {replacement.number}, difference {difference} "
        f"{original.currency}",
        actor,
    )
    return Exchange(row, replacement, difference)


def _as_new_lines(error: DomainError) -> DomainError:
    """The replacement order's problems, named as fields of ``newLines``."""
    problems = [
        FieldProblem(
            ("newLines", *problem.field[1:]) if problem.field[:1] == ("lines",) else problem.field,
            problem.message,
            problem.code,
        )
        for problem in error.problems
    ]
    return InvalidInput(problems)


# --- after-sales reported by a channel ----------------------------------------------

IN_PROGRESS = frozenset({RefundStatus.REQUESTED, RefundStatus.AGREED, RefundStatus.RETURNING})
ON_THE_WAY = ("DISPATCHED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "FAILED_ATTEMPT", "EXCEPTION")


async def channel_after_sale(
    session: AsyncSession, order: Order, line: OrderLine, refund: LineRefund, actor: str | None
) -> str | None:
    """A channel's after-sale request on a shipped line, as a Return keyed by the channel's refund id.

    REQUESTED creates the return; AGREED or RETURNING approves it; REFUSED rejects it and
    CLOSED closes it while nothing came back; SUCCESS records the channel's refund of the
    units' value (once) on it, the goods still to be received with returnReceive. When
    the units are still on their way to the buyer, an INTERCEPT alert asks people to stop
    the parcel at the carrier. Returns what changed, or None (a line not shipped is the
    caller's: it holds the order instead).
    """
    shipped = (await shipped_by_line(session, order)).get(line.id, 0)
    if shipped == 0:
        return None
    row = await session.scalar(
        select(Return).where(Return.order_id == order.id, Return.external_id == refund.refund_id)
    )
    changes: list[str] = []
    if row is None:
        if refund.status in (RefundStatus.REFUSED, RefundStatus.CLOSED):
            return None
        taken = (await _on_returns(session, order.id)).get(line.id, 0)
        units = min(refund.quantity or line.quantity, shipped - taken)
        if units <= 0:
            return None
        row = await request_return(
            session,
            order.id,
            [LineRequest(line.line_no, units, ReturnReason.OTHER)],
            note=f"After-sale {refund.refund_id} at the channel",
            actor=actor,
            external_id=refund.refund_id,
        )
        changes.append(f"return {row.number} requested at the channel")
        await _alert_if_on_the_way(session, order, line, row, refund)
    agreed = refund.status in (RefundStatus.AGREED, RefundStatus.RETURNING, RefundStatus.SUCCESS)
    if agreed and row.status == S.REQUESTED:
        _move(row, S.APPROVED)
        note_event(session, order, "RETURN_APPROVED", f"Return {row.number} approved at the channel", actor)
        changes.append(f"return {row.number} approved")
    if refund.status == RefundStatus.REFUSED and row.status == S.REQUESTED:
        _move(row, S.REJECTED)
        row.reject_reason = "Refused at the channel"
        note_event(session, order, "RETURN_REJECTED", f"Return {row.number} refused at the channel", actor)
        changes.append(f"return {row.number} rejected")
    if refund.status == RefundStatus.CLOSED and row.status in OPEN:
        _move(row, S.CLOSED)
        note_event(session, order, "RETURN_CLOSED", f"Return {row.number} closed at the channel", actor)
        changes.append(f"return {row.number} closed")
    if refund.status == RefundStatus.SUCCESS and row.refund_total == 0:
        amount = await _value_of(session, order, row)
        amount = min(amount, round_money(order.total - order.refunded_total, order.currency))
        if amount > 0:
            session.add(
                Refund(order_id=order.id, return_id=row.id, amount=amount, currency=order.currency, actor=actor)
            )
            row.refund_total = amount
            order.refunded_total = round_money(order.refunded_total + amount, order.currency)
            if row.status == S.RECEIVED:
                _move(row, S.REFUNDED)
            text = f"Return {row.number}: {amount} {order.currency} refunded at the channel"
            note_event(session, order, "REFUNDED", text, actor)
            changes.append(f"refunded {amount} at the channel")
    await session.flush()
    return ", ".join(changes) or None


async def _value_of(session: AsyncSession, order: Order, row: Return) -> Decimal:
    """What the units on ``row`` were paid (all of them, whether back yet or not)."""
    lines = await _lines_of(session, order.id)
    values, by_id = line_values(order, lines), {line.id: line for line in lines}
    value = Decimal(0)
    for return_line in (await session.scalars(select(ReturnLine).where(ReturnLine.return_id == row.id))).all():
        line = by_id[return_line.order_line_id]
        before = await _back_before(session, return_line)
        value += paid_for_units(values[line.id], kept(line), before + return_line.quantity, order.currency)
        value -= paid_for_units(values[line.id], kept(line), before, order.currency)
    return round_money(value, order.currency)


async def _alert_if_on_the_way(
    session: AsyncSession, order: Order, line: OrderLine, row: Return, refund: LineRefund
) -> None:
    if refund.status not in IN_PROGRESS:
        return
    moving = (
        await session.execute(
            select(Shipment.tracking_number, Shipment.carrier)
            .join(ShipmentLine, ShipmentLine.shipment_id == Shipment.id)
            .where(ShipmentLine.order_line_id == line.id, Shipment.status.in_(ON_THE_WAY))
        )
    ).all()
    for tracking_number, carrier in moving:
        await raise_alert(
            session,
            "INTERCEPT",
            f"Order {order.number}: the buyer asked for a refund ({refund.refund_id}) on line {line.line_no} while "
            f"shipment {tracking_number} is on its way with {carrier}. Ask the carrier to intercept it (拦截), or "
            f"receive it back on return {row.number}.",
            sku=line.sku,
        )
