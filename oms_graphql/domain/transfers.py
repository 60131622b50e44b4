"""Transfers between locations, and suggestions that even out days of cover.

A transfer is DRAFT until shipped. Shipping books TRANSFER_OUT: on hand leaves
the source and appears as in transit at the destination. Receiving books
TRANSFER_IN (in transit → on hand), possibly over several partial receipts.
Closing a transfer with units still missing writes them off from in transit
(WRITE_OFF) and records the discrepancy on the line.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Location, Product, StockLevel, Transfer, TransferLine, utcnow
from oms_graphql.domain import limits
from oms_graphql.domain.errors import InsufficientStock, InvalidTransition, NotFound, Problems
from oms_graphql.domain.inventory import MovementReason, Reference, location_by_code, move_stock
from oms_graphql.domain.low_stock import SALES_WINDOW_DAYS, daily_sales, fresh_forecasts
from oms_graphql.events.outbox import request_job


class TransferStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    SHIPPED = "SHIPPED"
    PARTIALLY_RECEIVED = "PARTIALLY_RECEIVED"
    RECEIVED = "RECEIVED"


@dataclass(frozen=True)
class TransferLineRequest:
    sku: str
    quantity: int


def _reference(transfer: Transfer, actor: str | None, text: str | None = None) -> Reference:
    return Reference("TRANSFER", str(transfer.id), text or transfer.reference or f"transfer {transfer.id}", actor)


async def transfer_by_id(session: AsyncSession, transfer_id: int, *, lock: bool = True) -> Transfer:
    query = select(Transfer).where(Transfer.id == transfer_id)
    if lock:
        query = query.with_for_update()
    transfer = await session.scalar(query)
    if transfer is None:
        raise NotFound("No transfer has this id.", ("id",))
    return transfer


async def transfer_lines(session: AsyncSession, transfer_ids: list[int]) -> dict[int, list[tuple[TransferLine, str]]]:
    """Lines (with their SKU) of each transfer, in one query."""
    rows = await session.execute(
        select(TransferLine, Product.sku)
        .join(Product, Product.id == TransferLine.product_id)
        .where(TransferLine.transfer_id.in_(transfer_ids))
        .order_by(TransferLine.id)
    )
    found: dict[int, list[tuple[TransferLine, str]]] = {transfer_id: [] for transfer_id in transfer_ids}
    for line, sku in rows:
        found[line.transfer_id].append((line, sku))
    return found


async def create_transfer(
    session: AsyncSession,
    *,
    from_location_code: str,
    to_location_code: str,
    lines: list[TransferLineRequest],
    reference: str | None = None,
) -> Transfer:
    """A DRAFT transfer; nothing moves until it is shipped."""
    problems = Problems()
    if from_location_code == to_location_code:
        problems.add(("toLocationCode",), "A transfer must go to another location than it comes from.", "SAME_LOCATION")
    if not lines:
        problems.add(("lines",), "A transfer needs at least one line.", "REQUIRED")
    seen: set[str] = set()
    for index, line in enumerate(lines):
        problems.positive(("lines", index, "quantity"), line.quantity)
        limits.check_units(problems, ("lines", index, "quantity"), line.quantity)
        if line.sku in seen:
            problems.add(("lines", index, "sku"), f"{line.sku} appears twice; put it on one line.", "DUPLICATE")
        seen.add(line.sku)
    problems.text(("reference",), reference, 300)
    locations = {
        location.code: location
        for location in (
            await session.scalars(select(Location).where(Location.code.in_({from_location_code, to_location_code})))
        ).all()
    }
    for field, code in (("fromLocationCode", from_location_code), ("toLocationCode", to_location_code)):
        if code not in locations:
            problems.add((field,), f"No location has code {code!r}.", "NOT_FOUND")
    products = {
        product.sku: product for product in (await session.scalars(select(Product).where(Product.sku.in_(seen)))).all()
    }
    for index, line in enumerate(lines):
        if line.sku not in products:
            problems.add(("lines", index, "sku"), f"No product has SKU {line.sku!r}.", "NOT_FOUND")
    problems.raise_if_any()
    transfer = Transfer(
        from_location_id=locations[from_location_code].id,
        to_location_id=locations[to_location_code].id,
        status=TransferStatus.DRAFT.value,
        reference=reference,
        created_at=utcnow(),
    )
    session.add(transfer)
    await session.flush()
    for line in lines:
        session.add(TransferLine(transfer_id=transfer.id, product_id=products[line.sku].id, quantity=line.quantity))
    await session.flush()
    return transfer


async def ship_transfer(session: AsyncSession, transfer_id: int, actor: str | None) -> Transfer:
    """TRANSFER_OUT: on hand leaves the source, in transit appears at the destination."""
    transfer = await transfer_by_id(session, transfer_id)
    if transfer.status != TransferStatus.DRAFT:
        raise InvalidTransition(f"Transfer {transfer.id} is {transfer.status}; only a DRAFT can be shipped.", ("id",))
    source = await session.get(Location, transfer.from_location_id)
    destination = await session.get(Location, transfer.to_location_id)
    assert source is not None and destination is not None
    reference = _reference(transfer, actor)
    for line, sku in (await transfer_lines(session, [transfer.id]))[transfer.id]:
        product = await session.get(Product, line.product_id)
        assert product is not None
        shipped = await move_stock(
            session,
            product=product,
            location=source,
            reason=MovementReason.TRANSFER_OUT,
            on_hand=-line.quantity,
            reference=reference,
        )
        if shipped is None:
            raise InsufficientStock(
                f"Cannot ship {line.quantity} of {sku} from {source.code}: fewer are on hand and not reserved "
                "for orders. Lower the transfer's quantity or receive stock first.",
                ("id",),
            )
        await move_stock(
            session,
            product=product,
            location=destination,
            reason=MovementReason.TRANSFER_OUT,
            in_transit=line.quantity,
            reference=reference,
        )
    transfer.status = TransferStatus.SHIPPED.value
    transfer.shipped_at = utcnow()
    return transfer


async def receive_transfer(
    session: AsyncSession,
    transfer_id: int,
    *,
    lines: list[TransferLineRequest] | None,
    close: bool,
    actor: str | None,
) -> Transfer:
    """TRANSFER_IN of what arrived. ``lines`` None: everything still outstanding arrived.

    ``close``: nothing more will arrive; what is still missing is written off
    from in transit and noted as the line's discrepancy.
    """
    transfer = await transfer_by_id(session, transfer_id)
    if transfer.status not in (TransferStatus.SHIPPED, TransferStatus.PARTIALLY_RECEIVED):
        raise InvalidTransition(
            f"Transfer {transfer.id} is {transfer.status}; only a shipped transfer can be received.", ("id",)
        )
    current = (await transfer_lines(session, [transfer.id]))[transfer.id]
    by_sku = {sku: line for line, sku in current}
    arrived: dict[str, int] = {}
    problems = Problems()
    if lines is None:
        arrived = {sku: line.quantity - line.received_quantity for sku, line in by_sku.items()}
    else:
        for index, request in enumerate(lines):
            problems.positive(("lines", index, "quantity"), request.quantity)
            line = by_sku.get(request.sku)
            if line is None:
                problems.add(("lines", index, "sku"), f"{request.sku} is not on this transfer.", "NOT_FOUND")
                continue
            outstanding = line.quantity - line.received_quantity - arrived.get(request.sku, 0)
            if request.quantity > outstanding:
                problems.add(
                    ("lines", index, "quantity"),
                    f"Only {outstanding} of {request.sku} are still expected on this transfer. Book extra "
                    "units with stockReceive or stockCount.",
                    "OVER_RECEIPT",
                )
            arrived[request.sku] = arrived.get(request.sku, 0) + request.quantity
    problems.raise_if_any()
    destination = await session.get(Location, transfer.to_location_id)
    assert destination is not None
    reference = _reference(transfer, actor)
    for sku, units in arrived.items():
        if units <= 0:
            continue
        line = by_sku[sku]
        product = await session.get(Product, line.product_id)
        assert product is not None
        moved = await move_stock(
            session,
            product=product,
            location=destination,
            reason=MovementReason.TRANSFER_IN,
            on_hand=units,
            in_transit=-units,
            reference=reference,
        )
        assert moved is not None  # the units were booked in transit when shipped
        line.received_quantity += units
        request_job(session, "allocate_backorders", product_id=product.id)
    complete = all(line.received_quantity >= line.quantity for line in by_sku.values())
    if close and not complete:
        for line in by_sku.values():
            missing = line.quantity - line.received_quantity
            if missing <= 0:
                continue
            product = await session.get(Product, line.product_id)
            assert product is not None
            note = f"shipped {line.quantity}, received {line.received_quantity}: {missing} missing"
            await move_stock(
                session,
                product=product,
                location=destination,
                reason=MovementReason.WRITE_OFF,
                in_transit=-missing,
                reference=_reference(transfer, actor, f"transfer {transfer.id}: {note}"),
            )
            line.discrepancy_note = note
        complete = True
    transfer.status = (TransferStatus.RECEIVED if complete else TransferStatus.PARTIALLY_RECEIVED).value
    if complete:
        transfer.received_at = utcnow()
    return transfer


# --- suggestions ------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """One location's stock position for one SKU, as the suggestion sees it."""

    code: str
    available: int  # on hand − reserved − safety stock
    in_transit: int
    reorder_point: int
    daily_sales: float

    @property
    def cover_days(self) -> float:
        stock = self.available + self.in_transit
        return math.inf if self.daily_sales <= 0 else stock / self.daily_sales


@dataclass(frozen=True)
class SuggestedMove:
    sku: str
    from_code: str
    to_code: str
    quantity: int
    from_cover_before: float
    from_cover_after: float
    to_cover_before: float
    to_cover_after: float
    explanation: str


def _days(value: float) -> str:
    return "no sales" if math.isinf(value) else f"{value:.1f} days"


def plan_moves(sku: str, positions: list[Position], min_quantity: int = 1) -> list[SuggestedMove]:
    """Even out days of cover: move stock from the best-covered to the worst-covered locations.

    The target is the cover every selling location would have if all stock
    were shared in proportion to sales. A source gives only what it has above
    both its own target and its reorder point, so no source is taken below its
    reorder point.
    """
    total_rate = sum(p.daily_sales for p in positions)
    if total_rate <= 0:
        return []
    stock = sum(p.available + p.in_transit for p in positions)
    target_cover = stock / total_rate
    # A source keeps what its own sales need at the target cover (stock already
    # on its way to it counts), and never less than its reorder point.
    surplus = {
        p.code: max(
            0, min(p.available + p.in_transit - math.ceil(p.daily_sales * target_cover), p.available - p.reorder_point)
        )
        for p in positions
    }
    need = {p.code: max(0, math.floor(p.daily_sales * target_cover) - (p.available + p.in_transit)) for p in positions}
    by_code = {p.code: p for p in positions}
    given: dict[str, int] = {p.code: 0 for p in positions}
    taken: dict[str, int] = {p.code: 0 for p in positions}
    moves: list[SuggestedMove] = []
    receivers = sorted((p for p in positions if need[p.code] > 0), key=lambda p: (p.cover_days, p.code))
    for receiver in receivers:
        sources = sorted(
            (p for p in positions if surplus[p.code] - given[p.code] > 0 and p.code != receiver.code),
            key=lambda p: (-p.cover_days, p.code),
        )
        for source in sources:
            wanted = need[receiver.code] - taken[receiver.code]
            quantity = min(wanted, surplus[source.code] - given[source.code])
            if quantity < min_quantity:
                continue
            before_from, before_to = by_code[source.code], by_code[receiver.code]
            from_after = Position(
                source.code,
                source.available - given[source.code] - quantity,
                source.in_transit,
                source.reorder_point,
                source.daily_sales,
            )
            to_after = Position(
                receiver.code,
                receiver.available,
                receiver.in_transit + taken[receiver.code] + quantity,
                receiver.reorder_point,
                receiver.daily_sales,
            )
            explanation = (
                f"{receiver.code} sells {receiver.daily_sales:.2f}/day and has {_days(before_to.cover_days)} of "
                f"cover; {source.code} sells {source.daily_sales:.2f}/day and has "
                f"{_days(before_from.cover_days)}. Moving {quantity} brings {receiver.code} to "
                f"{_days(to_after.cover_days)} and leaves {source.code} with {from_after.available} available "
                f"({_days(from_after.cover_days)}), not below its reorder point {source.reorder_point}."
            )
            moves.append(
                SuggestedMove(
                    sku,
                    source.code,
                    receiver.code,
                    quantity,
                    before_from.cover_days,
                    from_after.cover_days,
                    before_to.cover_days,
                    to_after.cover_days,
                    explanation,
                )
            )
            given[source.code] += quantity
            taken[receiver.code] += quantity
            if taken[receiver.code] >= need[receiver.code]:
                break
    return moves


async def suggest_transfers(
    session: AsyncSession,
    *,
    skus: list[str] | None = None,
    location_codes: list[str] | None = None,
    sales_window_days: int = SALES_WINDOW_DAYS,
) -> list[SuggestedMove]:
    """Suggested moves per SKU between active warehouses and stores, from each location's fresh
    stored forecast (its daily demand) or else its sales over the last ``sales_window_days``."""
    problems = Problems()
    if not 1 <= sales_window_days <= 365:
        problems.add(("salesWindowDays",), "salesWindowDays must be between 1 and 365.", "OUT_OF_RANGE")
    problems.raise_if_any()
    for index, code in enumerate(location_codes or []):
        await location_by_code(session, code, ("locationCodes", str(index)))
    query = select(Location).where(Location.active.is_(True), Location.kind.in_(("WAREHOUSE", "STORE")))
    if location_codes:
        query = query.where(Location.code.in_(location_codes))
    locations = {location.id: location for location in (await session.scalars(query)).all()}
    product_query = (
        select(Product)
        .where(Product.id.in_(select(StockLevel.product_id).where(StockLevel.location_id.in_(locations))))
        .order_by(Product.sku)
    )
    if skus:
        product_query = product_query.where(Product.sku.in_(skus))
    moves: list[SuggestedMove] = []
    for product in (await session.scalars(product_query)).all():
        levels = {
            level.location_id: level
            for level in (
                await session.scalars(
                    select(StockLevel).where(StockLevel.product_id == product.id, StockLevel.location_id.in_(locations))
                )
            ).all()
        }
        rates = await daily_sales(session, product.id, list(locations), sales_window_days)
        # A fresh stored forecast (refresh_demand_forecasts) says better than the past what a
        # location will sell; the recent rate stands in where there is none.
        for location_id, forecast in (await fresh_forecasts(session, product.id, list(locations))).items():
            rates[location_id] = forecast.daily_demand
        positions = []
        for location_id, location in locations.items():
            level = levels.get(location_id)
            if level is None and rates[location_id] <= 0:
                continue
            positions.append(
                Position(
                    code=location.code,
                    available=max(0, level.on_hand - level.reserved - level.safety_stock) if level else 0,
                    in_transit=level.in_transit if level else 0,
                    reorder_point=(level.reorder_point or 0) if level else 0,
                    daily_sales=rates[location_id],
                )
            )
        moves.extend(plan_moves(product.sku, sorted(positions, key=lambda p: p.code)))
    return moves


async def create_suggested_transfers(
    session: AsyncSession, moves: list[SuggestedMove], actor: str | None = None
) -> list[Transfer]:
    """One DRAFT transfer per (source, destination) pair of the suggested moves."""
    grouped: dict[tuple[str, str], list[TransferLineRequest]] = {}
    for move in moves:
        grouped.setdefault((move.from_code, move.to_code), []).append(TransferLineRequest(move.sku, move.quantity))
    return [
        await create_transfer(
            session,
            from_location_code=source,
            to_location_code=destination,
            lines=lines,
            reference=f"suggested by transferSuggest ({actor})" if actor else "suggested by transferSuggest",
        )
        for (source, destination), lines in grouped.items()
    ]
