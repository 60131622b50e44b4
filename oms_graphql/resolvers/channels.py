"""Channel operations: configure channels, map listings, trigger pulls and pushes, inspect and replay payloads."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.domain import channels, inbound, ingestion, reconciliation
from oms_graphql.domain import orders as orders_rules
from oms_graphql.domain.errors import NotFound
from oms_graphql.plugins.host import channel_kinds
from oms_graphql.resolvers.common import context, db_id, run_mutation
from oms_graphql.schema.channel_types import (
    ChannelCreateInput,
    ChannelCreatePayload,
    ChannelKind,
    ChannelListing,
    ChannelListingSetInput,
    ChannelListingSetPayload,
    ChannelPushStockInput,
    ChannelPushStockPayload,
    ChannelReconcileInput,
    ChannelReconcilePayload,
    ChannelSyncOrdersInput,
    ChannelSyncOrdersPayload,
    ChannelUpdateInput,
    ChannelUpdatePayload,
    InboundMessage,
    InboundMessageFilter,
    InboundMessageReplayInput,
    InboundMessageReplayPayload,
    listing_from_row,
)
from oms_graphql.schema.context import Caller
from oms_graphql.schema.permissions import ADMIN, SYNC, SYNC_READ
from oms_graphql.schema.relay import Connection, paginate
from oms_graphql.schema.types import Channel, Order


@strawberry.type
class ChannelQuery:
    @strawberry.field(
        description="The channel kinds installed plugins provide, with their settings keys.",
        permission_classes=SYNC_READ,
    )
    def channel_kinds(self) -> list[ChannelKind]:
        return [ChannelKind.from_spec(kind) for kind in sorted(channel_kinds().values(), key=lambda k: k.kind)]

    @strawberry.field(
        description="A channel's SKU mappings and the stock last pushed to each.", permission_classes=SYNC_READ
    )
    async def channel_listings(
        self,
        info: Info,
        channel_code: str,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ChannelListing]:
        query = (
            select(models.ChannelListing, models.Product.sku)
            .join(models.Product, models.Product.id == models.ChannelListing.product_id)
            .join(models.Channel, models.Channel.id == models.ChannelListing.channel_id)
            .where(models.Channel.code == channel_code)
            .order_by(models.ChannelListing.channel_sku_id)
        )
        return await paginate(
            context(info).database,
            query,
            lambda row: listing_from_row(row[0], channel_code, row[1]),
            first=first,
            after=after,
            scalars=False,
        )

    @strawberry.field(
        description="Raw payloads received from channels, newest first, with parse errors.", permission_classes=SYNC
    )
    async def inbound_messages(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: InboundMessageFilter | None = None,
    ) -> Connection[InboundMessage]:
        query = select(models.InboundMessage).order_by(models.InboundMessage.id.desc())
        if filter and filter.channel_code:
            query = query.where(models.InboundMessage.source == filter.channel_code)
        if filter and filter.status:
            query = query.where(models.InboundMessage.status == filter.status.value)
        if filter and filter.external_id:
            query = query.where(models.InboundMessage.external_id == filter.external_id)
        return await paginate(
            context(info).database, query, InboundMessage.from_row, first=first, after=after, last=last, before=before
        )


async def _channel(session: AsyncSession, code: str) -> models.Channel:
    return await orders_rules.channel_by_code(session, code, ("channelCode",))


@strawberry.type
class ChannelMutation:
    @strawberry.mutation(
        description="Add a sales channel; its plugin checks the settings, secrets are encrypted.",
        permission_classes=ADMIN,
    )
    async def channel_create(self, info: Info, input: ChannelCreateInput) -> ChannelCreatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            return {"channel": Channel.from_row(await channels.create_channel(session, input.to_domain()))}

        return await run_mutation(info, ChannelCreatePayload, work)

    @strawberry.mutation(
        description="Change a channel's name, settings, stock share/buffer, polling or syncFrom.",
        permission_classes=ADMIN,
    )
    async def channel_update(self, info: Info, input: ChannelUpdateInput) -> ChannelUpdatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            channel = await _channel(session, input.channel_code)
            updated = await channels.update_channel(session, channel, input.to_domain())
            return {"channel": Channel.from_row(updated)}

        return await run_mutation(info, ChannelUpdatePayload, work)

    @strawberry.mutation(
        description="Map a channel SKU id to our SKU; orders held for it are released.", permission_classes=SYNC
    )
    async def channel_listing_set(self, info: Info, input: ChannelListingSetInput) -> ChannelListingSetPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            channel = await _channel(session, input.channel_code)
            listing, product = await channels.set_listing(
                session, channel, input.channel_sku_id, input.sku, input.channel_item_id
            )
            released = await ingestion.map_unmapped_lines(session, channel, input.channel_sku_id, product, caller.label)
            orders = [Order.from_row(await orders_rules.order_by_id(session, order_id)) for order_id in released]
            return {"listing": listing_from_row(listing, channel.code, product.sku), "released_orders": orders}

        return await run_mutation(info, ChannelListingSetPayload, work)

    @strawberry.mutation(
        description="Pull the channel's changed orders now (queued; the scheduler also polls).",
        permission_classes=SYNC,
    )
    async def channel_sync_orders(self, info: Info, input: ChannelSyncOrdersInput) -> ChannelSyncOrdersPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            channel = await _channel(session, input.channel_code)
            await channels.request_pull(session, channel)
            return {"channel": Channel.from_row(channel)}

        return await run_mutation(info, ChannelSyncOrdersPayload, work)

    @strawberry.mutation(
        description="List the channel's orders changed since `since` again (default: the last 24 hours) and store "
        "every one not stored yet (补单; queued, also run periodically). The counts land in Channel.lastReconcile.",
        permission_classes=SYNC,
    )
    async def channel_reconcile(self, info: Info, input: ChannelReconcileInput) -> ChannelReconcilePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            channel = await _channel(session, input.channel_code)
            await reconciliation.request_reconcile(session, channel, input.since)
            return {"channel": Channel.from_row(channel)}

        return await run_mutation(info, ChannelReconcilePayload, work)

    @strawberry.mutation(
        description="Push every listing's sellable quantity to the channel now (queued).", permission_classes=SYNC
    )
    async def channel_push_stock(self, info: Info, input: ChannelPushStockInput) -> ChannelPushStockPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            channel = await _channel(session, input.channel_code)
            count = await channels.request_stock_push(session, channel)
            return {"channel": Channel.from_row(channel), "listings": count}

        return await run_mutation(info, ChannelPushStockPayload, work)

    @strawberry.mutation(
        description="Ingest a stored inbound message again (FAILED, REJECTED or PROCESSED).", permission_classes=SYNC
    )
    async def inbound_message_replay(self, info: Info, input: InboundMessageReplayInput) -> InboundMessageReplayPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            message = await session.get(models.InboundMessage, db_id(input.id, "InboundMessage"), with_for_update=True)
            if message is None:
                raise NotFound("No inbound message has this id.", ("id",))
            return {"inbound_message": InboundMessage.from_row(await inbound.replay_message(session, message))}

        return await run_mutation(info, InboundMessageReplayPayload, work)
