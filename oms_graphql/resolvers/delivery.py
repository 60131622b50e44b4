"""Delivery operations: configure carriers and read their services."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.domain import carriers, delivery, dispatch
from oms_graphql.domain.errors import InvalidTransition, NotFound
from oms_graphql.plugins.host import carrier_kinds
from oms_graphql.resolvers.common import context, db_id, run_mutation
from oms_graphql.schema.context import Caller
from oms_graphql.schema.delivery import (
    Carrier,
    CarrierCreateInput,
    CarrierCreatePayload,
    CarrierKind,
    CarrierUpdateInput,
    CarrierUpdatePayload,
    DeliveryOption,
    ShipmentCreateInput,
    ShipmentDispatchInput,
    ShipmentPayload,
)
from oms_graphql.schema.permissions import ADMIN, OPERATE, STAFF
from oms_graphql.schema.types import Shipment


@strawberry.type
class DeliveryQuery:
    @strawberry.field(description="Configured carrier accounts.", permission_classes=STAFF)
    async def carriers(self, info: Info) -> list[Carrier]:
        async with context(info).database.session() as session:
            rows = (await session.scalars(select(models.Carrier).order_by(models.Carrier.code))).all()
        return [Carrier.from_row(row) for row in rows]

    @strawberry.field(
        description="Every carrier service for the order with price, arrival, eligibility and why; the default "
        "choice is the cheapest eligible option that meets the promise, of the kind the customer asked for.",
        permission_classes=STAFF,
    )
    async def delivery_options(self, info: Info, order_id: strawberry.ID) -> list[DeliveryOption]:
        async with context(info).database.session() as session:
            options = await delivery.delivery_options(session, db_id(order_id, "Order", ("orderId",)))
        return [DeliveryOption.from_domain(option) for option in options]

    @strawberry.field(
        description="The carrier kinds installed plugins provide, with their settings keys.", permission_classes=STAFF
    )
    def carrier_kinds(self) -> list[CarrierKind]:
        return [CarrierKind.from_spec(kind) for kind in sorted(carrier_kinds().values(), key=lambda k: k.kind)]


@strawberry.type
class DeliveryMutation:
    @strawberry.mutation(
        description="Add a carrier account; its plugin checks the settings (problems name the key).",
        permission_classes=ADMIN,
    )
    async def carrier_create(self, info: Info, input: CarrierCreateInput) -> CarrierCreatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            return {"carrier": Carrier.from_row(await carriers.create_carrier(session, input.to_domain()))}

        return await run_mutation(info, CarrierCreatePayload, work)

    @strawberry.mutation(
        description="Change a carrier's name, settings (secrets write-only) or active flag.", permission_classes=ADMIN
    )
    async def carrier_update(self, info: Info, input: CarrierUpdateInput) -> CarrierUpdatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            carrier = await carriers.carrier_by_code(session, input.carrier_code)
            return {"carrier": Carrier.from_row(await carriers.update_carrier(session, carrier, input.to_domain()))}

        return await run_mutation(info, CarrierUpdatePayload, work)

    @strawberry.mutation(
        description="A PENDING shipment of what the fulfillment order still has to ship, with the chosen delivery "
        "option (or the carrier and service given); shipmentDispatch then gets its waybill and label.",
        permission_classes=OPERATE,
    )
    async def shipment_create(self, info: Info, input: ShipmentCreateInput) -> ShipmentPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            shipment = await dispatch.create_shipment(
                session,
                db_id(input.fulfillment_order_id, "FulfillmentOrder", ("fulfillmentOrderId",)),
                carrier_code=input.carrier_code,
                service_code=input.service_code,
                actor=caller.label,
            )
            return {"shipment": Shipment.from_row(shipment)}

        return await run_mutation(info, ShipmentPayload, work)

    @strawberry.mutation(
        description="Get the shipment's waybill and label from its carrier and book it DISPATCHED (queued: the "
        "shipment shows DISPATCHED, or its fulfillment order a DELIVERY_PROBLEM hold, once the carrier answered).",
        permission_classes=OPERATE,
    )
    async def shipment_dispatch(self, info: Info, input: ShipmentDispatchInput) -> ShipmentPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            shipment = await session.get(models.Shipment, db_id(input.id, "Shipment"))
            if shipment is None:
                raise NotFound("No shipment has this id.", ("id",))
            if shipment.status != dispatch.PENDING:
                raise InvalidTransition(
                    f"This shipment is {shipment.status}; only a PENDING one is dispatched.", ("id",)
                )
            dispatch.request_dispatch(session, shipment)
            return {"shipment": Shipment.from_row(shipment)}

        return await run_mutation(info, ShipmentPayload, work)
