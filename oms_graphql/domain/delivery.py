"""Delivery options: every carrier service for an order, whether it can carry it, and the choice.

For each active carrier's services (as their plugins describe them) the OMS
checks what the parcel needs (handling such as cold chain or hazmat, weight,
length), where it goes (the service's areas; own-fleet same-day only within
its distance of the shipping location; store pickup only where a store picks
up), estimates price and arrival, and says whether the arrival meets the
order's promise. The default choice is the cheapest eligible option that
meets the promise, of the kind the customer asked for (EXPRESS, SAME_DAY,
PICKUP); every option says why it was or was not chosen.

No carrier is called here: prices come from the built-in rate table below,
labelled as estimates, unless the caller brings live quotes it asked the carriers
for outside any transaction (:mod:`live_quotes`: the dispatch job, and
``deliveryOptions(live: true)``); a quoted price (and its arrival) then wins over
the rate table, and the reason says which it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Address,
    Carrier,
    FulfillmentOrder,
    Location,
    Order,
    OrderLine,
    Product,
)
from oms_graphql.domain import geo, packing
from oms_graphql.domain.carriers import services_of
from oms_graphql.domain.orders import order_by_id
from oms_graphql.plugins.carrier_contract import CarrierService, DeliveryKind, RateQuote

# Live quotes by (carrier code, service code).
Quotes = Mapping[tuple[str, str], RateQuote]

# Days from payment to delivery that an order promises when it names no date, by the
# kind of delivery it asked for (STANDARD when it asked for none).
PROMISE_DAYS = {DeliveryKind.SAME_DAY: 0, DeliveryKind.EXPRESS: 2, DeliveryKind.STANDARD: 5, DeliveryKind.PICKUP: 2}
# Days in transit when a service does not say, and the extra days past 1,000 km.
TRANSIT_DAYS = {DeliveryKind.SAME_DAY: 0, DeliveryKind.EXPRESS: 1, DeliveryKind.STANDARD: 3, DeliveryKind.PICKUP: 0}
FAR_KM = 1000.0
# The rate table used when no live quote is at hand: (first kilogram, each further
# kilogram started), per currency and kind, times the distance band's factor for
# parcels that travel (STANDARD, EXPRESS): the zones express companies price by
# (same city, region, country, remote).
RATE_TABLE: dict[str, dict[DeliveryKind, tuple[Decimal, Decimal]]] = {
    "CNY": {
        DeliveryKind.STANDARD: (Decimal("10"), Decimal("2")),
        DeliveryKind.EXPRESS: (Decimal("18"), Decimal("5")),
        DeliveryKind.SAME_DAY: (Decimal("25"), Decimal("3")),
        DeliveryKind.PICKUP: (Decimal("0"), Decimal("0")),
    },
    "USD": {
        DeliveryKind.STANDARD: (Decimal("6"), Decimal("1")),
        DeliveryKind.EXPRESS: (Decimal("12"), Decimal("2.5")),
        DeliveryKind.SAME_DAY: (Decimal("15"), Decimal("2")),
        DeliveryKind.PICKUP: (Decimal("0"), Decimal("0")),
    },
}
DISTANCE_BANDS: tuple[tuple[float, Decimal], ...] = (
    (100.0, Decimal("0.8")),
    (FAR_KM, Decimal("1")),
    (2500.0, Decimal("1.25")),
    (math.inf, Decimal("1.6")),
)
DEFAULT_FLEET_KM = 30


@dataclass(frozen=True)
class Parcel:
    """What the order's remaining units weigh and need, all together (``units``: each of them,
    for packing them into as many parcels as a service's per-parcel limits need)."""

    weight_grams: int
    longest_mm: int
    handling: frozenset[str]
    units: tuple[packing.Unit, ...] = ()


@dataclass(frozen=True)
class Offer:
    """One carrier service as the OMS can use it."""

    carrier_code: str
    carrier_kind: str
    service: CarrierService
    max_distance_km: float | None = None  # own fleet: how far from the shipping location


@dataclass(frozen=True)
class Trip:
    """Where a parcel goes from and to, as far as the OMS can place both ends."""

    origin: Location | None
    destination: Address
    distance_km: float | None
    pickup_here: bool  # a store that picks up orders is in the destination's city


@dataclass(frozen=True)
class DeliveryOption:
    carrier_code: str
    service_code: str
    kind: DeliveryKind
    price: Decimal | None
    currency: str | None
    estimated_delivery_at: datetime | None
    eligible: bool
    meets_promise: bool
    chosen: bool
    reason: str
    parcels: int = 1  # how many parcels it would take (its per-parcel limits)
    quoted: bool = False  # the price is the carrier's live quote, not the rate table's estimate


def parcel_of(lines: Sequence[tuple[Product, int]]) -> Parcel:
    weight = sum((product.weight_grams or 0) * units for product, units in lines)
    longest = max(
        (max(product.length_mm or 0, product.width_mm or 0, product.height_mm or 0) for product, _ in lines), default=0
    )
    handling = frozenset(item for product, _ in lines for item in (product.handling or []))
    return Parcel(weight, longest, handling, tuple(packing.units_of(lines)))


def packages_for(parcel: Parcel, service: CarrierService) -> list[packing.Package]:
    """The parcels ``service`` would take these units in (one when nothing is known of them)."""
    if not parcel.units:
        return [packing.Package(max(parcel.weight_grams, packing.MIN_PARCEL_GRAMS), parcel.longest_mm or None)]
    return packing.pack(parcel.units, service.max_weight_grams)


def estimate_parcels_price(
    kind: DeliveryKind,
    packages: Sequence[packing.Package],
    handling: frozenset[str],
    currency: str,
    distance_km: float | None,
) -> Decimal | None:
    """The rate table's price of sending every one of ``packages``."""
    total = Decimal("0")
    for package in packages:
        price = estimate_price(
            kind, Parcel(package.weight_grams, package.length_mm or 0, handling), currency, distance_km
        )
        if price is None:
            return None
        total += price
    return total


def estimate_price(kind: DeliveryKind, parcel: Parcel, currency: str, distance_km: float | None) -> Decimal | None:
    rates = RATE_TABLE.get(currency, {}).get(kind)
    if rates is None:
        return None
    first, further = rates
    extra_kg = max(0, -(-parcel.weight_grams // 1000) - 1)  # each kilogram started after the first
    price = first + further * extra_kg
    if distance_km is not None and kind in (DeliveryKind.STANDARD, DeliveryKind.EXPRESS):
        price *= next(factor for limit, factor in DISTANCE_BANDS if distance_km <= limit)
    return price.quantize(Decimal("0.01"))


def _ineligible_because(offer: Offer, parcel: Parcel, trip: Trip) -> str | None:
    service = offer.service
    missing = sorted(parcel.handling - {item.value for item in service.handling})
    if missing:
        return f"cannot carry {', '.join(missing)} items"
    if parcel.units:
        # Limits are per parcel: only a unit that fits no parcel rules the service out.
        if (too_big := packing.too_big_for(parcel.units, service)) is not None:
            return too_big
        parcels = len(packages_for(parcel, service))
        if service.max_parcels is not None and parcels > service.max_parcels:
            return (
                f"{parcel.weight_grams / 1000:g} kg needs {parcels} parcels under its "
                f"{(service.max_weight_grams or 0) / 1000:g} kg limit; it takes {service.max_parcels} per shipment"
            )
    else:
        if service.max_weight_grams is not None and parcel.weight_grams > service.max_weight_grams:
            return f"{parcel.weight_grams / 1000:g} kg is over its {service.max_weight_grams / 1000:g} kg limit"
        if service.max_length_mm is not None and parcel.longest_mm > service.max_length_mm:
            return f"the longest side, {parcel.longest_mm} mm, is over its {service.max_length_mm} mm limit"
    country = trip.destination.country
    if service.areas and not any(area == country or _in_region(area, trip.destination) for area in service.areas):
        return f"does not deliver to {country}" + (f" {trip.destination.region}" if trip.destination.region else "")
    if service.kind == DeliveryKind.PICKUP and not trip.pickup_here:
        return "no store picks up orders in the customer's city"
    if service.kind == DeliveryKind.SAME_DAY:
        limit = offer.max_distance_km or DEFAULT_FLEET_KM
        if trip.distance_km is None:
            return "the distance from the shipping location cannot be told (allocate the order, give coordinates)"
        if trip.distance_km > limit:
            return f"{trip.distance_km:,.0f} km is beyond its {limit:g} km"
    return None


def _in_region(area: str, address: Address) -> bool:
    if not area.startswith(f"{address.country}-") or not address.region:
        return False
    place = (
        geo.gazetteer().state(address.region) if address.country == "US" else geo.gazetteer().province(address.region)
    )
    return place is not None and place.iso == area


def choose(
    offers: Sequence[Offer],
    parcel: Parcel,
    trip: Trip,
    currency: str,
    ship_from: datetime,
    promised_by: datetime,
    wanted: DeliveryKind | None,
    quotes: Quotes | None = None,
) -> list[DeliveryOption]:
    """Every offer with its price, arrival, eligibility and reason; the default choice marked.

    ``quotes``: live prices by (carrier, service), preferred over the rate table when in the
    order's currency.
    """
    options = []
    for offer in offers:
        service = offer.service
        problem = _ineligible_because(offer, parcel, trip)
        days = service.transit_days if service.transit_days is not None else TRANSIT_DAYS[service.kind]
        if service.transit_days is None and trip.distance_km is not None and trip.distance_km > FAR_KM:
            days += 1 if service.kind == DeliveryKind.EXPRESS else 2
        handling_days = 0 if service.kind in (DeliveryKind.SAME_DAY, DeliveryKind.PICKUP) else 1
        arrival = ship_from + timedelta(days=handling_days + days)
        packages = packages_for(parcel, service)
        if len(packages) > 1:
            price = estimate_parcels_price(service.kind, packages, parcel.handling, currency, trip.distance_km)
        else:
            price = estimate_price(service.kind, parcel, currency, trip.distance_km)
        quote = (quotes or {}).get((offer.carrier_code, service.code))
        quoted = quote is not None and quote.price is not None and (quote.currency or currency) == currency
        if quote is not None and quoted:
            price = quote.price
            arrival = quote.estimated_delivery_at or arrival
        options.append(
            DeliveryOption(
                carrier_code=offer.carrier_code,
                service_code=service.code,
                kind=service.kind,
                price=price,
                currency=currency if price is not None else None,
                estimated_delivery_at=arrival,
                eligible=problem is None,
                meets_promise=arrival <= promised_by,
                chosen=False,
                reason=problem or "",
                parcels=len(packages),
                quoted=quoted,
            )
        )
    kinds = {wanted} if wanted and wanted != DeliveryKind.STANDARD else set(DeliveryKind) - {DeliveryKind.PICKUP}
    candidates = [option for option in options if option.eligible and option.kind in kinds]
    on_time = [option for option in candidates if option.meets_promise]

    def cost(option: DeliveryOption) -> tuple[Decimal, datetime]:
        return (option.price if option.price is not None else Decimal("Infinity"), option.estimated_delivery_at)  # type: ignore[return-value]

    best = min(on_time or candidates, key=cost, default=None)
    return [_explained(option, option is best, bool(on_time), wanted, trip) for option in options]


def _explained(
    option: DeliveryOption, chosen: bool, any_on_time: bool, wanted: DeliveryKind | None, trip: Trip
) -> DeliveryOption:
    if option.price is None:
        price = "no price"
    elif option.quoted:
        price = f"quoted {option.price} {option.currency} by {option.carrier_code}"
    else:
        price = f"est. {option.price} {option.currency} (rate table)"
    if option.parcels > 1:
        price += f" for {option.parcels} parcels"
    where = f", {trip.distance_km:,.0f} km" if trip.distance_km is not None else ""
    arrival = option.estimated_delivery_at.date().isoformat() if option.estimated_delivery_at else "unknown"
    facts = f"{price}{where}, arrives about {arrival}"
    if not option.eligible:
        reason = f"Not eligible: {option.reason}."
    elif chosen:
        why = (
            "the cheapest eligible option that meets the promise"
            if any_on_time
            else "nothing eligible meets the promise; the cheapest eligible option"
        )
        reason = f"Chosen: {why} ({facts})."
    elif wanted and wanted != DeliveryKind.STANDARD and option.kind != wanted:
        reason = f"Eligible, not chosen: the customer asked for {wanted.value} ({facts})."
    elif not option.meets_promise:
        reason = f"Eligible, misses the promised date ({facts})."
    else:
        reason = f"Eligible, not the cheapest on time ({facts})."
    return replace(option, chosen=chosen, reason=reason)


# --- for an order in the database -------------------------------------------


async def _offers(session: AsyncSession) -> list[Offer]:
    carriers = (await session.scalars(select(Carrier).where(Carrier.active.is_(True)).order_by(Carrier.code))).all()
    return [
        Offer(
            carrier.code,
            carrier.kind,
            service,
            float(carrier.settings.get("maxDistanceKm") or DEFAULT_FLEET_KM) if carrier.kind == "fleet" else None,
        )
        for carrier in carriers
        for service in services_of(carrier)
    ]


async def delivery_options(session: AsyncSession, order_id: int, quotes: Quotes | None = None) -> list[DeliveryOption]:
    """The delivery options of an order, from the location it is allocated to (its first open
    fulfillment order), or without a known origin while it is not allocated yet; ``quotes``:
    live prices the caller asked the carriers for."""
    order: Order = await order_by_id(session, order_id)
    address = await session.get(Address, order.shipping_address_id)
    assert address is not None
    lines = (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all()
    products = {
        product.id: product
        for product in (
            await session.scalars(select(Product).where(Product.id.in_({line.product_id for line in lines})))
        ).all()
    }
    wanted_units = [
        (products[line.product_id], line.quantity - line.refunded_quantity)
        for line in lines
        if line.product_id in products and line.quantity > line.refunded_quantity
    ]
    origin_id = await session.scalar(
        select(FulfillmentOrder.location_id)
        .where(FulfillmentOrder.order_id == order.id, FulfillmentOrder.status.in_(("OPEN", "ON_HOLD", "IN_PROGRESS")))
        .order_by(FulfillmentOrder.id)
    )
    origin = await session.get(Location, origin_id) if origin_id is not None else None
    start, end = (geo.point_of(origin) if origin else None), geo.point_of(address)
    distance = geo.distance_km(start, end) if start and end else None
    pickup_here = (
        await session.scalar(
            select(Location.id).where(
                Location.can_pickup.is_(True), Location.active.is_(True), Location.city == address.city
            )
        )
        is not None
        if address.city
        else False
    ) or order.pickup_location_id is not None
    wanted = DeliveryKind(order.delivery_option) if order.delivery_option else None
    ship_from = order.paid_at or order.placed_at
    promised_by = order.promised_at or ship_from + timedelta(days=PROMISE_DAYS[wanted or DeliveryKind.STANDARD])
    if (wanted or DeliveryKind.STANDARD) == DeliveryKind.SAME_DAY and not order.promised_at:
        promised_by = ship_from.replace(hour=23, minute=59, second=59)
    trip = Trip(origin, address, distance, pickup_here)
    return choose(
        await _offers(session), parcel_of(wanted_units), trip, order.currency, ship_from, promised_by, wanted, quotes
    )
