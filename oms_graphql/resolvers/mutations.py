"""Root mutation fields: parse input → call the domain → shape the payload."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.domain import catalog, inventory, orders
from oms_graphql.domain.inventory import Reference
from oms_graphql.resolvers.common import db_id, run_mutation
from oms_graphql.schema.context import Caller
from oms_graphql.schema.inputs import (
    LocationCreateInput,
    LocationUpdateInput,
    OrderCancelInput,
    OrderConfirmPaymentInput,
    OrderCreateInput,
    OrderHoldInput,
    OrderReleaseInput,
    ProductCreateInput,
    ProductUpdateInput,
    StockAdjustInput,
    StockReceiveInput,
)
from oms_graphql.schema.payloads import (
    LocationCreatePayload,
    LocationUpdatePayload,
    OrderCancelPayload,
    OrderConfirmPaymentPayload,
    OrderCreatePayload,
    OrderHoldPayload,
    OrderReleasePayload,
    ProductCreatePayload,
    ProductUpdatePayload,
    StockAdjustPayload,
    StockReceivePayload,
)
from oms_graphql.schema.permissions import ADMIN, OPERATE
from oms_graphql.schema.types import Location, Order, Product, StockLevel


async def _stock_level(session: AsyncSession, sku: str, location_code: str) -> StockLevel:
    row = await session.scalar(
        select(models.StockLevel)
        .join(models.Product, models.Product.id == models.StockLevel.product_id)
        .join(models.Location, models.Location.id == models.StockLevel.location_id)
        .where(models.Product.sku == sku, models.Location.code == location_code)
    )
    assert row is not None
    return StockLevel.from_row(row, sku)


async def _order(session: AsyncSession, global_id: str) -> models.Order:
    return await orders.order_by_id(session, db_id(global_id, "Order"), lock=True)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Add a product (SKU) to the catalog.", permission_classes=OPERATE)
    async def product_create(self, info: Info, input: ProductCreateInput) -> ProductCreatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            return {"product": Product.from_row(await catalog.create_product(session, input.to_domain()))}

        return await run_mutation(info, ProductCreatePayload, work)

    @strawberry.mutation(description="Change a product; omitted fields stay as they are.", permission_classes=OPERATE)
    async def product_update(self, info: Info, input: ProductUpdateInput) -> ProductUpdatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            product = await catalog.get_by_id(session, models.Product, db_id(input.id, "Product"))
            return {"product": Product.from_row(await catalog.update_product(session, product, input.to_domain()))}

        return await run_mutation(info, ProductUpdatePayload, work)

    @strawberry.mutation(description="Add a warehouse, store or supplier.", permission_classes=ADMIN)
    async def location_create(self, info: Info, input: LocationCreateInput) -> LocationCreatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            return {"location": Location.from_row(await catalog.create_location(session, input.to_domain()))}

        return await run_mutation(info, LocationCreatePayload, work)

    @strawberry.mutation(description="Change a location; omitted fields stay as they are.", permission_classes=ADMIN)
    async def location_update(self, info: Info, input: LocationUpdateInput) -> LocationUpdatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            location = await catalog.get_by_id(session, models.Location, db_id(input.id, "Location"))
            updated = await catalog.update_location(session, location, input.to_domain())
            return {"location": Location.from_row(updated)}

        return await run_mutation(info, LocationUpdatePayload, work)

    @strawberry.mutation(description="Book goods received at a location (a RECEIPT).", permission_classes=OPERATE)
    async def stock_receive(self, info: Info, input: StockReceiveInput) -> StockReceivePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            await inventory.receive_stock(
                session,
                sku=input.sku,
                location_code=input.location_code,
                quantity=input.quantity,
                reference=Reference(type="RECEIPT", text=input.reference, actor=caller.label),
            )
            return {"stock_level": await _stock_level(session, input.sku, input.location_code)}

        return await run_mutation(info, StockReceivePayload, work)

    @strawberry.mutation(description="Correct on-hand stock, with a reason (an ADJUST).", permission_classes=OPERATE)
    async def stock_adjust(self, info: Info, input: StockAdjustInput) -> StockAdjustPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            await inventory.adjust_stock(
                session,
                sku=input.sku,
                location_code=input.location_code,
                delta=input.delta,
                reason=input.reason,
                actor=caller.label,
            )
            return {"stock_level": await _stock_level(session, input.sku, input.location_code)}

        return await run_mutation(info, StockAdjustPayload, work)

    @strawberry.mutation(
        description="Create an order by hand (phone, e-mail, in store). The same channelCode and externalId "
        "twice returns the existing order.",
        permission_classes=OPERATE,
    )
    async def order_create(self, info: Info, input: OrderCreateInput) -> OrderCreatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            order, created = await orders.create_order(session, input.to_domain(caller.label))
            return {"order": Order.from_row(order), "created": created}

        return await run_mutation(info, OrderCreatePayload, work)

    @strawberry.mutation(
        description="Record payment: PENDING → CONFIRMED, then allocation.", permission_classes=OPERATE
    )
    async def order_confirm_payment(self, info: Info, input: OrderConfirmPaymentInput) -> OrderConfirmPaymentPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            order_id = db_id(input.id, "Order")
            order = await orders.confirm_payment_of(session, order_id, input.paid_at, caller.label)
            return {"order": Order.from_row(order)}

        return await run_mutation(info, OrderConfirmPaymentPayload, work)

    @strawberry.mutation(description="Put a typed hold on an order.", permission_classes=OPERATE)
    async def order_hold(self, info: Info, input: OrderHoldInput) -> OrderHoldPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            order = await _order(session, input.id)
            await orders.place_hold(
                session,
                order,
                orders.HoldReason(str(getattr(input.reason, "value", input.reason))),
                note=input.note,
                actor=caller.label,
                deadline=input.deadline,
            )
            return {"order": Order.from_row(order)}

        return await run_mutation(info, OrderHoldPayload, work)

    @strawberry.mutation(description="Release holds; the last one resumes the order.", permission_classes=OPERATE)
    async def order_release(self, info: Info, input: OrderReleaseInput) -> OrderReleasePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            reason = orders.HoldReason(getattr(input.reason, "value", input.reason)) if input.reason else None
            order = await orders.release_holds(
                session, await _order(session, input.id), reason=reason, actor=caller.label
            )
            return {"order": Order.from_row(order)}

        return await run_mutation(info, OrderReleasePayload, work)

    @strawberry.mutation(
        description="Cancel an order not yet shipped; its stock is released.", permission_classes=OPERATE
    )
    async def order_cancel(self, info: Info, input: OrderCancelInput) -> OrderCancelPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            order = await orders.cancel_order(session, await _order(session, input.id), input.reason, caller.label)
            return {"order": Order.from_row(order)}

        return await run_mutation(info, OrderCancelPayload, work)
