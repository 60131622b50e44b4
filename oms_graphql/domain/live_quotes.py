"""Live quotes: the carriers' own prices for a fulfillment order, asked outside any transaction.

:func:`quote_calls` (in a transaction) says what to ask every active carrier: the
fulfillment order's sender, recipient, items and one parcel of all its units (the
packing for a chosen service comes later, at shipmentCreate). :func:`ask_carriers`
(no transaction: network I/O) asks each carrier plugin's ``oms_carrier_quote``; a
carrier that cannot answer, refuses or answers nonsense is left out, and its services
keep the rate table's estimate. The result goes to :func:`delivery.delivery_options`,
which prefers a quoted price and says "quoted" or "est. … (rate table)" in each reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Address, Carrier, FulfillmentOrder, Location, Order, OrderLine, Product
from oms_graphql.domain import delivery, packing
from oms_graphql.domain.carriers import carrier_config
from oms_graphql.domain.dispatch import plain_address, unshipped_lines_of
from oms_graphql.domain.plugin_settings import SecretsUnreadable
from oms_graphql.plugins.carrier_contract import CarrierConfig, Parcel, ParcelItem, RateQuote, ShipmentRequest
from oms_graphql.plugins.contract import PayloadError, PermanentError, RetryableError
from oms_graphql.plugins.host import plugin_manager

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class QuoteCall:
    carrier: CarrierConfig
    request: ShipmentRequest


async def quote_calls(session: AsyncSession, fulfillment_order_id: int) -> list[QuoteCall]:
    """What to ask each active carrier for the fulfillment order's price (empty: nothing to quote)."""
    return (await quote_calls_of(session, [fulfillment_order_id])).get(fulfillment_order_id, [])


async def quote_calls_of(session: AsyncSession, fulfillment_order_ids: Sequence[int]) -> dict[int, list[QuoteCall]]:
    """:func:`quote_calls` of several fulfillment orders, read in three queries; by fulfillment order."""
    carriers = []
    for carrier in (
        await session.scalars(select(Carrier).where(Carrier.active.is_(True)).order_by(Carrier.code))
    ).all():
        try:
            carriers.append(carrier_config(carrier))
        except SecretsUnreadable:
            continue  # its credentials cannot be read: it cannot be asked (the rate table stands)
    if not carriers:
        return {}
    rows = await session.execute(
        select(FulfillmentOrder.id, Order, Location, Address)
        .join(Order, Order.id == FulfillmentOrder.order_id)
        .join(Location, Location.id == FulfillmentOrder.location_id)
        .join(Address, Address.id == Order.shipping_address_id)
        .where(FulfillmentOrder.id.in_(fulfillment_order_ids))
    )
    places = {held_id: (order, location, address) for held_id, order, location, address in rows}
    unshipped = await unshipped_lines_of(session, list(places)) if places else {}
    calls = {}
    for held_id, (order, location, address) in places.items():
        lines = unshipped.get(held_id)
        if lines:
            request = _quote_request(order, location, address, lines)
            calls[held_id] = [QuoteCall(carrier, request) for carrier in carriers]
    return calls


def _quote_request(
    order: Order, location: Location, address: Address, lines: Sequence[tuple[OrderLine, Product, int]]
) -> ShipmentRequest:
    [whole] = packing.pack(packing.units_of([(product, count) for _line, product, count in lines]), None)
    return ShipmentRequest(
        reference=f"{order.number}-quote",
        service_code="",  # every service the carrier has
        sender=plain_address(location),
        recipient=plain_address(address),
        parcels=(Parcel(whole.weight_grams, whole.length_mm, whole.width_mm, whole.height_mm),),
        items=tuple(
            ParcelItem(sku=product.sku, name=line.title or product.name, quantity=count, unit_value=line.unit_price)
            for line, product, count in lines
        ),
        declared_value=sum((line.unit_price * count for line, _product, count in lines), Decimal("0")),
        currency=order.currency,
    )


async def order_quote_calls(session: AsyncSession, order_id: int) -> list[QuoteCall]:
    """As :func:`quote_calls`, for the order's first open fulfillment order (the origin deliveryOptions uses)."""
    held = await session.scalar(
        select(FulfillmentOrder.id)
        .where(FulfillmentOrder.order_id == order_id, FulfillmentOrder.status.in_(("OPEN", "ON_HOLD", "IN_PROGRESS")))
        .order_by(FulfillmentOrder.id)
    )
    return await quote_calls(session, held) if held is not None else []


def ask_carrier(call: QuoteCall) -> dict[tuple[str, str], RateQuote]:
    """One carrier's quotes by (carrier, service); empty when it has none or cannot answer now."""
    try:
        quotes = plugin_manager().hook.oms_carrier_quote(carrier=call.carrier, request=call.request) or []
    except (RetryableError, PermanentError, PayloadError) as error:
        log.info("no live quote; the rate table stands", carrier=call.carrier.code, error=str(error))
        return {}
    return {(call.carrier.code, quote.service_code): quote for quote in quotes if quote.price is not None}


def ask_carriers(calls: Sequence[QuoteCall]) -> delivery.Quotes:
    """Every carrier's quotes, one after the other (in a job)."""
    found: dict[tuple[str, str], RateQuote] = {}
    for call in calls:
        found.update(ask_carrier(call))
    return found


def merge(parts: Sequence[dict[tuple[str, str], RateQuote]]) -> delivery.Quotes:
    found: dict[tuple[str, str], RateQuote] = {}
    for part in parts:
        found.update(part)
    return found
