"""The stock ledger: the only way stock moves.

Every change is one conditional UPDATE of the level (its WHERE clause is the
guard: nothing goes negative, reserved never exceeds on hand, a reservation
never eats into safety stock) plus one ``StockMovement`` row, in the caller's
transaction. The UPDATE takes the row lock, so two transactions reserving the
last unit serialise on it and the second one sees the first one's result:
no code path reads a figure and then writes it back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Location, Product, StockLevel, StockMovement, utcnow
from oms_graphql.domain.errors import InsufficientStock, NotFound, Problems
from oms_graphql.events.outbox import record_event, request_job


class MovementReason(enum.StrEnum):
    RECEIPT = "RECEIPT"
    RESERVE = "RESERVE"
    RELEASE = "RELEASE"
    SHIP = "SHIP"
    RETURN = "RETURN"
    EXCHANGE = "EXCHANGE"
    ADJUST = "ADJUST"
    COUNT = "COUNT"
    TRANSFER_OUT = "TRANSFER_OUT"
    TRANSFER_IN = "TRANSFER_IN"
    WRITE_OFF = "WRITE_OFF"


@dataclass(frozen=True)
class Reference:
    """What caused a movement, and who."""

    type: str | None = None
    id: str | None = None
    text: str | None = None
    actor: str | None = None


@dataclass(frozen=True)
class LevelFigures:
    on_hand: int
    reserved: int
    in_transit: int
    safety_stock: int

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.reserved - self.safety_stock)


async def product_by_sku(session: AsyncSession, sku: str, field: tuple[str, ...] = ("sku",)) -> Product:
    product = await session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        raise NotFound(f"No product has SKU {sku!r}. Create it with productCreate first.", field)
    return product


async def location_by_code(
    session: AsyncSession, code: str, field: tuple[str, ...] = ("locationCode",)
) -> Location:
    location = await session.scalar(select(Location).where(Location.code == code))
    if location is None:
        raise NotFound(f"No location has code {code!r}. Create it with locationCreate first.", field)
    return location


async def level_id(session: AsyncSession, product_id: int, location_id: int) -> int:
    """The id of the (product, location) level, creating an empty one if needed."""
    where = and_(StockLevel.product_id == product_id, StockLevel.location_id == location_id)
    found = await session.scalar(select(StockLevel.id).where(where))
    if found is not None:
        return found
    try:
        async with session.begin_nested():
            level = StockLevel(product_id=product_id, location_id=location_id)
            session.add(level)
            await session.flush()
            return level.id
    except IntegrityError:  # created by a concurrent transaction
        found = await session.scalar(select(StockLevel.id).where(where))
        assert found is not None
        return found


async def move_stock(
    session: AsyncSession,
    *,
    product: Product,
    location: Location,
    reason: MovementReason,
    on_hand: int = 0,
    reserved: int = 0,
    in_transit: int = 0,
    reference: Reference = Reference(),
    keep_safety_stock: bool = False,
) -> LevelFigures | None:
    """Apply one ledger movement atomically; None when the guard refused it.

    ``keep_safety_stock``: refuse when the result would leave less than the
    safety stock unreserved (used by reservations).
    """
    level = await level_id(session, product.id, location.id)
    new_on_hand = StockLevel.on_hand + on_hand
    new_reserved = StockLevel.reserved + reserved
    guards = [
        StockLevel.id == level,
        new_on_hand >= 0,
        new_reserved >= 0,
        new_reserved <= new_on_hand,
        StockLevel.in_transit + in_transit >= 0,
    ]
    if keep_safety_stock:
        guards.append(new_on_hand - new_reserved >= StockLevel.safety_stock)
    result = await session.execute(
        update(StockLevel)
        .where(*guards)
        .values(
            on_hand=new_on_hand,
            reserved=new_reserved,
            in_transit=StockLevel.in_transit + in_transit,
            updated_at=utcnow(),
        )
        .returning(StockLevel.on_hand, StockLevel.reserved, StockLevel.in_transit, StockLevel.safety_stock)
        .execution_options(synchronize_session=False)
    )
    row = result.first()
    if row is None:
        return None
    session.add(
        StockMovement(
            product_id=product.id,
            location_id=location.id,
            reason=reason.value,
            on_hand_delta=on_hand,
            reserved_delta=reserved,
            in_transit_delta=in_transit,
            reference_type=reference.type,
            reference_id=reference.id,
            reference=reference.text,
            actor=reference.actor,
        )
    )
    figures = LevelFigures(*row)
    record_event(
        session,
        "stock",
        {
            "sku": product.sku,
            "locationCode": location.code,
            "reason": reason.value,
            "onHand": figures.on_hand,
            "reserved": figures.reserved,
            "inTransit": figures.in_transit,
            "available": figures.available,
        },
    )
    return figures


async def receive_stock(
    session: AsyncSession, *, sku: str, location_code: str, quantity: int, reference: Reference
) -> LevelFigures:
    problems = Problems()
    problems.positive(("quantity",), quantity)
    problems.text(("reference",), reference.text, 300)
    problems.raise_if_any()
    product = await product_by_sku(session, sku)
    location = await location_by_code(session, location_code)
    figures = await move_stock(
        session, product=product, location=location, reason=MovementReason.RECEIPT,
        on_hand=quantity, reference=reference,
    )
    assert figures is not None  # a receipt only adds
    # Orders waiting for this SKU get their chance, oldest first.
    request_job(session, "allocate_backorders", product_id=product.id)
    return figures


async def adjust_stock(
    session: AsyncSession, *, sku: str, location_code: str, delta: int, reason: str, actor: str | None
) -> LevelFigures:
    problems = Problems()
    if delta == 0:
        problems.add(("delta",), "delta must not be zero.", "ZERO")
    problems.text(("reason",), reason, 300, required=True)
    problems.raise_if_any()
    product = await product_by_sku(session, sku)
    location = await location_by_code(session, location_code)
    figures = await move_stock(
        session, product=product, location=location, reason=MovementReason.ADJUST,
        on_hand=delta, reference=Reference(type="ADJUSTMENT", text=reason, actor=actor),
    )
    if figures is None:
        raise InsufficientStock(
            f"Cannot remove {-delta} of {sku} at {location_code}: that would take on-hand stock "
            "below zero or below what is reserved for orders. Count the stock or release orders first.",
            ("delta",),
        )
    if delta > 0:
        request_job(session, "allocate_backorders", product_id=product.id)
    return figures


@dataclass(frozen=True)
class LedgerDifference:
    sku: str
    location_code: str
    figure: str
    level: int
    ledger: int


async def verify_ledger(session: AsyncSession) -> list[LedgerDifference]:
    """Recompute every level from the ledger; list each figure that differs."""
    sums = (
        select(
            StockMovement.product_id,
            StockMovement.location_id,
            func.sum(StockMovement.on_hand_delta).label("on_hand"),
            func.sum(StockMovement.reserved_delta).label("reserved"),
            func.sum(StockMovement.in_transit_delta).label("in_transit"),
        )
        .group_by(StockMovement.product_id, StockMovement.location_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Product.sku,
            Location.code,
            StockLevel.on_hand,
            StockLevel.reserved,
            StockLevel.in_transit,
            func.coalesce(sums.c.on_hand, 0),
            func.coalesce(sums.c.reserved, 0),
            func.coalesce(sums.c.in_transit, 0),
        )
        .select_from(StockLevel)
        .join(Product, Product.id == StockLevel.product_id)
        .join(Location, Location.id == StockLevel.location_id)
        .outerjoin(
            sums,
            and_(sums.c.product_id == StockLevel.product_id, sums.c.location_id == StockLevel.location_id),
        )
    )
    differences = []
    for sku, code, on_hand, reserved, in_transit, l_on_hand, l_reserved, l_in_transit in rows:
        for figure, level, ledger in (
            ("onHand", on_hand, l_on_hand),
            ("reserved", reserved, l_reserved),
            ("inTransit", in_transit, l_in_transit),
        ):
            if int(level) != int(ledger):
                differences.append(LedgerDifference(sku, code, figure, int(level), int(ledger)))
    return differences
