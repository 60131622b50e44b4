"""GraphQL inputs (names and fields per API.md) and their conversion to domain values."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from oms_graphql.domain.catalog import LocationDetails, ProductDetails
from oms_graphql.domain.customers import CustomerDetails
from oms_graphql.domain.orders import AddressDetails, LineDetails, NewOrder
from oms_graphql.schema.scalars import Decimal
from oms_graphql.schema.types import DeliveryOptionKind, Handling, HoldReason, LocationKind, OrderStatus


@strawberry.input(description="An amount of money.")
class MoneyInput:
    amount: Decimal  # type: ignore[valid-type]
    currency: str = strawberry.field(description="ISO 4217, e.g. CNY.")


@strawberry.input(description="A postal address.")
class AddressInput:
    country: str = strawberry.field(description="ISO 3166-1 alpha-2: CN, US.")
    line1: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    region: str | None = strawberry.field(default=None, description="Province or state.")
    city: str | None = None
    district: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    latitude: float | None = None
    longitude: float | None = None

    def to_domain(self) -> AddressDetails:
        return AddressDetails(
            country=self.country,
            line1=self.line1,
            name=self.name,
            phone=self.phone,
            email=self.email,
            region=self.region,
            city=self.city,
            district=self.district,
            line2=self.line2,
            postal_code=self.postal_code,
            latitude=self.latitude,
            longitude=self.longitude,
        )


@strawberry.input
class ProductCreateInput:
    sku: str
    name: str
    price: MoneyInput | None = None
    category: str | None = None
    weight_grams: int | None = None
    length_mm: int | None = None
    width_mm: int | None = None
    height_mm: int | None = None
    handling: list[Handling] | None = None  # type: ignore[valid-type]
    drop_ship: bool | None = strawberry.field(
        default=None,
        description="Sold from a supplier's stock: only SUPPLIER locations ship it, straight to the customer "
        "(default false; a SKU that is not drop-ship never ships from a SUPPLIER).",
    )

    def to_domain(self) -> ProductDetails:
        return ProductDetails(
            sku=self.sku,
            name=self.name,
            price_amount=self.price.amount if self.price else None,
            price_currency=self.price.currency if self.price else None,
            category=self.category,
            weight_grams=self.weight_grams,
            length_mm=self.length_mm,
            width_mm=self.width_mm,
            height_mm=self.height_mm,
            handling=[str(h.value if hasattr(h, "value") else h) for h in self.handling] if self.handling else None,
            drop_ship=self.drop_ship,
        )


@strawberry.input
class ProductUpdateInput(ProductCreateInput):
    id: strawberry.ID
    sku: str | None = None  # type: ignore[assignment]
    name: str | None = None  # type: ignore[assignment]


@strawberry.input
class LocationCreateInput:
    code: str
    name: str
    kind: LocationKind  # type: ignore[valid-type]
    address: AddressInput
    priority: int | None = strawberry.field(default=None, description="Lower is preferred (default 100).")
    can_ship: bool | None = None
    can_pickup: bool | None = strawberry.field(default=None, description="Default: true for stores.")
    auto_dispatch: bool | None = strawberry.field(
        default=None,
        description="Its allocated orders are dispatched by themselves through the chosen carrier (default true; "
        "false: by hand with shipmentCreate and shipmentDispatch).",
    )

    def to_domain(self) -> LocationDetails:
        return LocationDetails(
            code=self.code,
            name=self.name,
            kind=_value(self.kind),
            address=self.address.to_domain() if self.address else None,
            priority=self.priority,
            can_ship=self.can_ship,
            can_pickup=self.can_pickup,
            auto_dispatch=self.auto_dispatch,
        )


@strawberry.input
class LocationUpdateInput(LocationCreateInput):
    id: strawberry.ID
    code: str | None = None  # type: ignore[assignment]
    name: str | None = None  # type: ignore[assignment]
    kind: LocationKind | None = None  # type: ignore[assignment,valid-type]
    address: AddressInput | None = None  # type: ignore[assignment]
    active: bool | None = None

    def to_domain(self) -> LocationDetails:
        details = super().to_domain()
        return LocationDetails(**{**details.__dict__, "active": self.active})


@strawberry.input
class StockReceiveInput:
    sku: str
    location_code: str
    quantity: int
    reference: str | None = None


@strawberry.input
class StockAdjustInput:
    sku: str
    location_code: str
    delta: int = strawberry.field(description="Signed change of on-hand units.")
    reason: str = strawberry.field(description="Why (required): damaged, found, ...")


@strawberry.input
class CustomerInput:
    name: str | None = None
    phone: str | None = None
    email: str | None = None


@strawberry.input
class OrderLineInput:
    sku: str
    quantity: int
    unit_price: Decimal  # type: ignore[valid-type]
    discount: Decimal | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Discount on the whole line (default 0)."
    )

    def to_domain(self) -> LineDetails:
        from decimal import Decimal as D

        discount = self.discount if self.discount is not None else D("0")
        return LineDetails(sku=self.sku, quantity=self.quantity, unit_price=self.unit_price, discount=discount)


@strawberry.input(description="A manual order: phone, e-mail or in store.")
class OrderCreateInput:
    shipping_address: AddressInput
    lines: list[OrderLineInput]
    currency: str
    channel_code: str | None = strawberry.field(default=None, description='Default "manual".')
    external_id: str | None = strawberry.field(
        default=None, description="The channel's order id; (channelCode, externalId) is unique."
    )
    customer: CustomerInput | None = None
    shipping_fee: Decimal | None = None  # type: ignore[valid-type]
    discount: Decimal | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Discount on the whole order, beside the lines' own."
    )
    tax: Decimal | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Tax charged on top of the lines (default 0)."
    )
    delivery_option: DeliveryOptionKind | None = None  # type: ignore[valid-type]
    pickup_location_code: str | None = None
    paid: bool | None = strawberry.field(default=None, description="true: the order is created CONFIRMED.")
    placed_at: datetime | None = None
    note: str | None = None
    promised_deliver_by: datetime | None = strawberry.field(
        default=None, description="Delivery promised to the customer by then (default: the delivery option's SLA)."
    )
    promised_ship_by: datetime | None = strawberry.field(
        default=None,
        description="Dispatched by then, or the order is late (default, set at payment: the end of the payment's "
        "UTC day for SAME_DAY, 24 hours after payment otherwise).",
    )

    def to_domain(self, actor: str) -> NewOrder:
        from decimal import Decimal as D

        channel_code = self.channel_code or "manual"
        return NewOrder(
            channel_code=channel_code,
            currency=self.currency,
            shipping_address=self.shipping_address.to_domain(),
            lines=[line.to_domain() for line in self.lines],
            external_id=self.external_id,
            customer=CustomerDetails(
                name=self.customer.name,
                phone=self.customer.phone,
                email=self.customer.email,
            )
            if self.customer
            else None,
            shipping_fee=self.shipping_fee if self.shipping_fee is not None else D("0"),
            discount=self.discount if self.discount is not None else D("0"),
            tax=self.tax if self.tax is not None else D("0"),
            delivery_option=_value(self.delivery_option),
            pickup_location_code=self.pickup_location_code,
            paid=bool(self.paid),
            placed_at=self.placed_at,
            note=self.note,
            promised_at=self.promised_deliver_by,
            promised_ship_by=self.promised_ship_by,
            actor=actor,
        )


@strawberry.input
class OrderConfirmPaymentInput:
    id: strawberry.ID
    paid_at: datetime | None = None


@strawberry.input
class OrderHoldInput:
    id: strawberry.ID
    reason: HoldReason = strawberry.field(default=HoldReason.MANUAL)  # type: ignore[valid-type]
    note: str | None = None
    deadline: datetime | None = None


@strawberry.input
class OrderReleaseInput:
    id: strawberry.ID
    reason: HoldReason | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Release only holds of this reason (default: all)."
    )


@strawberry.input
class OrderCancelInput:
    id: strawberry.ID
    reason: str | None = None


@strawberry.input
class ProductFilter:
    search: str | None = strawberry.field(default=None, description="Part of the SKU or name.")
    category: str | None = None


@strawberry.input
class LocationFilter:
    kind: LocationKind | None = None  # type: ignore[valid-type]
    active: bool | None = None


@strawberry.input
class StockLevelFilter:
    sku: str | None = None
    location_code: str | None = None
    below_reorder_point: bool | None = None


@strawberry.input
class StockMovementFilter:
    sku: str | None = None
    location_code: str | None = None
    reason: str | None = None


@strawberry.input
class OrderFilter:
    status: list[OrderStatus] | None = None  # type: ignore[valid-type]
    channel_code: str | None = None
    customer_id: strawberry.ID | None = None
    placed_after: datetime | None = None
    placed_before: datetime | None = None
    search: str | None = strawberry.field(default=None, description="Order number, customer name or phone.")


@strawberry.enum
class OrderSort(enum.Enum):
    PLACED_AT_DESC = "PLACED_AT_DESC"
    PLACED_AT_ASC = "PLACED_AT_ASC"
    NUMBER_ASC = "NUMBER_ASC"
    TOTAL_DESC = "TOTAL_DESC"


@strawberry.input
class CustomerFilter:
    search: str | None = strawberry.field(default=None, description="Name, phone or e-mail.")


@strawberry.input
class OrderEventsFilter:
    order_id: strawberry.ID | None = None
    status: list[OrderStatus] | None = None  # type: ignore[valid-type]
    channel_code: str | None = None


def _value(enum_value: object) -> str | None:
    if enum_value is None:
        return None
    return str(getattr(enum_value, "value", enum_value))
