"""Stock back to the channels: what each listing may sell, pushed after a quiet moment.

The inventory jobs debounce every SKU's changes and then call the
``oms_stock_changed`` hook once per channel; the OMS's own implementation of
that hook marks the channel's listings of the SKU as due
(:func:`mark_listings_due`) and schedules one delayed push per channel
(:func:`schedule_push`): a burst of orders for many SKUs costs one call per
channel, not one per order. The push
(:func:`pending_pushes` → plugin → :func:`record_push`) reads the figures at
push time, so it always sends the latest quantity:

    quantity = max(0, floor(available × stockSharePercent / 100) − stockBuffer)

where ``available`` is summed over active shipping locations — or, for a
channel that sells from one store (``settings.locationCode``, the POS), that
store's own available stock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Channel, ChannelListing, Location, Product, StockLevel, utcnow
from oms_graphql.domain.availability import available_for_product, channel_quantity
from oms_graphql.domain.channels import channel_config
from oms_graphql.plugins.contract import ChannelConfig, StockPush, StockPushResult
from oms_graphql.redaction import redact

# A push scheduled this long ago that never ran (a lost job) no longer blocks a new one.
STALE_SCHEDULE = timedelta(minutes=10)


async def mark_listings_due(session: AsyncSession, channel_code: str, sku: str) -> int | None:
    """The SKU's sellable quantity changed: mark its listings on the channel due for a push.

    Returns the channel's id, or None when the channel does not list the SKU (or is inactive).
    """
    row = (
        await session.execute(
            select(Channel.id, Product.id)
            .join(ChannelListing, ChannelListing.channel_id == Channel.id)
            .join(Product, Product.id == ChannelListing.product_id)
            .where(Channel.code == channel_code, Channel.active.is_(True), Product.sku == sku)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    channel_id, product_id = row
    await session.execute(
        update(ChannelListing)
        .where(ChannelListing.channel_id == channel_id, ChannelListing.product_id == product_id)
        .values(push_requested_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(channel_id)


async def schedule_push(session: AsyncSession, channel_id: int, delay: timedelta) -> bool:
    """Claim the channel's next push for ``now + delay``; False when one is scheduled already."""
    now = utcnow()
    result = await session.execute(
        update(Channel)
        .where(
            Channel.id == channel_id,
            (Channel.stock_push_due_at.is_(None)) | (Channel.stock_push_due_at < now - STALE_SCHEDULE),
        )
        .values(stock_push_due_at=now + delay)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PushBatch:
    channel: ChannelConfig
    pushes: list[StockPush]
    read_at: datetime


async def _store_available(session: AsyncSession, product: Product, store_code: str) -> int | None:
    row = await session.execute(
        select(StockLevel.on_hand - StockLevel.reserved - StockLevel.safety_stock)
        .join(Location, Location.id == StockLevel.location_id)
        .where(StockLevel.product_id == product.id, Location.code == store_code)
    )
    value = row.scalar()
    return None if value is None else max(0, int(value))


async def channel_quantity_for(session: AsyncSession, channel: Channel, product: Product) -> int:
    store_code = (channel.settings or {}).get("locationCode")
    if store_code:
        available = await _store_available(session, product, str(store_code)) or 0
        return channel_quantity(available, channel.stock_share_percent, channel.stock_buffer)
    return (await available_for_product(session, product, channel=channel)).total


async def pending_pushes(session: AsyncSession, channel_id: int, everything: bool = False) -> PushBatch | None:
    """The listings due for a push, with their quantity now; frees the channel's schedule."""
    channel = await session.get(Channel, channel_id)
    if channel is None:
        return None
    channel.stock_push_due_at = None  # changes from now on schedule the next push
    query = (
        select(ChannelListing, Product)
        .join(Product, Product.id == ChannelListing.product_id)
        .where(ChannelListing.channel_id == channel.id)
    )
    if not everything:
        query = query.where(ChannelListing.push_requested_at.is_not(None))
    rows = (await session.execute(query.order_by(ChannelListing.id))).all()
    read_at = utcnow()
    if not rows or not channel.active:
        return PushBatch(channel_config(channel), [], read_at) if channel.active else None
    pushes = [
        StockPush(
            sku=product.sku,
            channel_sku_id=listing.channel_sku_id,
            quantity=await channel_quantity_for(session, channel, product),
            channel_item_id=listing.channel_item_id,
        )
        for listing, product in rows
    ]
    return PushBatch(channel_config(channel), pushes, read_at)


async def record_push(
    session: AsyncSession, channel_id: int, batch: PushBatch, results: list[StockPushResult]
) -> tuple[int, int]:
    """Note what the channel accepted; returns (accepted, refused)."""
    by_id = {result.channel_sku_id: result for result in results}
    listings = {
        listing.channel_sku_id: listing
        for listing in (
            await session.scalars(select(ChannelListing).where(ChannelListing.channel_id == channel_id))
        ).all()
    }
    accepted = refused = 0
    now = utcnow()
    for push in batch.pushes:
        listing = listings.get(push.channel_sku_id)
        if listing is None:
            continue
        result = by_id.get(push.channel_sku_id)
        if result is not None and result.ok:
            listing.pushed_quantity, listing.pushed_at, listing.push_error = push.quantity, now, None
            accepted += 1
        else:
            listing.push_error = redact(
                (result.message if result else "The plugin gave no answer for this listing") or "refused by the channel"
            )
            refused += 1
        # A change that arrived while we pushed keeps the listing due.
        if listing.push_requested_at is not None and listing.push_requested_at <= batch.read_at:
            listing.push_requested_at = None
    return accepted, refused
