"""The stock ledger: the only way stock moves.

Every change is one conditional UPDATE of the level (its WHERE clause is the
guard: nothing goes negative, reserved never exceeds on hand, a reservation
never eats into safety stock) plus one ``StockMovement`` row, in the caller's
transaction. The UPDATE takes the row lock, so two transactions reserving the
last unit serialise on it and the second one sees the first one's result:
no code path reads a figure and then writes it back.

What a ledger row means to a client (API.md): ``quantity`` is the signed
change of on hand, or of reserved for RESERVE/RELEASE, and in transit has its
own figure. So that summing ``quantity`` per reason adds up to the level, a
RESERVE/RELEASE row never moves on hand and no other row moves reserved: a
change that moves both (a shipment consumes its reservation as the units
leave) is booked as two rows of the same UPDATE, see :func:`ledger_entries`.

Two things ride on the same UPDATE, so they cost no extra lock time: the
low-stock flag (one alert per crossing below the reorder point, see
:mod:`oms_graphql.domain.low_stock`) and the channel push bookkeeping
(``sync_version``: the first change after a push asks for one debounced job).
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Location, OutboxEntry, Product, StockLevel, StockMovement, utcnow
from oms_graphql.domain import limits, low_stock
from oms_graphql.domain.errors import InsufficientStock, NotFound, Problems
from oms_graphql.domain.reports.stock_days import day_booking, day_params
from oms_graphql.events.outbox import note_outbox_written, record_event, request_job

# The job that tells channels a SKU's sellable quantity changed (debounced).
STOCK_CHANGED_JOB = "stock_changed"


class MovementReason(enum.StrEnum):
    RECEIPT = "RECEIPT"
    RESERVE = "RESERVE"
    RELEASE = "RELEASE"
    SHIP = "SHIP"
    # A dispatched shipment cancelled at the carrier before collection: its units are on
    # hand again and reserved for the order again (the reverse of SHIP, with its RESERVE row).
    SHIP_CANCELLED = "SHIP_CANCELLED"
    RETURN = "RETURN"
    EXCHANGE = "EXCHANGE"
    ADJUST = "ADJUST"
    COUNT = "COUNT"
    TRANSFER_OUT = "TRANSFER_OUT"
    TRANSFER_IN = "TRANSFER_IN"
    WRITE_OFF = "WRITE_OFF"


# The reasons whose ledger rows move reserved; every other reason moves on hand (and maybe in transit).
RESERVATION_REASONS = frozenset({MovementReason.RESERVE, MovementReason.RELEASE})


def movement_quantity(reason: str, *, on_hand_delta: int, reserved_delta: int) -> int:
    """A ledger row's ``quantity``: the change of on hand, or of reserved for RESERVE/RELEASE.

    Never the change of in transit (a transfer's units on their way are not on
    hand yet): that is the row's own in-transit figure.
    """
    return reserved_delta if reason in RESERVATION_REASONS else on_hand_delta


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row of a movement: its reason and the change of each figure."""

    reason: MovementReason
    on_hand: int = 0
    reserved: int = 0
    in_transit: int = 0


def ledger_entries(reason: MovementReason, *, on_hand: int, reserved: int, in_transit: int) -> list[LedgerEntry]:
    """The rows one change is booked as, so that each row's ``quantity`` is the whole of what it moved.

    A change of reserved under another reason (SHIP: the reservation is used up
    as on hand leaves) gets its own RELEASE row before the reason's row (RESERVE
    after it, if one ever adds to reserved), so a client summing RESERVE/RELEASE
    quantities sees the reservation end. Both rows come from the same guarded
    UPDATE.
    """
    if reason in RESERVATION_REASONS:
        if on_hand:
            raise ValueError(f"a {reason} movement moves reserved, not on hand")
        return [LedgerEntry(reason, reserved=reserved, in_transit=in_transit)]
    main = LedgerEntry(reason, on_hand=on_hand, in_transit=in_transit)
    if reserved < 0:
        return [LedgerEntry(MovementReason.RELEASE, reserved=reserved), main]
    if reserved > 0:
        return [main, LedgerEntry(MovementReason.RESERVE, reserved=reserved)]
    return [main]


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
    reorder_point: int | None = None

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.reserved - self.safety_stock)


async def product_by_sku(session: AsyncSession, sku: str, field: tuple[str, ...] = ("sku",)) -> Product:
    product = await session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        raise NotFound(f"No product has SKU {sku!r}. Create it with productCreate first.", field)
    return product


async def location_by_code(session: AsyncSession, code: str, field: tuple[str, ...] = ("locationCode",)) -> Location:
    location = await session.scalar(select(Location).where(Location.code == code))
    if location is None:
        raise NotFound(f"No location has code {code!r}. Create it with locationCreate first.", field)
    return location


async def product_and_location(
    session: AsyncSession,
    sku: str,
    location_code: str,
    fields: tuple[tuple[str, ...], tuple[str, ...]] = (("sku",), ("locationCode",)),
) -> tuple[Product, Location]:
    """Both by their keys; an unknown one is a NOT_FOUND problem naming its field (both reported)."""
    product = await session.scalar(select(Product).where(Product.sku == sku))
    location = await session.scalar(select(Location).where(Location.code == location_code))
    problems = Problems()
    if product is None:
        problems.add(fields[0], f"No product has SKU {sku!r}. Create it with productCreate first.", "NOT_FOUND")
    if location is None:
        problems.add(
            fields[1], f"No location has code {location_code!r}. Create it with locationCreate first.", "NOT_FOUND"
        )
    problems.raise_if_any()
    assert product is not None and location is not None
    return product, location


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


async def _missing_level(session: AsyncSession, product_id: int, location_id: int) -> bool:
    found = await session.scalar(
        select(StockLevel.id).where(StockLevel.product_id == product_id, StockLevel.location_id == location_id)
    )
    return found is None


def _figures_payload(figures: LevelFigures) -> dict[str, int]:
    return {
        "onHand": figures.on_hand,
        "reserved": figures.reserved,
        "inTransit": figures.in_transit,
        "available": figures.available,
    }


@dataclass(frozen=True)
class _Booking:
    """What one ledger entry writes: its ledger row, its stock event, and the change booked after it."""

    movement: dict[str, Any]
    event: dict[str, Any]
    later: tuple[int, int, int]  # on hand, reserved, in transit moved by the entries after this one

    def figures(self, row: Any) -> LevelFigures:
        """The level right after this entry, from the row after the whole UPDATE."""
        on_hand, reserved, in_transit = self.later
        return LevelFigures(row[0] - on_hand, row[1] - reserved, row[2] - in_transit, row[3], row[4])


def _rows_of(selects: Iterable[Select[Any]]) -> Select[Any]:
    """One SELECT of the rows of all ``selects``, which INSERT..FROM SELECT can add defaults to.

    Ordered, so the rows get their ids (the ledger's and the outbox's order) in the order given.
    """
    first, *more = selects
    if not more:
        return first
    numbered = (each.add_columns(literal(index, Integer).label("entry")) for index, each in enumerate([first, *more]))
    rows = union_all(*numbered).subquery()
    return select(*(column for column in rows.c if column.key != "entry")).order_by(rows.c.entry)


# The types of a "stock" event's values; the figures after the movement are added to them.
_EVENT_TYPES: dict[str, Any] = {
    "sku": String,
    "locationCode": String,
    "reason": String,
    "onHandDelta": Integer,
    "reservedDelta": Integer,
    "inTransitDelta": Integer,
    "reference": String,
    "at": String,
}
_MOVEMENT_COLUMNS = (
    "product_id",
    "location_id",
    "reason",
    "on_hand_delta",
    "reserved_delta",
    "in_transit_delta",
    "reference_type",
    "reference_id",
    "reference",
    "actor",
    "created_at",
)


@functools.cache
def _movement_statements(bookings: int, keep_safety_stock: bool, sellable_changed: bool) -> tuple[Any, Any]:
    """The guarded UPDATE of one level, and on PostgreSQL the same with its ledger rows and events.

    Built once per shape, with every value a bound parameter: building a statement
    and its cache key costs more CPU than PostgreSQL spends running it, and on a
    hot SKU that CPU is spent while others queue for the row lock.
    """
    on_hand, reserved, in_transit = (
        bindparam(f"by_{name}", type_=Integer) for name in ("on_hand", "reserved", "in_transit")
    )
    new_on_hand = StockLevel.on_hand + on_hand
    new_reserved = StockLevel.reserved + reserved
    guards = [
        StockLevel.product_id == bindparam("of_product_id", type_=StockLevel.product_id.type),
        StockLevel.location_id == bindparam("at_location_id", type_=StockLevel.location_id.type),
        new_on_hand >= 0,
        new_reserved >= 0,
        new_reserved <= new_on_hand,
        StockLevel.in_transit + in_transit >= 0,
    ]
    if keep_safety_stock:
        guards.append(new_on_hand - new_reserved >= StockLevel.safety_stock)
    values: dict[str, Any] = {
        "on_hand": new_on_hand,
        "reserved": new_reserved,
        "in_transit": StockLevel.in_transit + in_transit,
        "updated_at": bindparam("now", type_=StockLevel.updated_at.type),
    }
    if sellable_changed:
        values["sync_version"] = StockLevel.sync_version + 1
    moved = (
        update(StockLevel)
        .where(*guards)
        .values(values)
        .returning(
            StockLevel.on_hand,
            StockLevel.reserved,
            StockLevel.in_transit,
            StockLevel.safety_stock,
            StockLevel.reorder_point,
            StockLevel.low_stock_alerted,
            StockLevel.sync_version,
            StockLevel.synced_version,
            StockLevel.id,
        )
        .execution_options(synchronize_session=False)
    )
    updated = moved.cte("moved")
    columns = StockMovement.__table__.c
    ledger = insert(StockMovement).from_select(
        list(_MOVEMENT_COLUMNS),
        _rows_of(
            select(*(bindparam(f"m{n}_{name}", type_=columns[name].type) for name in _MOVEMENT_COLUMNS)).select_from(
                updated
            )
            for n in range(bookings)
        ),
    )
    events = []
    for n in range(bookings):
        pairs: list[Any] = []
        for key, kind in _EVENT_TYPES.items():
            pairs += [literal(key, String), bindparam(f"e{n}_{key}", type_=kind)]
        # The figures right after this entry: the row after the UPDATE less what later entries moved.
        figures = {
            key: column - bindparam(f"l{n}_{key}", type_=Integer)
            for key, column in (
                ("onHand", updated.c.on_hand),
                ("reserved", updated.c.reserved),
                ("inTransit", updated.c.in_transit),
            )
        }
        figures["available"] = func.greatest(0, figures["onHand"] - figures["reserved"] - updated.c.safety_stock)
        for key, column in figures.items():
            pairs += [literal(key, String), column]
        events.append(
            select(
                literal("event", String),
                literal("stock", String),
                func.json_build_object(*pairs),
                bindparam("now", type_=OutboxEntry.__table__.c.created_at.type),
                literal(0, Integer),
            ).select_from(updated)
        )
    outbox = insert(OutboxEntry).from_select(["kind", "topic", "payload", "created_at", "attempts"], _rows_of(events))
    recorded = select(updated).add_cte(ledger.cte("ledger")).add_cte(outbox.cte("event"))
    return moved, recorded.add_cte(day_booking("postgresql", updated).cte("stock_day"))


async def _update_and_record(
    session: AsyncSession, statements: tuple[Any, Any], params: dict[str, Any], bookings: list[_Booking]
) -> tuple[Any, bool]:
    """The guarded UPDATE and what it records; (row after it or None when refused, events written?).

    On PostgreSQL the UPDATE, its ledger rows and their "stock" outbox events are
    one statement (data-modifying CTEs), and the transaction can commit right
    after it. The level's row lock is held from that UPDATE to the commit, so
    on a hot SKU every statement in between costs throughput for everyone.
    Elsewhere (SQLite, one writer at a time) the ledger rows follow the UPDATE
    and the events are written with ``record_event``.
    """
    moved, recorded = statements
    if session.get_bind().dialect.name != "postgresql":
        row = (await session.execute(moved, params)).first()
        if row is not None:
            await session.execute(insert(StockMovement), [booking.movement for booking in bookings])
            await session.execute(day_booking("sqlite"), params)
        return row, False
    row = (await session.execute(recorded, params)).first()
    if row is not None:
        note_outbox_written(session)
    return row, row is not None


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
    field: tuple[str, ...] = ("quantity",),
) -> LevelFigures | None:
    """Apply one ledger movement atomically; None when the guard refused it.

    One guarded UPDATE of the level, booked as the rows of :func:`ledger_entries`
    (one, or two when a reason other than RESERVE/RELEASE also moves reserved),
    each with its stock event.

    ``keep_safety_stock``: refuse when the result would leave less than the
    safety stock unreserved (used by reservations).

    A movement that adds units is refused (``limits.TooMuchStock`` naming ``field``)
    when the SKU would hold more than ``limits.MAX_UNITS_PER_SKU``, so every figure
    fits a GraphQL Int.
    """
    await limits.check_room_for(session, product.id, product.sku, on_hand + in_transit, field)
    now = utcnow()
    sellable_changed = bool(on_hand or reserved)
    entries = ledger_entries(reason, on_hand=on_hand, reserved=reserved, in_transit=in_transit)
    params: dict[str, Any] = {
        "of_product_id": product.id,
        "at_location_id": location.id,
        "by_on_hand": on_hand,
        "by_reserved": reserved,
        "by_in_transit": in_transit,
        "now": now,
    }
    bookings = []
    for index, entry in enumerate(entries):
        after = entries[index + 1 :]
        later = (
            sum(e.on_hand for e in after),
            sum(e.reserved for e in after),
            sum(e.in_transit for e in after),
        )
        movement = {
            "product_id": product.id,
            "location_id": location.id,
            "reason": entry.reason.value,
            "on_hand_delta": entry.on_hand,
            "reserved_delta": entry.reserved,
            "in_transit_delta": entry.in_transit,
            "reference_type": reference.type,
            "reference_id": reference.id,
            "reference": reference.text,
            "actor": reference.actor,
            "created_at": now,
        }
        event = {
            "sku": product.sku,
            "locationCode": location.code,
            "reason": entry.reason.value,
            "onHandDelta": entry.on_hand,
            "reservedDelta": entry.reserved,
            "inTransitDelta": entry.in_transit,
            "reference": reference.text,
            "at": now.isoformat(),
        }
        bookings.append(_Booking(movement, event, later))
        params.update({f"m{index}_{name}": value for name, value in movement.items()})
        params.update({f"e{index}_{key}": value for key, value in event.items()})
        params.update(
            {f"l{index}_{key}": value for key, value in zip(("onHand", "reserved", "inTransit"), later, strict=True)}
        )
    params.update(day_params(now, [booking.movement for booking in bookings]))  # inventoryKpis' daily figures
    statements = _movement_statements(len(bookings), keep_safety_stock, sellable_changed)
    row, events_written = await _update_and_record(session, statements, params, bookings)
    if row is None and await _missing_level(session, product.id, location.id):
        await level_id(session, product.id, location.id)  # the first movement of this SKU here
        row, events_written = await _update_and_record(session, statements, params, bookings)
    if row is None:
        return None
    level = int(row[8])
    figures = LevelFigures(*row[:5])
    alerted, sync_version, synced_version = bool(row[5]), int(row[6]), int(row[7])
    if not events_written:
        for booking in bookings:
            record_event(session, "stock", {**booking.event, **_figures_payload(booking.figures(row))})
    # Our UPDATE holds the row lock until commit, so the flag read above cannot
    # change under us: the crossing is detected exactly once.
    await low_stock.check_crossing(
        session,
        level_id=level,
        product=product,
        location=location,
        available=figures.available,
        in_transit=figures.in_transit,
        reorder_point=figures.reorder_point,
        alerted=alerted,
    )
    if sellable_changed and sync_version == synced_version + 1:
        # The first change since the last push: ask for one (debounced) push.
        request_job(session, STOCK_CHANGED_JOB, product_id=product.id)
    return figures


async def reserve_stock(
    session: AsyncSession, *, product: Product, location: Location, quantity: int, reference: Reference
) -> LevelFigures | None:
    """Reserve ``quantity`` for an order without eating into safety stock; None when short."""
    return await move_stock(
        session,
        product=product,
        location=location,
        reason=MovementReason.RESERVE,
        reserved=quantity,
        reference=reference,
        keep_safety_stock=True,
    )


@dataclass(frozen=True)
class Take:
    """Units of one product to reserve at one location, for what ``reference`` names (an order)."""

    product: Product
    location: Location
    units: int
    reference: Reference


# The ledger columns that differ between reserve_many's rows.
_TAKE_COLUMNS = ("product_id", "location_id", "reserved_delta", "reference_type", "reference_id", "reference", "actor")
# What reserve_many reads back of each level it moved.
_RESERVED_COLUMNS = (
    StockLevel.id,
    StockLevel.location_id,
    StockLevel.product_id,
    StockLevel.low_stock_alerted,
    StockLevel.sync_version,
    StockLevel.synced_version,
    StockLevel.reorder_point,
)
# reserve_many on PostgreSQL: the guarded UPDATE of every level, its RESERVE ledger rows and their
# "stock" events in one statement whose text is the same for any number of takes (arrays, unnested),
# so it is compiled and prepared once. The levels are already locked and checked.
_RESERVE_MANY = text(
    """
WITH moved AS (
    UPDATE stock_levels
    SET reserved = stock_levels.reserved + v.units,
        sync_version = stock_levels.sync_version + v.moves,
        updated_at = :now
    FROM unnest(CAST(:level_ids AS BIGINT[]), CAST(:units AS INTEGER[]), CAST(:moves AS INTEGER[]))
        AS v(id, units, moves)
    WHERE stock_levels.id = v.id
      AND stock_levels.reserved + v.units <= stock_levels.on_hand
      AND stock_levels.on_hand - (stock_levels.reserved + v.units) >= stock_levels.safety_stock
    RETURNING stock_levels.id, stock_levels.location_id, stock_levels.product_id, stock_levels.low_stock_alerted,
        stock_levels.sync_version, stock_levels.synced_version, stock_levels.reorder_point
), ledger AS (
    INSERT INTO stock_movements (product_id, location_id, reason, on_hand_delta, reserved_delta, in_transit_delta,
        reference_type, reference_id, reference, actor, created_at)
    SELECT m.product_id, m.location_id, 'RESERVE', 0, m.units, 0, m.reference_type, m.reference_id, m.reference,
        m.actor, :now
    FROM unnest(CAST(:m_product_id AS BIGINT[]), CAST(:m_location_id AS BIGINT[]), CAST(:m_reserved_delta AS INTEGER[]),
        CAST(:m_reference_type AS TEXT[]), CAST(:m_reference_id AS TEXT[]), CAST(:m_reference AS TEXT[]),
        CAST(:m_actor AS TEXT[])) WITH ORDINALITY
        AS m(product_id, location_id, units, reference_type, reference_id, reference, actor, n)
    ORDER BY m.n
), event AS (
    INSERT INTO outbox (kind, topic, payload, created_at, attempts)
    SELECT 'event', 'stock', CAST(e.payload AS JSON), :now, 0
    FROM unnest(CAST(:payloads AS TEXT[])) WITH ORDINALITY AS e(payload, n)
    ORDER BY e.n
)
SELECT * FROM moved
"""
).bindparams(bindparam("now", type_=StockLevel.updated_at.type))


async def reserve_many(session: AsyncSession, groups: Sequence[Sequence[Take]]) -> list[bool]:
    """Reserve each group of takes whole or not at all; which groups were reserved, in order.

    A group is what one order needs: if one of its takes is short (a concurrent
    order took the stock), none of the group is reserved and the caller plans it
    again. The levels are locked first, in (location, product) order for every
    caller, so concurrent batches queue on their first common level and never
    deadlock. The groups are then checked in order against the locked figures
    (keeping the safety stock, as :func:`reserve_stock` does), and every level
    is moved by the sum of its accepted takes in one guarded UPDATE, with one
    RESERVE ledger row and one "stock" event per take, as reserving them one by
    one would write them.
    """
    wanted = sorted({(take.location.id, take.product.id) for group in groups for take in group})
    if not wanted:
        return [True] * len(groups)
    locked = await session.execute(
        select(
            StockLevel.location_id,
            StockLevel.product_id,
            StockLevel.id,
            StockLevel.on_hand,
            StockLevel.reserved,
            StockLevel.in_transit,
            StockLevel.safety_stock,
        )
        .where(tuple_(StockLevel.location_id, StockLevel.product_id).in_(wanted))
        .order_by(StockLevel.location_id, StockLevel.product_id)
        .with_for_update()
    )
    levels = {(row[0], row[1]): list(row[2:]) for row in locked}  # id, on hand, reserved, in transit, safety
    accepted = []
    for group in groups:
        needs: dict[tuple[int, int], int] = {}
        for take in group:
            key = (take.location.id, take.product.id)
            needs[key] = needs.get(key, 0) + take.units
        fits = all(
            key in levels and levels[key][1] - levels[key][2] - units >= levels[key][4] for key, units in needs.items()
        )
        accepted.append(fits)
        if fits:
            for key, units in needs.items():
                levels[key][2] += units
    takes = [take for group, fits in zip(groups, accepted, strict=True) if fits for take in group]
    if takes:
        await _book_reservations(session, takes, levels)
    return accepted


async def _book_reservations(
    session: AsyncSession, takes: Sequence[Take], levels: dict[tuple[int, int], list[int]]
) -> None:
    """Write what :func:`reserve_many` accepted; ``levels`` holds each locked level's figures after it."""
    now = utcnow()
    units: dict[tuple[int, int], int] = {}
    movements_of: dict[int, int] = {}  # level id -> its takes: each movement bumps sync_version
    for take in takes:
        key = (take.location.id, take.product.id)
        units[key] = units.get(key, 0) + take.units
        movements_of[levels[key][0]] = movements_of.get(levels[key][0], 0) + 1
    # Each take's event carries the figures right after it: the level before the batch plus the takes so far.
    reserved = {key: levels[key][2] - moved for key, moved in units.items()}
    movements, events = [], []
    for take in takes:
        key = (take.location.id, take.product.id)
        reserved[key] += take.units
        _id, on_hand, _reserved, in_transit, _safety = levels[key]
        figures = LevelFigures(on_hand, reserved[key], in_transit, levels[key][4])
        movements.append(
            {
                "product_id": take.product.id,
                "location_id": take.location.id,
                "reason": MovementReason.RESERVE.value,
                "on_hand_delta": 0,
                "reserved_delta": take.units,
                "in_transit_delta": 0,
                "reference_type": take.reference.type,
                "reference_id": take.reference.id,
                "reference": take.reference.text,
                "actor": take.reference.actor,
                "created_at": now,
            }
        )
        event = {
            "sku": take.product.sku,
            "locationCode": take.location.code,
            "reason": MovementReason.RESERVE.value,
            "onHandDelta": 0,
            "reservedDelta": take.units,
            "inTransitDelta": 0,
            "reference": take.reference.text,
            "at": now.isoformat(),
            **_figures_payload(figures),
        }
        events.append({"kind": "event", "topic": "stock", "payload": event, "created_at": now, "attempts": 0})
    per_level = {levels[key][0]: moved for key, moved in units.items()}
    if session.get_bind().dialect.name == "postgresql":
        rows = (
            await session.execute(
                _RESERVE_MANY,
                {
                    "now": now,
                    "level_ids": list(per_level),
                    "units": list(per_level.values()),
                    "moves": [movements_of[level] for level in per_level],
                    **{f"m_{name}": [movement[name] for movement in movements] for name in _TAKE_COLUMNS},
                    "payloads": [json.dumps(event["payload"]) for event in events],
                },
            )
        ).all()
    else:  # SQLite: one writer at a time, the statements follow each other
        new_reserved = StockLevel.reserved + case(per_level, value=StockLevel.id)
        moved = (
            update(StockLevel)
            .where(
                StockLevel.id.in_(sorted(per_level)),
                new_reserved <= StockLevel.on_hand,
                StockLevel.on_hand - new_reserved >= StockLevel.safety_stock,
            )
            .values(
                reserved=new_reserved,
                sync_version=StockLevel.sync_version + case(movements_of, value=StockLevel.id),
                updated_at=now,
            )
            .returning(*_RESERVED_COLUMNS)
            .execution_options(synchronize_session=False)
        )
        rows = (await session.execute(moved)).all()
        await session.execute(insert(StockMovement), movements)
        await session.execute(insert(OutboxEntry), events)
    if len(rows) != len(per_level):  # the levels are locked: the figures checked above still hold
        raise RuntimeError("a locked stock level refused its reservation")
    note_outbox_written(session)
    takes_by_level = {(take.location.id, take.product.id): take for take in takes}
    asked: set[int] = set()
    for level, location_id, product_id, alerted, sync_version, synced_version, reorder_point in rows:
        take = takes_by_level[(location_id, product_id)]
        _id, on_hand, reserved_now, in_transit, safety_stock = levels[(location_id, product_id)]
        figures = LevelFigures(on_hand, reserved_now, in_transit, safety_stock, reorder_point)
        await low_stock.check_crossing(
            session,
            level_id=level,
            product=take.product,
            location=take.location,
            available=figures.available,
            in_transit=in_transit,
            reorder_point=reorder_point,
            alerted=bool(alerted),
        )
        if sync_version - movements_of[level] == synced_version and product_id not in asked:
            asked.add(product_id)  # the first change since the last push: one (debounced) push per SKU
            request_job(session, STOCK_CHANGED_JOB, product_id=product_id)


async def ship_stock(
    session: AsyncSession,
    *,
    product: Product,
    location: Location,
    quantity: int,
    reference: Reference,
    field: tuple[str, ...] = ("quantity",),
) -> LevelFigures:
    """Units leave with a shipment: reserved and on hand both go down (SHIP).

    Only reserved units can ship; asking for more is refused and nothing is written.
    """
    problems = Problems()
    problems.positive(field, quantity)
    problems.raise_if_any()
    figures = await move_stock(
        session,
        product=product,
        location=location,
        reason=MovementReason.SHIP,
        on_hand=-quantity,
        reserved=-quantity,
        reference=reference,
    )
    if figures is None:
        raise InsufficientStock(
            f"Cannot ship {quantity} of {product.sku} from {location.code}: fewer are reserved there. "
            "Allocate the order (or ship what was reserved) first.",
            field,
        )
    return figures


async def ship_reserved(
    session: AsyncSession, *, sku: str, location_code: str, quantity: int, reference: Reference
) -> LevelFigures:
    """:func:`ship_stock` by SKU and location code."""
    product, location = await product_and_location(session, sku, location_code)
    return await ship_stock(session, product=product, location=location, quantity=quantity, reference=reference)


async def restock(
    session: AsyncSession,
    *,
    sku: str,
    location_code: str,
    quantity: int,
    reference: Reference,
    reason: MovementReason = MovementReason.RETURN,
) -> LevelFigures:
    """Put returned (RETURN) or exchanged-back (EXCHANGE) units back on the shelf."""
    if reason not in (MovementReason.RETURN, MovementReason.EXCHANGE):
        raise ValueError(f"restock is for RETURN or EXCHANGE, not {reason}")
    problems = Problems()
    problems.positive(("quantity",), quantity)
    problems.raise_if_any()
    product, location = await product_and_location(session, sku, location_code)
    figures = await move_stock(
        session, product=product, location=location, reason=reason, on_hand=quantity, reference=reference
    )
    assert figures is not None  # a restock only adds
    request_job(session, "allocate_backorders", product_id=product.id)
    return figures


async def write_off(
    session: AsyncSession, *, sku: str, location_code: str, quantity: int, reference: Reference
) -> LevelFigures:
    """Remove damaged or lost units from on hand (WRITE_OFF); reserved units cannot be written off."""
    problems = Problems()
    problems.positive(("quantity",), quantity)
    problems.text(("reason",), reference.text, 300, required=True)
    problems.raise_if_any()
    product, location = await product_and_location(session, sku, location_code)
    figures = await move_stock(
        session,
        product=product,
        location=location,
        reason=MovementReason.WRITE_OFF,
        on_hand=-quantity,
        reference=reference,
    )
    if figures is None:
        raise InsufficientStock(
            f"Cannot write off {quantity} of {sku} at {location_code}: fewer are on hand and not reserved.",
            ("quantity",),
        )
    return figures


async def count_stock(
    session: AsyncSession,
    *,
    sku: str,
    location_code: str,
    counted_quantity: int,
    reason: str | None,
    actor: str | None,
) -> tuple[LevelFigures, int]:
    """Record a cycle count: book ``counted − on hand`` as a COUNT movement; returns (figures, difference).

    The level row is locked before it is read, so a reservation cannot slip in
    between reading on hand and booking the difference.
    """
    problems = Problems()
    problems.not_negative(("countedQuantity",), counted_quantity)
    limits.check_units(problems, ("countedQuantity",), counted_quantity)
    problems.text(("reason",), reason, 300)
    problems.raise_if_any()
    product, location = await product_and_location(session, sku, location_code)
    level = await level_id(session, product.id, location.id)
    on_hand, reserved = (
        await session.execute(
            select(StockLevel.on_hand, StockLevel.reserved).where(StockLevel.id == level).with_for_update()
        )
    ).one()
    if counted_quantity < reserved:
        raise InsufficientStock(
            f"Counted {counted_quantity} of {sku} at {location_code}, but {reserved} are reserved for orders. "
            "Release or re-allocate those orders first, then book the count.",
            ("countedQuantity",),
        )
    difference = counted_quantity - on_hand
    text = f"counted {counted_quantity}, system had {on_hand}" + (f": {reason}" if reason else "")
    figures = await move_stock(
        session,
        product=product,
        location=location,
        reason=MovementReason.COUNT,
        on_hand=difference,
        reference=Reference(type="COUNT", text=text[:300], actor=actor),
        field=("countedQuantity",),
    )
    assert figures is not None  # the row is locked: the figures we checked still hold
    if difference > 0:
        request_job(session, "allocate_backorders", product_id=product.id)
    return figures, difference


async def receive_stock(
    session: AsyncSession, *, sku: str, location_code: str, quantity: int, reference: Reference
) -> LevelFigures:
    problems = Problems()
    problems.positive(("quantity",), quantity)
    limits.check_units(problems, ("quantity",), quantity)
    problems.text(("reference",), reference.text, 300)
    problems.raise_if_any()
    product, location = await product_and_location(session, sku, location_code)
    figures = await move_stock(
        session,
        product=product,
        location=location,
        reason=MovementReason.RECEIPT,
        on_hand=quantity,
        reference=reference,
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
    limits.check_units(problems, ("delta",), delta)
    problems.text(("reason",), reason, 300, required=True)
    problems.raise_if_any()
    product, location = await product_and_location(session, sku, location_code)
    figures = await move_stock(
        session,
        product=product,
        location=location,
        reason=MovementReason.ADJUST,
        on_hand=delta,
        reference=Reference(type="ADJUSTMENT", text=reason, actor=actor),
        field=("delta",),
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
    """One figure of one level that the ledger does not add up to."""

    sku: str
    location_code: str
    figure: str  # onHand, reserved or inTransit
    level: int
    ledger: int
    why: str = ""


async def verify_ledger(session: AsyncSession) -> list[LedgerDifference]:
    """Recompute every level from the ledger; list each figure that differs, and why.

    Each figure is checked twice: the level against the sum of its rows' changes
    (the projection), and against the ledger as a client reads it (API.md: on hand
    is the sum of ``quantity`` over every reason but RESERVE/RELEASE, reserved
    over RESERVE/RELEASE, in transit the sum of its own changes). The two agree
    unless some row moves a figure its reason does not (a SHIP row booked before
    shipments released their reservation in a row of its own, or one written
    by hand); that row's reason is named.
    """
    reservation = StockMovement.reason.in_(sorted(RESERVATION_REASONS))
    sums = (
        select(
            StockMovement.product_id,
            StockMovement.location_id,
            func.sum(StockMovement.on_hand_delta).label("on_hand"),
            func.sum(StockMovement.reserved_delta).label("reserved"),
            func.sum(StockMovement.in_transit_delta).label("in_transit"),
            func.sum(case((reservation, 0), else_=StockMovement.on_hand_delta)).label("read_on_hand"),
            func.sum(case((reservation, StockMovement.reserved_delta), else_=0)).label("read_reserved"),
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
            *(
                func.coalesce(column, 0)
                for column in (
                    sums.c.on_hand,
                    sums.c.reserved,
                    sums.c.in_transit,
                    sums.c.read_on_hand,
                    sums.c.read_reserved,
                )
            ),
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
    misread = False
    for sku, code, *figures in rows:
        on_hand, reserved, in_transit, s_on_hand, s_reserved, s_in_transit, r_on_hand, r_reserved = map(int, figures)
        for figure, level, summed, read in (
            ("onHand", on_hand, s_on_hand, r_on_hand),
            ("reserved", reserved, s_reserved, r_reserved),
            ("inTransit", in_transit, s_in_transit, s_in_transit),
        ):
            if level != summed:
                differences.append(
                    LedgerDifference(sku, code, figure, level, summed, "the level is not the sum of its ledger rows")
                )
            elif level != read:
                misread = True
                differences.append(LedgerDifference(sku, code, figure, level, read))
    if misread:
        differences = await _explain_misread(session, differences)
    return differences


async def _explain_misread(session: AsyncSession, differences: list[LedgerDifference]) -> list[LedgerDifference]:
    """Name the reasons whose rows move a figure they should not, for the differences that have no why yet."""
    reservation = StockMovement.reason.in_(sorted(RESERVATION_REASONS))
    offending = await session.execute(
        select(Product.sku, Location.code, StockMovement.reason)
        .select_from(StockMovement)
        .join(Product, Product.id == StockMovement.product_id)
        .join(Location, Location.id == StockMovement.location_id)
        .where(
            or_(
                and_(reservation, StockMovement.on_hand_delta != 0),
                and_(~reservation, StockMovement.reserved_delta != 0),
            )
        )
        .distinct()
    )
    reasons: dict[tuple[str, str], set[str]] = {}
    for sku, code, reason in offending:
        reasons.setdefault((sku, code), set()).add(reason)
    explained = []
    for difference in differences:
        if not difference.why:
            moved = "on hand" if difference.figure == "onHand" else "reserved"
            found = sorted(
                reason
                for reason in reasons.get((difference.sku, difference.location_code), set())
                if (reason in RESERVATION_REASONS) == (moved == "on hand")
            )
            named = "/".join(found) or "some"
            why = f"{named} rows also move {moved}, which a client summing quantity by reason does not see"
            difference = replace(difference, why=why)
        explained.append(difference)
    return explained
