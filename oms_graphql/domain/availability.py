"""Available to promise: what may be sold now, in total, per location, and per channel."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Channel, Location, Product, StockLevel
from oms_graphql.domain.errors import NotFound


@dataclass(frozen=True)
class LocationAvailability:
    location: Location
    available: int


@dataclass(frozen=True)
class AvailableToPromise:
    sku: str
    channel_code: str | None
    total: int  # after the channel's share and buffer, when a channel is given
    locations_total: int  # the plain sum over the locations
    share_percent: int
    buffer: int
    locations: list[LocationAvailability]


def channel_quantity(total: int, share_percent: int, buffer: int) -> int:
    """What one channel is shown: max(0, floor(total × share / 100) − buffer)."""
    return max(0, math.floor(total * share_percent / 100) - buffer)


async def available_to_promise(
    session: AsyncSession, sku: str, channel_code: str | None = None
) -> AvailableToPromise | None:
    """None for an unknown SKU. Only active locations that ship count towards the total.

    available = on hand − reserved − safety stock, never below zero, per location.
    """
    product = await session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        return None
    return await available_for_product(session, product, channel_code)


async def available_for_product(
    session: AsyncSession, product: Product, channel_code: str | None = None, channel: Channel | None = None
) -> AvailableToPromise:
    if channel is None and channel_code is not None:
        channel = await session.scalar(select(Channel).where(Channel.code == channel_code))
        if channel is None:
            raise NotFound(f"No channel has code {channel_code!r}.", ("channelCode",))
    rows = await session.execute(
        select(Location, StockLevel.on_hand - StockLevel.reserved - StockLevel.safety_stock)
        .join(StockLevel, StockLevel.location_id == Location.id)
        .where(StockLevel.product_id == product.id, Location.active.is_(True), Location.can_ship.is_(True))
        .order_by(Location.priority, Location.code)
    )
    locations = [LocationAvailability(location, max(0, int(units))) for location, units in rows]
    plain = sum(entry.available for entry in locations)
    share = channel.stock_share_percent if channel else 100
    buffer = channel.stock_buffer if channel else 0
    return AvailableToPromise(
        sku=product.sku,
        channel_code=channel.code if channel else None,
        total=channel_quantity(plain, share, buffer) if channel else plain,
        locations_total=plain,
        share_percent=share,
        buffer=buffer,
        locations=locations,
    )
