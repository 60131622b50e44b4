"""Root subscription fields, fed by the outbox relay through pub/sub."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.domain.access import Role
from oms_graphql.events.pubsub import hub
from oms_graphql.resolvers.common import context, db_id
from oms_graphql.schema.ids import to_global_id
from oms_graphql.schema.inputs import OrderEventsFilter
from oms_graphql.schema.permissions import SIGNED_IN
from oms_graphql.schema.types import Order, OrderStatus


@strawberry.type(description="An order changed status.")
class OrderStatusChanged:
    order_id: strawberry.ID
    number: str
    channel_code: str | None
    from_status: OrderStatus | None  # type: ignore[valid-type]
    status: OrderStatus  # type: ignore[valid-type]
    message: str | None
    at: datetime
    row_id: strawberry.Private[int]
    kind: str = strawberry.field(
        default="STATUS_CHANGED",
        description="STATUS_CHANGED, or what happened without a status change: RETURN_REQUESTED, "
        "RETURN_APPROVED, RETURN_REJECTED, RETURN_RECEIVED, REFUNDED, RETURN_CLOSED (then status is the "
        "order's unchanged status).",
    )

    @strawberry.field(description="The order as it is now.")
    async def order(self, info: Info) -> Order | None:
        # Read fresh: a websocket context lives long, so no DataLoader cache here.
        async with context(info).database.session() as session:
            row = await session.get(models.Order, self.row_id)
        return Order.from_row(row) if row else None


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every order status change; customers receive only their own orders' changes.",
        permission_classes=SIGNED_IN,
    )
    async def order_events(
        self, info: Info, filter: OrderEventsFilter | None = None
    ) -> AsyncGenerator[OrderStatusChanged, None]:
        caller = await context(info).caller()
        order_id = db_id(filter.order_id, "Order", ("filter", "orderId")) if filter and filter.order_id else None
        statuses = {getattr(s, "value", s) for s in filter.status} if filter and filter.status else None
        channel_ids: set[int] | None = None
        if filter and filter.channel_code:
            async with context(info).database.session() as session:
                channel_ids = set(
                    (
                        await session.scalars(
                            select(models.Channel.id).where(models.Channel.code == filter.channel_code)
                        )
                    ).all()
                )
        async for event in hub.subscribe("order"):
            if caller.role == Role.CUSTOMER and event.get("customerId") != caller.customer_id:
                continue
            if order_id is not None and event["orderId"] != order_id:
                continue
            if statuses is not None and event["status"] not in statuses:
                continue
            if channel_ids is not None and event.get("channelId") not in channel_ids:
                continue
            yield OrderStatusChanged(
                order_id=strawberry.ID(to_global_id("Order", event["orderId"])),
                number=event["number"],
                channel_code=event.get("channelCode"),
                from_status=event.get("fromStatus"),
                status=event["status"],
                message=event.get("message"),
                at=datetime.fromisoformat(event["at"]),
                row_id=event["orderId"],
                kind=event.get("kind", "STATUS_CHANGED"),
            )
