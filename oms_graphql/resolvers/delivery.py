"""Delivery operations: configure carriers and read their services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.db.models import utcnow
from oms_graphql.domain import carriers, delivery, dispatch, live_quotes, shipment_cancel, tracking
from oms_graphql.domain import order_tracking as customer_view
from oms_graphql.domain.access import Role
from oms_graphql.domain.errors import DomainError, InvalidTransition, NotFound
from oms_graphql.events.pubsub import hub
from oms_graphql.plugins.carrier_contract import RateQuote
from oms_graphql.plugins.contract import RetryableError
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
    OrderTracking,
    ShipmentCancelInput,
    ShipmentCreateInput,
    ShipmentDispatchInput,
    ShipmentEventsFilter,
    ShipmentMarkDeliveredInput,
    ShipmentPayload,
    ShipmentStatusChanged,
)
from oms_graphql.schema.ids import to_global_id
from oms_graphql.schema.payloads import user_errors
from oms_graphql.schema.permissions import ADMIN, OPERATE, PUBLIC, SIGNED_IN, STAFF, SYNC_READ
from oms_graphql.schema.types import Shipment

# How long deliveryOptions(live: true) waits for each carrier's quote.
LIVE_QUOTE_SECONDS = 5.0


async def _quote_within(call: live_quotes.QuoteCall) -> dict[tuple[str, str], RateQuote]:
    # Outside any transaction, in a worker thread (plugins are sync); a slow carrier is left behind.
    try:
        return await asyncio.wait_for(asyncio.to_thread(live_quotes.ask_carrier, call), LIVE_QUOTE_SECONDS)
    except TimeoutError:
        return {}


@strawberry.type
class DeliveryQuery:
    @strawberry.field(description="Configured carrier accounts.", permission_classes=SYNC_READ)
    async def carriers(self, info: Info) -> list[Carrier]:
        async with context(info).database.session() as session:
            rows = (await session.scalars(select(models.Carrier).order_by(models.Carrier.code))).all()
        return [Carrier.from_row(row) for row in rows]

    @strawberry.field(
        description="Every carrier service for the order with price, arrival, eligibility and why; the default "
        "choice is the cheapest eligible option that meets the promise, of the kind the customer asked for.",
        permission_classes=STAFF,
    )
    async def delivery_options(
        self,
        info: Info,
        order_id: strawberry.ID,
        live: Annotated[
            bool,
            strawberry.argument(
                description=f"true: ask the carriers that quote for their prices first (each within "
                f"{LIVE_QUOTE_SECONDS:g} s; one that does not answer in time keeps the rate table's estimate)."
            ),
        ] = False,
    ) -> list[DeliveryOption]:
        order = db_id(order_id, "Order", ("orderId",))
        quotes: delivery.Quotes = {}
        if live:
            async with context(info).database.session() as session:
                calls = await live_quotes.order_quote_calls(session, order)
            quotes = live_quotes.merge(await asyncio.gather(*(_quote_within(call) for call in calls)))
        async with context(info).database.session() as session:
            options = await delivery.delivery_options(session, order, quotes)
        return [DeliveryOption.from_domain(option) for option in options]

    @strawberry.field(
        description="An order's status and tracking for its customer, without a token: `contact` must be the "
        "phone or e-mail the order was placed with. Null when it does not match; failed tries are limited "
        "(RATE_LIMITED).",
        permission_classes=PUBLIC,
    )
    async def order_tracking(self, info: Info, number: str, contact: str) -> OrderTracking | None:
        try:
            async with context(info).database.session() as session:
                view = await customer_view.order_tracking(session, number.strip(), contact)
        except customer_view.TooManyAttempts as error:
            raise GraphQLError(error.message, extensions={"code": error.code}) from None
        return OrderTracking.from_domain(view) if view else None

    @strawberry.field(
        description="The carrier kinds installed plugins provide, with their settings keys.",
        permission_classes=SYNC_READ,
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
                packages=[package.to_domain() for package in input.packages] if input.packages is not None else None,
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
            shipment = await _shipment(session, input.id)
            if shipment.status != dispatch.PENDING:
                raise InvalidTransition(
                    f"This shipment is {shipment.status}; only a PENDING one is dispatched.", ("id",)
                )
            dispatch.request_dispatch(session, shipment)
            return {"shipment": Shipment.from_row(shipment)}

        return await run_mutation(info, ShipmentPayload, work)

    @strawberry.mutation(
        description="Mark a dispatched shipment delivered (the order becomes DELIVERED with its last one).",
        permission_classes=OPERATE,
    )
    async def shipment_mark_delivered(self, info: Info, input: ShipmentMarkDeliveredInput) -> ShipmentPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            shipment = await _shipment(session, input.id)
            at = input.delivered_at or utcnow()
            return {"shipment": Shipment.from_row(await tracking.mark_delivered(session, shipment, at, caller.label))}

        return await run_mutation(info, ShipmentPayload, work)

    @strawberry.mutation(
        description="Cancel a shipment: a PENDING one at once; a LABEL_CREATED or DISPATCHED one its carrier has "
        "not collected yet (no IN_TRANSIT or later event) at the carrier first, then here: stock back to reserved, "
        "the fulfillment order OPEN again, the order a step back, the channel told. A collected one is a return "
        "(INVALID_TRANSITION); a carrier's refusal is a userError (CARRIER_REFUSED) and changes nothing; a carrier "
        "out of reach queues the cancellation (CARRIER_UNAVAILABLE) and the shipment shows CANCELLED once it went "
        "through.",
        permission_classes=OPERATE,
    )
    async def shipment_cancel(self, info: Info, input: ShipmentCancelInput) -> ShipmentPayload:
        ctx = context(info)
        caller = await ctx.caller()
        redispatch = bool(input.redispatch)
        try:
            async with ctx.database.session() as session, session.begin():
                shipment = await _shipment(session, input.id)
                if shipment.status == dispatch.PENDING:
                    return ShipmentPayload(shipment=Shipment.from_row(await dispatch.cancel_pending(session, shipment)))
                call = await shipment_cancel.cancel_call(session, shipment)
                if call is None:
                    raise InvalidTransition("This shipment is CANCELLED already; nothing changed.", ("id",))
            # The carrier is asked outside any transaction (in a worker thread: its plugin is sync).
            try:
                await asyncio.to_thread(shipment_cancel.ask_carrier, call)
            except RetryableError as error:
                async with ctx.database.session() as session, session.begin():
                    shipment = await _shipment(session, input.id)
                    shipment_cancel.request_cancel(session, shipment, redispatch=redispatch, actor=caller.label)
                raise DomainError(
                    f"{call.carrier.code} could not be reached ({error}); the cancellation is queued and retried, "
                    "and the shipment shows CANCELLED once the carrier confirmed it.",
                    ("id",),
                    "CARRIER_UNAVAILABLE",
                ) from error
            async with ctx.database.session() as session, session.begin():
                await shipment_cancel.complete_cancel(
                    session, call.shipment_id, redispatch=redispatch, actor=caller.label
                )
                shipment = await _shipment(session, input.id)
                result, status = Shipment.from_row(shipment), shipment.status
            if status != "CANCELLED":  # the carrier reported it collected meanwhile (committed: its alert)
                raise InvalidTransition(
                    f"{call.carrier.code} cancelled the waybill, but it reported the shipment {status} meanwhile, so "
                    "it was not booked back here: check with the carrier where the parcel is (an alert says so too).",
                    ("id",),
                )
            return ShipmentPayload(shipment=result)
        except DomainError as error:
            return ShipmentPayload(user_errors=user_errors(error))


async def _shipment(session: AsyncSession, global_id: str) -> models.Shipment:
    shipment = await session.get(models.Shipment, db_id(global_id, "Shipment"), with_for_update=True)
    if shipment is None:
        raise NotFound("No shipment has this id.", ("id",))
    return shipment


@strawberry.type
class DeliverySubscription:
    @strawberry.subscription(
        description="Every shipment status change; customers receive only their own orders' shipments.",
        permission_classes=SIGNED_IN,
    )
    async def shipment_events(
        self, info: Info, filter: ShipmentEventsFilter | None = None
    ) -> AsyncGenerator[ShipmentStatusChanged, None]:
        caller = await context(info).caller()
        order_id = db_id(filter.order_id, "Order", ("filter", "orderId")) if filter and filter.order_id else None
        carrier = filter.carrier_code if filter else None
        async for event in hub.subscribe("shipment"):
            if caller.role == Role.CUSTOMER and event.get("customerId") != caller.customer_id:
                continue
            if (order_id is not None and event["orderId"] != order_id) or (carrier and event["carrier"] != carrier):
                continue
            yield ShipmentStatusChanged(
                shipment_id=strawberry.ID(to_global_id("Shipment", event["shipmentId"])),
                order_id=strawberry.ID(to_global_id("Order", event["orderId"])),
                carrier=event.get("carrier"),
                tracking_number=event.get("trackingNumber"),
                from_status=event.get("fromStatus"),
                status=event["status"],
                at=datetime.fromisoformat(event["at"]),
            )
