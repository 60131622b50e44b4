"""Inventory object types and payloads: available to promise, alerts, transfers, stock events."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.domain import availability, transfers
from oms_graphql.domain.inventory import movement_quantity
from oms_graphql.schema.ids import to_global_id
from oms_graphql.schema.inventory_inputs import TransferStatus
from oms_graphql.schema.types import LEDGER_RULE, Location, Node, StockLevel, UserError


@strawberry.type(description="What one location can sell of a SKU.")
class LocationAvailability:
    row: strawberry.Private[models.Location]
    available: int = strawberry.field(description="on hand − reserved − safety stock, never below zero.")

    @strawberry.field(description="The location.")
    def location(self) -> Location:
        return Location.from_row(self.row)


@strawberry.type(description="The quantity of a SKU that may be sold now, in total and per location.")
class AvailableToPromise:
    sku: str = strawberry.field(description="The SKU asked about.")
    channel_code: str | None = strawberry.field(description="The channel whose share and buffer were applied.")
    total: int = strawberry.field(
        description="What may be sold. For a channel: max(0, floor(locationsTotal × share / 100) − buffer)."
    )
    locations_total: int = strawberry.field(description="Sum of the locations' available, before channel rules.")
    stock_share_percent: int = strawberry.field(description="The channel's share of stock (100 without channel).")
    stock_buffer: int = strawberry.field(description="Units held back from the channel (0 without channel).")
    locations: list[LocationAvailability] = strawberry.field(
        description="Active locations that ship, with what each can sell."
    )

    @classmethod
    def from_domain(cls, atp: availability.AvailableToPromise) -> AvailableToPromise:
        return cls(
            sku=atp.sku,
            channel_code=atp.channel_code,
            total=atp.total,
            locations_total=atp.locations_total,
            stock_share_percent=atp.share_percent,
            stock_buffer=atp.buffer,
            locations=[LocationAvailability(row=entry.location, available=entry.available) for entry in atp.locations],
        )


@strawberry.type(description="Something a person should act on: low stock, a delayed order, a failed sync.")
class Alert:
    id: strawberry.ID = strawberry.field(description="Global id of the alert.")
    kind: str = strawberry.field(description="LOW_STOCK, and later DELAYED_ORDER, SYNC_FAILED, ...")
    sku: str | None = strawberry.field(description="The SKU concerned, if any.")
    location_code: str | None = strawberry.field(description="The location concerned, if any.")
    message: str = strawberry.field(description="What happened and what to do.")
    suggested_quantity: int | None = strawberry.field(description="For LOW_STOCK: how many units to buy.")
    created_at: datetime = strawberry.field(description="When the alert was raised (UTC).")
    resolved_at: datetime | None = strawberry.field(
        default=None, description="When the condition ended (stock back at the reorder point)."
    )

    @classmethod
    def from_row(cls, row: models.AlertRecord) -> Alert:
        return cls(
            id=strawberry.ID(to_global_id("Alert", row.id)),
            kind=row.kind,
            sku=row.sku,
            location_code=row.location_code,
            message=row.message,
            suggested_quantity=row.suggested_quantity,
            created_at=row.created_at,
            resolved_at=row.resolved_at,
        )

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Alert:
        return cls(
            id=strawberry.ID(to_global_id("Alert", event["id"])),
            kind=event["kind"],
            sku=event.get("sku"),
            location_code=event.get("locationCode"),
            message=event["message"],
            suggested_quantity=event.get("suggestedQuantity"),
            created_at=datetime.fromisoformat(event["createdAt"]),
        )


@strawberry.type(
    description="A stock level changed: one ledger row (a StockMovement) and the figures right after it. "
    "A shipment sends two: the RELEASE of its reservation, then the SHIP of its units. " + LEDGER_RULE
)
class StockEvent:
    sku: str = strawberry.field(description="The SKU that moved.")
    location_code: str = strawberry.field(description="Where it moved.")
    reason: str = strawberry.field(description="The movement's reason: RECEIPT, RESERVE, SHIP, ...")
    quantity: int = strawberry.field(
        description="As StockMovement.quantity: signed change of on hand, or of reserved for RESERVE/RELEASE; "
        "never of in transit (see inTransitDelta)."
    )
    on_hand_delta: int = strawberry.field(description="Signed change of on hand (0 for RESERVE/RELEASE).")
    reserved_delta: int = strawberry.field(description="Signed change of reserved (0 unless RESERVE/RELEASE).")
    in_transit_delta: int = strawberry.field(description="Signed change of in transit.")
    on_hand: int = strawberry.field(description="On hand after the movement.")
    reserved: int = strawberry.field(description="Reserved after the movement.")
    in_transit: int = strawberry.field(description="In transit after the movement.")
    available: int = strawberry.field(description="Available after the movement.")
    reference: str | None = strawberry.field(description="What caused it.")
    at: datetime | None = strawberry.field(description="When it was booked (UTC).")

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> StockEvent:
        return cls(
            sku=event["sku"],
            location_code=event["locationCode"],
            reason=event["reason"],
            quantity=movement_quantity(
                event["reason"],
                on_hand_delta=event.get("onHandDelta", 0),
                reserved_delta=event.get("reservedDelta", 0),
            ),
            on_hand_delta=event.get("onHandDelta", 0),
            reserved_delta=event.get("reservedDelta", 0),
            in_transit_delta=event.get("inTransitDelta", 0),
            on_hand=event["onHand"],
            reserved=event["reserved"],
            in_transit=event["inTransit"],
            available=event["available"],
            reference=event.get("reference"),
            at=datetime.fromisoformat(event["at"]) if event.get("at") else None,
        )


@strawberry.type(description="Units of one SKU on a transfer.")
class TransferLine:
    sku: str
    quantity: int = strawberry.field(description="Units sent.")
    received_quantity: int = strawberry.field(description="Units received so far.")
    discrepancy: str | None = strawberry.field(description="What was missing when the transfer was closed.")

    @strawberry.field(description="Units still expected.")
    def outstanding_quantity(self) -> int:
        return max(0, self.quantity - self.received_quantity) if self.discrepancy is None else 0


@strawberry.type(description="Stock moving from one location to another.")
class Transfer(Node):
    row: strawberry.Private[models.Transfer]
    status: TransferStatus  # type: ignore[valid-type]
    reference: str | None
    created_at: datetime
    shipped_at: datetime | None
    received_at: datetime | None
    lines: list[TransferLine]

    @strawberry.field(description="Where the stock comes from.")
    async def from_location(self, info: Info) -> Location:
        return Location.from_row(await info.context.loaders.location.load(self.row.from_location_id))

    @strawberry.field(description="Where the stock goes.")
    async def to_location(self, info: Info) -> Location:
        return Location.from_row(await info.context.loaders.location.load(self.row.to_location_id))

    @classmethod
    def from_row(cls, row: models.Transfer, lines: list[tuple[models.TransferLine, str]]) -> Transfer:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Transfer", row.id)),
            status=TransferStatus(row.status),
            reference=row.reference,
            created_at=row.created_at,
            shipped_at=row.shipped_at,
            received_at=row.received_at,
            lines=[
                TransferLine(
                    sku=sku,
                    quantity=line.quantity,
                    received_quantity=line.received_quantity,
                    discrepancy=line.discrepancy_note,
                )
                for line, sku in lines
            ],
        )


def _cover(days: float) -> float | None:
    return None if math.isinf(days) else round(days, 1)


@strawberry.type(description="One suggested move that evens out days of cover, with why.")
class TransferSuggestion:
    sku: str
    from_location_code: str
    to_location_code: str
    quantity: int
    from_cover_days_before: float | None = strawberry.field(description="Days of cover at the source (null: no sales).")
    from_cover_days_after: float | None
    to_cover_days_before: float | None = strawberry.field(description="Days of cover at the destination.")
    to_cover_days_after: float | None
    explanation: str = strawberry.field(description="Why this move, in words.")

    @classmethod
    def from_domain(cls, move: transfers.SuggestedMove) -> TransferSuggestion:
        return cls(
            sku=move.sku,
            from_location_code=move.from_code,
            to_location_code=move.to_code,
            quantity=move.quantity,
            from_cover_days_before=_cover(move.from_cover_before),
            from_cover_days_after=_cover(move.from_cover_after),
            to_cover_days_before=_cover(move.to_cover_before),
            to_cover_days_after=_cover(move.to_cover_after),
            explanation=move.explanation,
        )


# --- payloads ---------------------------------------------------------------


@strawberry.type(description="Result of stockCount.")
class StockCountPayload:
    stock_level: StockLevel | None = None
    difference: int | None = strawberry.field(default=None, description="counted − on hand before the count.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="Result of reorderPolicySet.")
class ReorderPolicySetPayload:
    stock_level: StockLevel | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="Result of transferSuggest.")
class TransferSuggestPayload:
    suggestions: list[TransferSuggestion] = strawberry.field(default_factory=list)
    transfers: list[Transfer] = strawberry.field(
        default_factory=list, description="The DRAFT transfers created (when create was true)."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="Result of transferCreate.")
class TransferCreatePayload:
    transfer: Transfer | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="Result of transferShip.")
class TransferShipPayload:
    transfer: Transfer | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="Result of transferReceive.")
class TransferReceivePayload:
    transfer: Transfer | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
