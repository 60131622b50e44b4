"""GraphQL types, inputs and payloads of delivery: carriers and their services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from oms_graphql.db import models
from oms_graphql.domain.carriers import CarrierChanges, CarrierSpec, services_of
from oms_graphql.domain.delivery import DeliveryOption as DomainDeliveryOption
from oms_graphql.domain.order_tracking import OrderTracking as DomainOrderTracking
from oms_graphql.domain.plugin_settings import secret_keys_set
from oms_graphql.plugins.carrier_contract import CarrierKind as CarrierKindSpec
from oms_graphql.plugins.carrier_contract import CarrierService as CarrierServiceSpec
from oms_graphql.schema.channel_types import ChannelSettingField
from oms_graphql.schema.ids import to_global_id
from oms_graphql.schema.packages import PackageInput
from oms_graphql.schema.scalars import JSON
from oms_graphql.schema.types import DeliveryOptionKind, Handling, Money, Node, Shipment, UserError, money


@strawberry.type(description="One service a carrier sells, with the limits checked before it is offered.")
class CarrierService:
    code: str = strawberry.field(description="The carrier's service code, e.g. SF 1 (顺丰特快).")
    name: str = strawberry.field(description="Display name.")
    kind: DeliveryOptionKind = strawberry.field(description="What kind of delivery it is.")
    handling: list[Handling] = strawberry.field(description="Special handling it can carry.")
    max_weight_grams: int | None = strawberry.field(description="Heaviest parcel it takes, if limited.")
    transit_days: int | None = strawberry.field(description="Usual days in transit, if known.")
    areas: list[str] = strawberry.field(description="Countries or regions (ISO 3166) it serves; empty: everywhere.")

    @classmethod
    def from_spec(cls, spec: CarrierServiceSpec) -> CarrierService:
        return cls(
            code=spec.code,
            name=spec.name,
            kind=DeliveryOptionKind(spec.kind.value),
            handling=[Handling(item.value) for item in spec.handling],
            max_weight_grams=spec.max_weight_grams,
            transit_days=spec.transit_days,
            areas=list(spec.areas),
        )


@strawberry.type(
    description="A configured carrier account (SF Express, EasyPost, Kuaidi100, store pickup, own fleet…)."
)
class Carrier(Node):
    row: strawberry.Private[models.Carrier]
    code: str = strawberry.field(description="The merchant's name for this account, e.g. sf-main.")
    name: str = strawberry.field(description="Display name.")
    kind: str = strawberry.field(description="The carrier plugin's kind, e.g. sf.")
    active: bool = strawberry.field(description="false: no new shipments go to this carrier.")

    @strawberry.field(description="The plugin-defined settings, without the secret ones (never returned).")
    def settings(self) -> JSON:
        return JSON(dict(self.row.settings or {}))

    @strawberry.field(description="Which secret settings (credentials) have a value; their values are write-only.")
    def secret_settings_set(self) -> list[str]:
        return secret_keys_set(self.row.secrets_encrypted)

    @strawberry.field(description="The services this carrier sells, as its plugin describes them.")
    def services(self) -> list[CarrierService]:
        return [CarrierService.from_spec(service) for service in services_of(self.row)]

    @classmethod
    def from_row(cls, row: models.Carrier) -> Carrier:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Carrier", row.id)),
            code=row.code,
            name=row.name,
            kind=row.kind,
            active=row.active,
        )


@strawberry.type(description="A carrier kind an installed plugin provides (what carrierCreate's `kind` accepts).")
class CarrierKind:
    kind: str = strawberry.field(description="The kind name, e.g. sf.")
    name: str = strawberry.field(description="Display name.")
    creates_waybills: bool = strawberry.field(description="false: tracking only, or no outside API.")
    receives_webhooks: bool = strawberry.field(
        description="Tracking is pushed to POST /webhooks/carriers/{carrierCode}."
    )
    settings: list[ChannelSettingField] = strawberry.field(description="The settings keys of this kind.")

    @classmethod
    def from_spec(cls, spec: CarrierKindSpec) -> CarrierKind:
        return cls(
            kind=spec.kind,
            name=spec.name,
            creates_waybills=spec.creates_waybills,
            receives_webhooks=spec.receives_webhooks,
            settings=[ChannelSettingField.from_spec(field) for field in spec.settings],
        )


@strawberry.type(description="A carrier service for an order: price, arrival, whether it can carry it, and why.")
class DeliveryOption:
    carrier_code: str = strawberry.field(description="The carrier account.")
    service_code: str = strawberry.field(description="The carrier's service.")
    kind: DeliveryOptionKind = strawberry.field(description="What kind of delivery it is.")
    price: Money | None = strawberry.field(
        description="The carrier's live quote when asked for (quoted: true), else the rate table's estimate."
    )
    quoted: bool = strawberry.field(description="true: the price is the carrier's quote; false: an estimate.")
    estimated_delivery_at: datetime | None = strawberry.field(description="When it would arrive, about.")
    eligible: bool = strawberry.field(description="false: a constraint rules it out (handling, weight, size, area).")
    meets_promise: bool = strawberry.field(description="It arrives by the order's promised date.")
    chosen: bool = strawberry.field(description="The default choice: the cheapest eligible one on time.")
    reason: str = strawberry.field(description="Why it is chosen, eligible or not.")

    @classmethod
    def from_domain(cls, option: DomainDeliveryOption) -> DeliveryOption:
        return cls(
            carrier_code=option.carrier_code,
            service_code=option.service_code,
            kind=DeliveryOptionKind(option.kind.value),
            price=money(option.price, option.currency) if option.price is not None and option.currency else None,
            estimated_delivery_at=option.estimated_delivery_at,
            quoted=option.quoted,
            eligible=option.eligible,
            meets_promise=option.meets_promise,
            chosen=option.chosen,
            reason=option.reason,
        )


@strawberry.type(description="One tracking event as a customer sees it.")
class TrackingEvent:
    code: str = strawberry.field(description="A ShipmentStatus.")
    description: str | None = strawberry.field(description="The carrier's text.")
    location: str | None = strawberry.field(description="Where, as the carrier says.")
    occurred_at: datetime = strawberry.field(description="When.")


@strawberry.type(description="One parcel of an order, as a customer sees it.")
class TrackingShipment:
    carrier: str | None = strawberry.field(description="The carrier account.")
    tracking_number: str | None = strawberry.field(description="The carrier's tracking number.")
    status: str = strawberry.field(description="A ShipmentStatus.")
    events: list[TrackingEvent] = strawberry.field(description="Oldest first.")


@strawberry.type(description="What a customer may see of an order without a token: no name, street or phone.")
class OrderTracking:
    number: str = strawberry.field(description="The order's number.")
    status: str = strawberry.field(description="An OrderStatus.")
    placed_at: datetime = strawberry.field(description="When it was placed.")
    promised_deliver_by: datetime | None = strawberry.field(description="The promised delivery, if any.")
    city: str | None = strawberry.field(description="The delivery city.")
    shipments: list[TrackingShipment] = strawberry.field(description="Its parcels.")

    @classmethod
    def from_domain(cls, view: DomainOrderTracking) -> OrderTracking:
        return cls(
            number=view.number,
            status=view.status,
            placed_at=view.placed_at,
            promised_deliver_by=view.promised_deliver_by,
            city=view.city,
            shipments=[
                TrackingShipment(
                    carrier=shipment.carrier,
                    tracking_number=shipment.tracking_number,
                    status=shipment.status,
                    events=[
                        TrackingEvent(
                            code=e.code, description=e.description, location=e.location, occurred_at=e.occurred_at
                        )
                        for e in shipment.events
                    ],
                )
                for shipment in view.shipments
            ],
        )


@strawberry.input(description="A new carrier account.")
class CarrierCreateInput:
    code: str = strawberry.field(description='The merchant\'s name for this account, e.g. "sf-main".')
    name: str = strawberry.field(description="Display name.")
    kind: str = strawberry.field(description='A carrier plugin\'s kind: "sf", "easypost", "kuaidi100"… (carrierKinds).')
    settings: JSON = strawberry.field(description="Plugin-defined; checked by the plugin (see carrierKinds).")

    def to_domain(self) -> CarrierSpec:
        return CarrierSpec(code=self.code, name=self.name, kind=self.kind, settings=self.settings)


@strawberry.input(description="Change a carrier account.")
class CarrierUpdateInput:
    carrier_code: str = strawberry.field(description="The carrier to change.")
    name: str | None = strawberry.field(default=None, description="Display name.")
    settings: JSON | None = strawberry.field(
        default=None,
        description="Settings keys to change (merged into the stored ones; a key set to null is removed). "
        "Secrets may be replaced, never read.",
    )
    active: bool | None = strawberry.field(default=None, description="false: no new shipments go to it.")

    def to_domain(self) -> CarrierChanges:
        return CarrierChanges(name=self.name, settings=self.settings, active=self.active)


@strawberry.input(description="A shipment of everything a fulfillment order still has to ship.")
class ShipmentCreateInput:
    fulfillment_order_id: strawberry.ID = strawberry.field(description="The fulfillment order.")
    carrier_code: str | None = strawberry.field(default=None, description="Default: the chosen delivery option.")
    service_code: str | None = strawberry.field(default=None, description="Default: the carrier's eligible one.")
    packages: list[PackageInput] | None = strawberry.field(
        default=None,
        description="The parcels as packed. Default: computed from the products' weights and sizes, as few as the "
        "service's per-parcel limits allow (first-fit decreasing by weight).",
    )


@strawberry.input(description="Get a PENDING shipment's waybill and label from its carrier (queued).")
class ShipmentDispatchInput:
    id: strawberry.ID = strawberry.field(description="The shipment.")


@strawberry.input(description="A dispatched shipment was delivered (a pickup handed over, an untracked carrier).")
class ShipmentMarkDeliveredInput:
    id: strawberry.ID = strawberry.field(description="The shipment.")
    delivered_at: datetime | None = strawberry.field(default=None, description="When (default: now).")


@strawberry.input(description="Cancel a shipment the carrier has not collected yet.")
class ShipmentCancelInput:
    id: strawberry.ID = strawberry.field(description="The shipment.")
    redispatch: bool | None = strawberry.field(
        default=False,
        description="true: once cancelled, dispatch its fulfillment order again by itself (where its location "
        "dispatches automatically); false: it waits OPEN for shipmentCreate.",
    )


@strawberry.input(description="Which shipment changes to receive.")
class ShipmentEventsFilter:
    order_id: strawberry.ID | None = strawberry.field(default=None, description="Only this order's shipments.")
    carrier_code: str | None = strawberry.field(default=None, description="Only this carrier's shipments.")


@strawberry.type(description="A shipment changed status (dispatched, in transit, delivered…).")
class ShipmentStatusChanged:
    shipment_id: strawberry.ID = strawberry.field(description="The shipment.")
    order_id: strawberry.ID = strawberry.field(description="Its order.")
    carrier: str | None = strawberry.field(description="The carrier account.")
    tracking_number: str | None = strawberry.field(description="The carrier's tracking number.")
    from_status: str | None = strawberry.field(description="Before.")
    status: str = strawberry.field(description="Now (a ShipmentStatus).")
    at: datetime = strawberry.field(description="When it happened (the carrier's time for tracking events).")


@strawberry.type(description="The result of a shipment mutation.")
class ShipmentPayload:
    shipment: Shipment | None = strawberry.field(default=None, description="The shipment as it is now.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="What was wrong.")


@strawberry.type(description="The result of carrierCreate.")
class CarrierCreatePayload:
    carrier: Carrier | None = strawberry.field(default=None, description="The new carrier.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="What was wrong; settings problems name the key, e.g. [input, settings, partnerId].",
    )


@strawberry.type(description="The result of carrierUpdate.")
class CarrierUpdatePayload:
    carrier: Carrier | None = strawberry.field(default=None, description="The carrier as it is now.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="What was wrong.")


__all__: list[Any] = []
