"""GraphQL types, inputs and payloads of fulfillment orders."""

from __future__ import annotations

import enum
from typing import Any

import strawberry
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.schema.ids import to_global_id
from oms_graphql.schema.types import Hold, HoldReason, Location, Node, Order, Shipment, UserError


@strawberry.enum(description="Where a fulfillment order stands.")
class FulfillmentOrderStatus(enum.Enum):
    OPEN = strawberry.enum_value("OPEN", description="Allocated, waiting to be shipped.")
    ON_HOLD = strawberry.enum_value("ON_HOLD", description="Held: not dispatched until released.")
    IN_PROGRESS = strawberry.enum_value("IN_PROGRESS", description="Part of it has shipped.")
    CLOSED = strawberry.enum_value("CLOSED", description="Everything in it has shipped.")
    CANCELLED = strawberry.enum_value("CANCELLED", description="Cancelled, or merged into another on a move.")


@strawberry.type(description="One order line's units in a fulfillment order.")
class FulfillmentOrderLine:
    line_no: int = strawberry.field(description="The order line's number.")
    sku: str | None = strawberry.field(description="Our SKU.")
    quantity: int = strawberry.field(description="Units this location is to ship.")
    shipped_quantity: int = strawberry.field(description="Units of them shipped so far.")


@strawberry.type(description="The part of an order one location picks, packs and ships (its allocations there).")
class FulfillmentOrder(Node):
    row: strawberry.Private[models.FulfillmentOrder]
    status: FulfillmentOrderStatus

    @strawberry.field(description="The location that ships it.")
    async def location(self, info: Info) -> Location:
        return Location.from_row(await info.context.loaders.location.load(self.row.location_id))

    @strawberry.field(description="The customer's order it belongs to.")
    async def order(self, info: Info) -> Order:
        return Order.from_row(await info.context.loaders.order.load(self.row.order_id))

    @strawberry.field(description="What it ships, per order line.")
    async def lines(self, info: Info) -> list[FulfillmentOrderLine]:
        allocations = await info.context.loaders.allocations_by_order.load(self.row.order_id)
        order_lines = {line.id: line for line in await info.context.loaders.lines_by_order.load(self.row.order_id)}
        by_line: dict[int, FulfillmentOrderLine] = {}
        for allocation in allocations:
            if allocation.fulfillment_order_id != self.row.id or allocation.status == "RELEASED":
                continue
            line = order_lines[allocation.order_line_id]
            entry = by_line.setdefault(
                line.id, FulfillmentOrderLine(line_no=line.line_no, sku=line.sku, quantity=0, shipped_quantity=0)
            )
            entry.quantity += allocation.quantity
            entry.shipped_quantity += allocation.shipped_quantity
        return sorted(by_line.values(), key=lambda entry: entry.line_no)

    @strawberry.field(description="Shipments made from it.")
    async def shipments(self, info: Info) -> list[Shipment]:
        rows = await info.context.loaders.shipments_by_order.load(self.row.order_id)
        return [Shipment.from_row(row) for row in rows if row.fulfillment_order_id == self.row.id]

    @strawberry.field(description="Its own holds (they stop its dispatch only), open and released.")
    async def holds(self, info: Info) -> list[Hold]:
        rows = await info.context.loaders.holds_by_order.load(self.row.order_id)
        return [Hold.from_row(row) for row in rows if row.fulfillment_order_id == self.row.id]

    @classmethod
    def from_row(cls, row: models.FulfillmentOrder) -> FulfillmentOrder:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("FulfillmentOrder", row.id)),
            status=FulfillmentOrderStatus(row.status),
        )


@strawberry.input(description="Re-allocate an unshipped fulfillment order to another location.")
class FulfillmentOrderMoveInput:
    id: strawberry.ID = strawberry.field(description="The fulfillment order.")
    location_code: str = strawberry.field(description="Where it ships from now.")


@strawberry.input(description="Hold a fulfillment order: its dispatch stops, the rest of the order goes on.")
class FulfillmentOrderHoldInput:
    id: strawberry.ID = strawberry.field(description="The fulfillment order.")
    reason: HoldReason = strawberry.field(default=HoldReason.MANUAL, description="Why.")  # type: ignore[valid-type]
    note: str | None = strawberry.field(default=None, description="For the people who release it.")


@strawberry.input(description="Release a fulfillment order's holds.")
class FulfillmentOrderReleaseInput:
    id: strawberry.ID = strawberry.field(description="The fulfillment order.")


@strawberry.type(description="The result of fulfillmentOrderMove, fulfillmentOrderHold or fulfillmentOrderRelease.")
class FulfillmentOrderPayload:
    fulfillment_order: FulfillmentOrder | None = strawberry.field(
        default=None,
        description="The fulfillment order as it is now (after a move: the one at the new location, which may be "
        "one the order had there already).",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="What was wrong.")


__all__: list[Any] = []
