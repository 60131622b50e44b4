"""Fulfillment order operations: move to another location, hold, release."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from oms_graphql.domain import fulfillment
from oms_graphql.domain.orders import HoldReason
from oms_graphql.resolvers.common import db_id, run_mutation
from oms_graphql.schema.context import Caller
from oms_graphql.schema.fulfillment import (
    FulfillmentOrder,
    FulfillmentOrderHoldInput,
    FulfillmentOrderMoveInput,
    FulfillmentOrderPayload,
    FulfillmentOrderReleaseInput,
)
from oms_graphql.schema.permissions import OPERATE


async def _locked(session: AsyncSession, global_id: str) -> Any:
    return await fulfillment.fulfillment_order_by_id(session, db_id(global_id, "FulfillmentOrder"), lock=True)


@strawberry.type
class FulfillmentMutation:
    @strawberry.mutation(
        description="Re-allocate an unshipped fulfillment order to another location: stock is reserved there and "
        "released here in one transaction (never oversold; INSUFFICIENT_STOCK names the location when short).",
        permission_classes=OPERATE,
    )
    async def fulfillment_order_move(self, info: Info, input: FulfillmentOrderMoveInput) -> FulfillmentOrderPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            moved = await fulfillment.move_fulfillment_order(
                session, await _locked(session, input.id), input.location_code, caller.label
            )
            return {"fulfillment_order": FulfillmentOrder.from_row(moved)}

        return await run_mutation(info, FulfillmentOrderPayload, work)

    @strawberry.mutation(
        description="Hold a fulfillment order: its dispatch stops; the order and its other fulfillment orders go on.",
        permission_classes=OPERATE,
    )
    async def fulfillment_order_hold(self, info: Info, input: FulfillmentOrderHoldInput) -> FulfillmentOrderPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            held = await fulfillment.hold_fulfillment_order(
                session, await _locked(session, input.id), HoldReason(input.reason), input.note, caller.label
            )
            return {"fulfillment_order": FulfillmentOrder.from_row(held)}

        return await run_mutation(info, FulfillmentOrderPayload, work)

    @strawberry.mutation(description="Release a fulfillment order's holds.", permission_classes=OPERATE)
    async def fulfillment_order_release(
        self, info: Info, input: FulfillmentOrderReleaseInput
    ) -> FulfillmentOrderPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            released = await fulfillment.release_fulfillment_order(
                session, await _locked(session, input.id), caller.label
            )
            return {"fulfillment_order": FulfillmentOrder.from_row(released)}

        return await run_mutation(info, FulfillmentOrderPayload, work)
