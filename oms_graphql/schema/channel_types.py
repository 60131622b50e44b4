"""GraphQL types, inputs and payloads of channels: settings, listings, inbound messages."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.domain.channels import ChannelChanges, ChannelSpec
from oms_graphql.plugins.contract import ChannelKind as ChannelKindSpec
from oms_graphql.plugins.contract import SettingField
from oms_graphql.schema.ids import to_global_id
from oms_graphql.schema.scalars import JSON
from oms_graphql.schema.types import Channel, Node, Order, UserError


@strawberry.enum(description="What became of a raw payload a channel sent.")
class InboundMessageStatus(enum.Enum):
    RECEIVED = strawberry.enum_value("RECEIVED", description="Stored, waiting to be ingested.")
    PROCESSED = strawberry.enum_value("PROCESSED", description="Ingested: the order was created or updated.")
    FAILED = strawberry.enum_value("FAILED", description="Could not be parsed or applied; see error. Replayable.")
    REJECTED = strawberry.enum_value("REJECTED", description="Refused at the door (bad signature); see error.")


@strawberry.type(description="A raw payload a channel sent or returned, stored before it was parsed.")
class InboundMessage(Node):
    row: strawberry.Private[models.InboundMessage]
    channel_code: str = strawberry.field(description="The channel (or carrier) code it came from.")
    kind: str = strawberry.field(description="ORDER (one order as pulled or fetched) or WEBHOOK (a pushed request).")
    external_id: str | None = strawberry.field(description="The channel's order id, when known.")
    status: InboundMessageStatus = strawberry.field(description="RECEIVED, PROCESSED, FAILED or REJECTED.")
    body: str | None = strawberry.field(description="The payload exactly as received (JSON text).")
    headers: JSON | None = strawberry.field(description="HTTP headers of a webhook (no authorization headers).")
    error: str | None = strawberry.field(description="Why it failed or was rejected.")
    outcome: str | None = strawberry.field(description="What ingesting it did, e.g. 'created' or 'paid, refunded'.")
    attempts: int = strawberry.field(description="How many times it was ingested (replays included).")
    received_at: datetime = strawberry.field(description="When it arrived.")
    processed_at: datetime | None = strawberry.field(description="When it was last ingested or rejected.")

    @strawberry.field(description="The order it created or updated.")
    async def order(self, info: Info) -> Order | None:
        if self.row.order_id is None:
            return None
        row = await info.context.loaders.order.load(self.row.order_id)
        return Order.from_row(row) if row else None

    @classmethod
    def from_row(cls, row: models.InboundMessage) -> InboundMessage:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("InboundMessage", row.id)),
            channel_code=row.source,
            kind=row.kind,
            external_id=row.external_id,
            status=InboundMessageStatus(row.status),
            body=row.body,
            headers=row.headers,  # type: ignore[arg-type]
            error=row.error,
            outcome=row.outcome,
            attempts=row.attempts or 0,
            received_at=row.received_at,
            processed_at=row.processed_at,
        )


@strawberry.type(description="A channel SKU mapped to one of our SKUs, with the last stock pushed to it.")
class ChannelListing:
    channel_code: str = strawberry.field(description="The channel.")
    channel_sku_id: str = strawberry.field(description="The channel's SKU id (Taobao sku_id, JD skuId, SellerSKU…).")
    channel_item_id: str | None = strawberry.field(description="The channel's item (product) id, where it has one.")
    sku: str = strawberry.field(description="Our SKU.")
    pushed_quantity: int | None = strawberry.field(description="The quantity last accepted by the channel.")
    pushed_at: datetime | None = strawberry.field(description="When the channel last accepted a quantity.")
    push_pending: bool = strawberry.field(description="True while a changed quantity waits to be pushed.")
    push_error: str | None = strawberry.field(description="Why the channel refused the last push, if it did.")


def listing_from_row(row: models.ChannelListing, channel_code: str, sku: str) -> ChannelListing:
    return ChannelListing(
        channel_code=channel_code,
        channel_sku_id=row.channel_sku_id,
        channel_item_id=row.channel_item_id,
        sku=sku,
        pushed_quantity=row.pushed_quantity,
        pushed_at=row.pushed_at,
        push_pending=row.push_requested_at is not None,
        push_error=row.push_error,
    )


@strawberry.type(description="One key of a channel kind's settings, as its plugin defines it.")
class ChannelSettingField:
    key: str = strawberry.field(description="The key in `settings`, e.g. appKey.")
    label: str = strawberry.field(description="What to call it in a form.")
    kind: str = strawberry.field(description="string, url, int, list (of strings) or bool.")
    required: bool = strawberry.field(description="Whether a channel needs a value.")
    secret: bool = strawberry.field(description="Write-only: encrypted at rest, never returned.")
    default: JSON | None = strawberry.field(description="The value used when none is given.")
    help: str = strawberry.field(description="A hint for the merchant.")

    @classmethod
    def from_spec(cls, spec: SettingField) -> ChannelSettingField:
        return cls(
            key=spec.key,
            label=spec.label,
            kind=spec.kind,
            required=spec.required,
            secret=spec.secret,
            default=spec.default,
            help=spec.help,
        )


@strawberry.type(description="A channel kind an installed plugin provides (what channelCreate's `kind` accepts).")
class ChannelKind:
    kind: str = strawberry.field(description="The kind name, e.g. taobao.")
    name: str = strawberry.field(description="Display name.")
    pulls_orders: bool = strawberry.field(description="Orders are pulled on a schedule.")
    receives_webhooks: bool = strawberry.field(description="Orders arrive at POST /webhooks/channels/{channelCode}.")
    settings: list[ChannelSettingField] = strawberry.field(description="The settings keys of this kind.")

    @classmethod
    def from_spec(cls, spec: ChannelKindSpec) -> ChannelKind:
        return cls(
            kind=spec.kind,
            name=spec.name,
            pulls_orders=spec.pulls_orders,
            receives_webhooks=spec.receives_webhooks,
            settings=[ChannelSettingField.from_spec(field) for field in spec.settings],
        )


# --- inputs -----------------------------------------------------------------


@strawberry.input(description="A new sales channel (a shop on a marketplace, a store's POS, …).")
class ChannelCreateInput:
    code: str = strawberry.field(description='The merchant\'s name for this shop, e.g. "tmall-flagship".')
    name: str = strawberry.field(description="Display name.")
    kind: str = strawberry.field(description='The plugin\'s channel kind: "taobao", "jd", "amazon", "pos", "manual"…')
    settings: JSON = strawberry.field(description="Plugin-defined; checked by the plugin (see channelKinds).")
    stock_share_percent: int | None = strawberry.field(
        default=None, description="Share of available stock shown to this channel (default 100)."
    )
    stock_buffer: int | None = strawberry.field(
        default=None, description="Units held back from this channel (default 0)."
    )
    poll_interval_seconds: int | None = strawberry.field(
        default=None, description="How often orders are pulled (default 300)."
    )
    sync_from: datetime | None = strawberry.field(
        default=None,
        description="The first pull imports orders changed since then (default: 72 hours before creation).",
    )

    def to_domain(self) -> ChannelSpec:
        return ChannelSpec(
            code=self.code,
            name=self.name,
            kind=self.kind,
            settings=self.settings,
            stock_share_percent=self.stock_share_percent,
            stock_buffer=self.stock_buffer,
            poll_interval_seconds=self.poll_interval_seconds,
            sync_from=self.sync_from,
        )


@strawberry.input(description="Change a channel; omitted fields stay as they are.")
class ChannelUpdateInput:
    channel_code: str = strawberry.field(description="The channel to change.")
    name: str | None = strawberry.field(default=None, description="Display name.")
    settings: JSON | None = strawberry.field(
        default=None,
        description="Settings keys to change (merged into the "
        "stored ones; a key set to null is removed). Secrets may be replaced, "
        "never read.",
    )
    stock_share_percent: int | None = strawberry.field(default=None, description="Share of available stock (0–100).")
    stock_buffer: int | None = strawberry.field(default=None, description="Units held back from this channel.")
    poll_interval_seconds: int | None = strawberry.field(default=None, description="How often orders are pulled.")
    sync_from: datetime | None = strawberry.field(
        default=None,
        description="Re-import orders changed since then on the next pull (known orders are updated, not duplicated).",
    )
    active: bool | None = strawberry.field(default=None, description="false stops pulls and stock pushes.")

    def to_domain(self) -> ChannelChanges:
        return ChannelChanges(
            name=self.name,
            settings=self.settings,
            stock_share_percent=self.stock_share_percent,
            stock_buffer=self.stock_buffer,
            poll_interval_seconds=self.poll_interval_seconds,
            sync_from=self.sync_from,
            active=self.active,
        )


@strawberry.input(description="Map a channel's SKU id to one of our SKUs.")
class ChannelListingSetInput:
    channel_code: str = strawberry.field(description="The channel.")
    channel_sku_id: str = strawberry.field(description="The channel's SKU id as it appears on order lines.")
    sku: str = strawberry.field(description="Our SKU.")
    channel_item_id: str | None = strawberry.field(
        default=None, description="The channel's item id (Taobao num_iid), needed to push stock to some channels."
    )


@strawberry.input(description="Pull a channel's changed orders now.")
class ChannelSyncOrdersInput:
    channel_code: str = strawberry.field(description="The channel.")


@strawberry.input(description="List a channel's orders changed since a time again and store whatever is missing.")
class ChannelReconcileInput:
    channel_code: str = strawberry.field(description="The channel.")
    since: datetime | None = strawberry.field(
        default=None, description="List orders changed since then (default: OMS_CHANNEL_RECONCILE_HOURS ago, 24 h)."
    )


@strawberry.input(description="Push every listing's sellable quantity to a channel now.")
class ChannelPushStockInput:
    channel_code: str = strawberry.field(description="The channel.")


@strawberry.input(description="Ingest a stored message again (after a plugin fix or a new mapping).")
class InboundMessageReplayInput:
    id: strawberry.ID = strawberry.field(description="The InboundMessage's global id.")


@strawberry.input(description="Which inbound messages to list.")
class InboundMessageFilter:
    channel_code: str | None = strawberry.field(default=None, description="Only from this channel.")
    status: InboundMessageStatus | None = strawberry.field(default=None, description="Only in this status.")
    external_id: str | None = strawberry.field(default=None, description="Only about this channel order id.")


# --- payloads ---------------------------------------------------------------


@strawberry.type(description="The result of channelCreate.")
class ChannelCreatePayload:
    channel: Channel | None = strawberry.field(default=None, description="The new channel.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="What was wrong; settings problems name the key, e.g. [input, settings, appKey].",
    )


@strawberry.type(description="The result of channelUpdate.")
class ChannelUpdatePayload:
    channel: Channel | None = strawberry.field(default=None, description="The channel as it is now.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="What was wrong.")


@strawberry.type(description="The result of channelListingSet.")
class ChannelListingSetPayload:
    listing: ChannelListing | None = strawberry.field(default=None, description="The mapping.")
    released_orders: list[Order] = strawberry.field(
        default_factory=list, description="Orders held for this unmapped SKU that were released."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="What was wrong.")


@strawberry.type(description="The result of channelSyncOrders.")
class ChannelSyncOrdersPayload:
    channel: Channel | None = strawberry.field(default=None, description="The channel; a pull was queued.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="What was wrong.")


@strawberry.type(description="The result of channelReconcile.")
class ChannelReconcilePayload:
    channel: Channel | None = strawberry.field(
        default=None, description="The channel; a reconciliation was queued (its counts: lastReconcile)."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="What was wrong.")


@strawberry.type(description="The result of channelPushStock.")
class ChannelPushStockPayload:
    channel: Channel | None = strawberry.field(default=None, description="The channel; a push was queued.")
    listings: int = strawberry.field(default=0, description="How many listings will be pushed.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="What was wrong.")


@strawberry.type(description="The result of inboundMessageReplay.")
class InboundMessageReplayPayload:
    inbound_message: InboundMessage | None = strawberry.field(default=None, description="The message, queued again.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="What was wrong.")


__all__: list[Any] = []
