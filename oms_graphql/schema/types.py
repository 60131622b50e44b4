"""GraphQL object types. Plain attributes are sync; relations go through DataLoaders."""

from __future__ import annotations

import asyncio
import enum
import inspect
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from decimal import Decimal as PyDecimal
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

from oms_graphql.db import models
from oms_graphql.db.models import utcnow
from oms_graphql.domain import orders as order_rules
from oms_graphql.domain.inventory import MovementReason as DomainMovementReason
from oms_graphql.domain.inventory import movement_quantity
from oms_graphql.domain.money import round_money
from oms_graphql.domain.tracking import is_late
from oms_graphql.schema.ids import to_global_id
from oms_graphql.schema.packages import Package
from oms_graphql.schema.reconciliation import ChannelReconcileSummary
from oms_graphql.schema.relay import Connection, Keyset, paginate_keyset
from oms_graphql.schema.scalars import JSON, Decimal

if TYPE_CHECKING:
    from oms_graphql.schema.customers import CustomerIdentity, CustomerPreferences
    from oms_graphql.schema.fulfillment import FulfillmentOrder
    from oms_graphql.schema.returns import Return

OrderStatus = strawberry.enum(order_rules.OrderStatus, name="OrderStatus", description="Where an order is in its life.")
HoldReason = strawberry.enum(order_rules.HoldReason, name="HoldReason", description="Why an order is held.")
MovementReason = strawberry.enum(DomainMovementReason, name="MovementReason", description="Why stock moved.")


@strawberry.enum(description="Kind of stock location.")
class LocationKind(enum.Enum):
    WAREHOUSE = "WAREHOUSE"
    STORE = "STORE"
    SUPPLIER = "SUPPLIER"


@strawberry.enum(description="Special handling an item needs.")
class Handling(enum.Enum):
    FRAGILE = "FRAGILE"
    COLD_CHAIN = "COLD_CHAIN"
    OVERSIZE = "OVERSIZE"
    HAZMAT = "HAZMAT"


@strawberry.enum(description="How the customer wants the order delivered.")
class DeliveryOptionKind(enum.Enum):
    STANDARD = "STANDARD"
    EXPRESS = "EXPRESS"
    SAME_DAY = "SAME_DAY"
    PICKUP = "PICKUP"


def loaded(loader: DataLoader[Any, Any], key: Any, shape: Callable[[Any], Any]) -> Any:
    """``shape`` of what ``loader`` holds for ``key``: now, when a page prefetched it (see
    ``prefetch_orders``), so the field resolves synchronously; else once the loader has it."""
    future = loader.cache_map.get(key)
    if future is not None and future.done() and not future.cancelled() and future.exception() is None:
        return shape(future.result())
    return _shape_when_loaded(loader.load(key), shape)


async def _shape_when_loaded(value: Awaitable[Any], shape: Callable[[Any], Any]) -> Any:
    shaped = shape(await value)
    return await shaped if inspect.isawaitable(shaped) else shaped  # a shape may load more


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="Global, opaque id.")


@strawberry.type(description="A business rule or input problem; nothing was written.")
class UserError:
    field: list[str] | None = strawberry.field(description="Path to the input field at fault, if any.")
    message: str = strawberry.field(description="What went wrong and what to do next.")
    code: str = strawberry.field(description="Stable machine-readable code, e.g. INVALID_TRANSITION.")


@strawberry.type(description="An amount of money in one currency.")
class Money:
    amount: Decimal = strawberry.field(description="Exact amount, as a decimal string.")  # type: ignore[valid-type]
    currency: str = strawberry.field(description="ISO 4217 code, e.g. CNY.")


def money(amount: PyDecimal, currency: str) -> Money:
    """Money rounded to the currency's minor unit (PostgreSQL keeps four decimals)."""
    return Money(amount=Decimal(round_money(PyDecimal(amount), currency)), currency=currency)


@strawberry.type(description="A postal address, with coordinates when known.")
class Address:
    name: str | None
    phone: str | None
    email: str | None
    country: str = strawberry.field(description="ISO 3166-1 alpha-2.")
    region: str | None
    city: str | None
    district: str | None
    line1: str
    line2: str | None
    postal_code: str | None
    latitude: float | None
    longitude: float | None
    # An order's address is a person's (masked for some roles); a location's is the merchant's.
    personal: strawberry.Private[bool]

    @classmethod
    def from_row(cls, row: Any) -> Address:
        return cls(
            personal=isinstance(row, models.Address),
            name=getattr(row, "name", None) if isinstance(row, models.Address) else None,
            phone=row.phone,
            email=getattr(row, "email", None) if isinstance(row, models.Address) else None,
            country=row.country,
            region=row.region,
            city=row.city,
            district=row.district,
            line1=row.line1,
            line2=row.line2,
            postal_code=row.postal_code,
            latitude=row.latitude,
            longitude=row.longitude,
        )


@strawberry.type(description="A product (one SKU) in the catalog.")
class Product(Node):
    row: strawberry.Private[models.Product]
    sku: str
    name: str
    category: str | None
    weight_grams: int | None
    length_mm: int | None
    width_mm: int | None
    height_mm: int | None
    handling: list[Handling]  # type: ignore[valid-type]
    drop_ship: bool = strawberry.field(description="Shipped by a SUPPLIER location straight to the customer.")

    @strawberry.field(description="List price.")
    def price(self) -> Money | None:
        if self.row.price_amount is None or self.row.price_currency is None:
            return None
        return money(self.row.price_amount, self.row.price_currency)

    @classmethod
    def from_row(cls, row: models.Product) -> Product:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Product", row.id)),
            sku=row.sku,
            name=row.name,
            category=row.category,
            weight_grams=row.weight_grams,
            length_mm=row.length_mm,
            width_mm=row.width_mm,
            height_mm=row.height_mm,
            handling=[Handling(value) for value in row.handling or []],
            drop_ship=row.drop_ship,
        )


@strawberry.type(description="A warehouse, store or drop-ship supplier that holds stock.")
class Location(Node):
    row: strawberry.Private[models.Location]
    code: str
    name: str
    kind: LocationKind  # type: ignore[valid-type]
    # Nullable: a customer reaching a location through its order is refused these (schema/field_rules.py).
    priority: int | None = strawberry.field(description="Lower is preferred when allocating.")
    can_ship: bool | None
    can_pickup: bool
    auto_dispatch: bool | None = strawberry.field(description="Its allocated orders are dispatched by themselves.")
    active: bool | None

    @strawberry.field
    def address(self) -> Address:
        return Address.from_row(self.row)

    @classmethod
    def from_row(cls, row: models.Location) -> Location:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Location", row.id)),
            code=row.code,
            name=row.name,
            kind=LocationKind(row.kind),
            priority=row.priority,
            can_ship=row.can_ship,
            can_pickup=row.can_pickup,
            auto_dispatch=row.auto_dispatch,
            active=row.active,
        )


@strawberry.type(description="Stock of one SKU at one location.")
class StockLevel:
    row: strawberry.Private[models.StockLevel]
    sku: str
    on_hand: int = strawberry.field(description="Units physically there.")
    reserved: int = strawberry.field(description="Units promised to orders, not yet shipped.")
    in_transit: int = strawberry.field(description="Units on their way here by transfer.")
    safety_stock: int
    reorder_point: int | None
    reorder_quantity: int | None

    @strawberry.field(description="on hand − reserved − safety stock, never below zero.")
    def available(self) -> int:
        return max(0, self.on_hand - self.reserved - self.safety_stock)

    @strawberry.field
    async def location(self, info: Info) -> Location:
        return Location.from_row(await info.context.loaders.location.load(self.row.location_id))

    @classmethod
    def from_row(cls, row: models.StockLevel, sku: str) -> StockLevel:
        return cls(
            row=row,
            sku=sku,
            on_hand=row.on_hand,
            reserved=row.reserved,
            in_transit=row.in_transit,
            safety_stock=row.safety_stock,
            reorder_point=row.reorder_point,
            reorder_quantity=row.reorder_quantity,
        )


# How a client reads the ledger; the StockMovement and StockEvent fields say the same.
LEDGER_RULE = (
    "Summed over the ledger of one SKU and location: `quantity` of every reason but RESERVE/RELEASE "
    "gives onHand, `quantity` of RESERVE and RELEASE gives reserved, and `inTransitDelta` gives inTransit."
)


@strawberry.type(
    description="One ledger row: a change of stock and its cause. A RESERVE/RELEASE row moves reserved only; "
    "any other row moves on hand and/or in transit, never reserved (a shipment books the reservation it uses up "
    "as a RELEASE row next to its SHIP row). " + LEDGER_RULE
)
class StockMovement(Node):
    row: strawberry.Private[models.StockMovement]
    sku: str = strawberry.field(description="The SKU that moved.")
    reason: str = strawberry.field(
        description="RECEIPT RESERVE RELEASE SHIP SHIP_CANCELLED RETURN EXCHANGE ADJUST COUNT TRANSFER_OUT TRANSFER_IN "
        "WRITE_OFF. SHIP_CANCELLED puts back on hand what a shipment cancelled at its carrier had shipped (its "
        "reservation comes back in a RESERVE row beside it). TRANSFER_OUT is booked at both ends of a transfer "
        "(on hand leaves the source, in transit appears at the destination); a WRITE_OFF of units lost on a "
        "closed transfer moves in transit only."
    )
    quantity: int = strawberry.field(
        description="Signed change of on hand; for RESERVE/RELEASE, of reserved. Never a change of in transit: "
        "a row that only moves in transit (TRANSFER_OUT at the destination, WRITE_OFF of units lost on the way) "
        "has quantity 0 and its change in inTransitDelta."
    )
    on_hand_delta: int = strawberry.field(description="Signed change of on hand (0 for RESERVE/RELEASE).")
    reserved_delta: int = strawberry.field(description="Signed change of reserved (0 unless RESERVE/RELEASE).")
    in_transit_delta: int = strawberry.field(
        description="Signed change of in transit: + at the destination when a transfer ships, − as it is "
        "received (TRANSFER_IN) or written off when it is closed short."
    )
    reference: str | None = strawberry.field(description="What caused it: order number, shipment, transfer, ...")
    actor: str | None = strawberry.field(description="Who or what booked it.")
    created_at: datetime = strawberry.field(description="When it was booked (UTC).")

    @strawberry.field(description="Where the stock moved.")
    async def location(self, info: Info) -> Location:
        return Location.from_row(await info.context.loaders.location.load(self.row.location_id))

    @classmethod
    def from_row(cls, row: models.StockMovement, sku: str) -> StockMovement:
        quantity = movement_quantity(row.reason, on_hand_delta=row.on_hand_delta, reserved_delta=row.reserved_delta)
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("StockMovement", row.id)),
            sku=sku,
            reason=row.reason,
            quantity=quantity,
            on_hand_delta=row.on_hand_delta,
            reserved_delta=row.reserved_delta,
            in_transit_delta=row.in_transit_delta,
            reference=row.reference,
            actor=row.actor,
            created_at=row.created_at,
        )


@strawberry.type(description="A sales channel: a marketplace shop, the POS, or manual orders.")
class Channel(Node):
    row: strawberry.Private[models.Channel]
    code: str
    name: str
    kind: str
    # Nullable: a customer reaching its order's channel is refused these (schema/field_rules.py).
    stock_share_percent: int | None
    stock_buffer: int | None
    poll_interval_seconds: int | None
    sync_from: datetime | None
    sync_cursor: datetime | None = strawberry.field(description="Orders changed before this time are imported.")
    active: bool | None

    @strawberry.field(description="The plugin-defined settings, without the secret ones (never returned).")
    def settings(self) -> JSON | None:
        return JSON(dict(self.row.settings or {}))

    @strawberry.field(description="Which secret settings (credentials) have a value; their values are write-only.")
    def secret_settings_set(self) -> list[str] | None:
        from oms_graphql.domain.plugin_settings import secret_keys_set

        return secret_keys_set(self.row.secrets_encrypted)

    @strawberry.field(description="When the last pull of orders finished.")
    def last_pulled_at(self) -> datetime | None:
        return self.row.last_pulled_at

    @strawberry.field(description="The last sync problem (pull or stock push), cleared by the next good pull.")
    def last_error(self) -> str | None:
        return self.row.last_error

    @strawberry.field(description="When lastError happened.")
    def last_error_at(self) -> datetime | None:
        return self.row.last_error_at

    @strawberry.field(
        description="What the last reconciliation found (the trailing window listed again; see channelReconcile)."
    )
    def last_reconcile(self) -> ChannelReconcileSummary | None:
        return ChannelReconcileSummary.from_json(self.row.last_reconcile)

    @classmethod
    def from_row(cls, row: models.Channel) -> Channel:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Channel", row.id)),
            code=row.code,
            name=row.name,
            kind=row.kind,
            stock_share_percent=row.stock_share_percent,
            stock_buffer=row.stock_buffer,
            poll_interval_seconds=row.poll_interval_seconds,
            sync_from=row.sync_from,
            sync_cursor=row.sync_cursor,
            active=row.active,
        )


@strawberry.type(description="One person across channels.")
class Customer(Node):
    row: strawberry.Private[models.Customer]
    name: str | None
    phone: str | None = strawberry.field(description="In E.164, e.g. +8613800138000.")
    email: str | None
    created_at: datetime
    tags: list[str] = strawberry.field(description="The merchant's tags.")
    note: str | None = strawberry.field(description="The merchant's note.")
    erased_at: datetime | None = strawberry.field(
        description="When the personal data was erased (customerErase); the orders stay."
    )

    @strawberry.field(description="Orders placed by this customer, cancelled ones included.")
    async def order_count(self, info: Info) -> int:
        return int((await info.context.loaders.customer_summary.load(self.row.id)).order_count)

    @strawberry.field(
        description="Per currency: the totals of the orders not cancelled, less what was refunded on them."
    )
    async def lifetime_value(self, info: Info) -> list[Money]:
        summary = await info.context.loaders.customer_summary.load(self.row.id)
        return [money(amount, currency) for currency, amount in sorted(summary.lifetime_value.items())]

    @strawberry.field(description="When the first order was placed.")
    async def first_order_at(self, info: Info) -> datetime | None:
        return (await info.context.loaders.customer_summary.load(self.row.id)).first_order_at  # type: ignore[no-any-return]

    @strawberry.field(description="When the latest order was placed.")
    async def last_order_at(self, info: Info) -> datetime | None:
        return (await info.context.loaders.customer_summary.load(self.row.id)).last_order_at  # type: ignore[no-any-return]

    @strawberry.field(description="The phones, e-mails and channel buyer ids this person is recognised by.")
    async def identities(
        self, info: Info
    ) -> list[Annotated[CustomerIdentity, strawberry.lazy("oms_graphql.schema.customers")]]:
        from oms_graphql.schema.customers import CustomerIdentity

        return [
            CustomerIdentity.from_row(row)
            for row in await info.context.loaders.identities_by_customer.load(self.row.id)
        ]

    @strawberry.field(description="Top SKUs and categories, preferred channel and delivery option.")
    async def preferences(
        self, info: Info
    ) -> Annotated[CustomerPreferences, strawberry.lazy("oms_graphql.schema.customers")]:
        from oms_graphql.schema.customers import CustomerPreferences

        return CustomerPreferences.from_domain(await info.context.loaders.customer_preferences.load(self.row.id))

    @strawberry.field(description="The customer's orders, newest first.")
    async def orders(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[Order]:
        query = sa.select(models.Order).where(models.Order.customer_id == self.row.id)
        connection = await paginate_keyset(
            info.context.database, query, ORDERS_NEWEST_FIRST, Order.from_row, first=first, after=after
        )
        await prefetch_orders(info, connection)
        return connection

    @classmethod
    def from_row(cls, row: models.Customer) -> Customer:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Customer", row.id)),
            name=row.name,
            phone=row.phone,
            email=row.email,
            created_at=row.created_at,
            tags=list(row.tags or []),
            note=row.note,
            erased_at=row.erased_at,
        )


@strawberry.type(description="One line of an order.")
class OrderLine:
    row: strawberry.Private[models.OrderLine]
    currency: strawberry.Private[str]
    line_no: int
    sku: str | None = strawberry.field(description="Our SKU; null while the channel's SKU is unmapped.")
    channel_sku_id: str | None
    title: str | None
    quantity: int
    refunded_quantity: int
    returned_quantity: int = strawberry.field(description="Units received back on returns (RESELLABLE or DAMAGED).")

    @strawberry.field
    def unit_price(self) -> Money:
        return money(self.row.unit_price, self.currency)

    @strawberry.field(description="Discount on the whole line.")
    def discount(self) -> Money:
        return money(self.row.discount, self.currency)

    @strawberry.field(description="quantity × unit price − discount.")
    def total(self) -> Money:
        return money(self.row.quantity * self.row.unit_price - self.row.discount, self.currency)

    @classmethod
    def from_row(cls, row: models.OrderLine, currency: str) -> OrderLine:
        return cls(
            row=row,
            currency=currency,
            line_no=row.line_no,
            sku=row.sku,
            channel_sku_id=row.channel_sku_id,
            title=row.title,
            quantity=row.quantity,
            refunded_quantity=row.refunded_quantity,
            returned_quantity=row.returned_quantity,
        )


@strawberry.type(description="Stock of one order line reserved at one location.")
class Allocation:
    row: strawberry.Private[models.Allocation]
    sku: str | None
    quantity: int
    shipped_quantity: int
    status: str = strawberry.field(description="RESERVED, SHIPPED or RELEASED.")
    reason: str | None = strawberry.field(
        description="Why this location was chosen, against the next best plan "
        "(WH-SH: ships all 3 lines, 212 km, est. ¥14.00; WH-BJ: 1,080 km, est. ¥18.00)."
    )
    score: float | None = strawberry.field(
        description="This location's part of the winning plan's score, in the order's currency (estimated "
        "shipping cost plus weights for distance, priority and stock balance; lower is better). The plan's "
        "score is the sum over its locations. Null for allocations made by hand or before the engine."
    )

    @strawberry.field
    def location(self, info: Info) -> Location:
        return loaded(info.context.loaders.location, self.row.location_id, Location.from_row)  # type: ignore[no-any-return]


@strawberry.type(description="A typed reason that stops an order; ON_HOLD while one is open.")
class Hold:
    reason: str
    note: str | None
    raised_by: str | None
    created_at: datetime
    deadline: datetime | None
    released_at: datetime | None

    @classmethod
    def from_row(cls, row: models.Hold) -> Hold:
        return cls(
            reason=row.reason,
            note=row.note,
            raised_by=row.raised_by,
            created_at=row.created_at,
            deadline=row.deadline,
            released_at=row.released_at,
        )


@strawberry.type(description="A tracking event of a shipment.")
class ShipmentEvent:
    code: str
    description: str | None
    location: str | None
    occurred_at: datetime


@strawberry.type(description="A parcel (or pickup) with some of an order's lines.")
class Shipment(Node):
    row: strawberry.Private[models.Shipment]
    status: str
    carrier: str | None
    service: str | None
    tracking_number: str | None
    created_at: datetime
    dispatched_at: datetime | None
    delivered_at: datetime | None

    @strawberry.field(description="GET this URL (with the same token) for the label PDF, once dispatched.")
    def label_url(self) -> str | None:
        return self.row.label_url

    @strawberry.field(
        description="Dispatched after its order's promisedShipBy (or not dispatched yet and past it), or not "
        "delivered by its promisedDeliverBy (or delivered after it). Never for a cancelled shipment."
    )
    def late(self, info: Info) -> bool:
        return loaded(info.context.loaders.order, self.row.order_id, self._late_for)  # type: ignore[no-any-return]

    def _late_for(self, order: models.Order | None) -> bool:
        if order is None or self.row.status == "CANCELLED":
            return False
        return is_late(self.row, order, utcnow())

    @strawberry.field(description="When its sales channel accepted the news that it shipped (null: not yet, or none).")
    def channel_confirmed_at(self) -> datetime | None:
        return self.row.channel_confirmed_at

    @strawberry.field(description="Its parcels, as packed (given to shipmentCreate, or computed from the products).")
    def packages(self) -> list[Package]:
        return [Package.from_json(entry) for entry in self.row.packages or []]

    @strawberry.field(description="Which delivery option was chosen for it, and why.")
    def delivery_choice(self) -> str | None:
        return self.row.option_reason

    @strawberry.field
    async def events(self, info: Info) -> list[ShipmentEvent]:
        rows = await info.context.loaders.shipment_events.load(self.row.id)
        return [
            ShipmentEvent(code=r.code, description=r.description, location=r.location, occurred_at=r.occurred_at)
            for r in rows
        ]

    @classmethod
    def from_row(cls, row: models.Shipment) -> Shipment:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Shipment", row.id)),
            status=row.status,
            carrier=row.carrier,
            service=row.service,
            tracking_number=row.tracking_number,
            created_at=row.created_at,
            dispatched_at=row.dispatched_at,
            delivered_at=row.delivered_at,
        )


@strawberry.type(description="A change in an order's life (status history).")
class OrderEvent:
    kind: str
    from_status: str | None
    to_status: str | None
    message: str | None
    actor: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.OrderEvent) -> OrderEvent:
        return cls(
            kind=row.kind,
            from_status=row.from_status,
            to_status=row.to_status,
            message=row.message,
            actor=row.actor,
            created_at=row.created_at,
        )


def _allocations(rows: Iterable[models.Allocation], lines: Iterable[models.OrderLine]) -> list[Allocation]:
    sku_of = {line.id: line.sku for line in lines}
    return [
        Allocation(
            row=row,
            sku=sku_of.get(row.order_line_id),
            quantity=row.quantity,
            shipped_quantity=row.shipped_quantity,
            status=row.status,
            reason=row.reason,
            score=row.score,
        )
        for row in rows
    ]


@strawberry.type(description="A customer's order from any channel.")
class Order(Node):
    row: strawberry.Private[models.Order]
    number: str = strawberry.field(description="Human-friendly unique number, e.g. 261129-7KQ2MX.")
    status: OrderStatus  # type: ignore[valid-type]
    external_id: str | None = strawberry.field(description="The channel's own order id.")
    currency: str
    delivery_option: DeliveryOptionKind | None  # type: ignore[valid-type]
    note: str | None
    placed_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None

    def _money(self, amount: PyDecimal) -> Money:
        return money(amount, self.row.currency)

    @strawberry.field(description="Delivery promised to the customer by then, if a date was given.")
    def promised_deliver_by(self) -> datetime | None:
        return self.row.promised_at

    @strawberry.field(
        description="Dispatch promised by then: as given, or set at payment from the delivery option (the end of "
        "the payment's UTC day for SAME_DAY, 24 hours after payment otherwise); null while unpaid."
    )
    def promised_ship_by(self) -> datetime | None:
        return self.row.promised_ship_by

    @strawberry.field
    def subtotal(self) -> Money:
        return self._money(self.row.subtotal)

    @strawberry.field
    def shipping_fee(self) -> Money:
        return self._money(self.row.shipping_fee)

    @strawberry.field
    def discount(self) -> Money:
        return self._money(self.row.discount)

    @strawberry.field
    def tax(self) -> Money:
        return self._money(self.row.tax)

    @strawberry.field(description="subtotal − discount + shipping fee + tax.")
    def total(self) -> Money:
        return self._money(self.row.total)

    # Relations resolve synchronously from the loaders' caches when the page prefetched them
    # (prefetch_orders), and through the loader otherwise (order(id:), a mutation's payload).

    @strawberry.field
    def channel(self, info: Info) -> Channel:
        return loaded(info.context.loaders.channel, self.row.channel_id, Channel.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    def customer(self, info: Info) -> Customer | None:
        if self.row.customer_id is None:
            return None
        return loaded(info.context.loaders.customer, self.row.customer_id, Customer.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    def shipping_address(self, info: Info) -> Address:
        return loaded(info.context.loaders.address, self.row.shipping_address_id, Address.from_row)  # type: ignore[no-any-return]

    @strawberry.field
    def lines(self, info: Info) -> list[OrderLine]:
        currency = self.row.currency
        return loaded(  # type: ignore[no-any-return]
            info.context.loaders.lines_by_order,
            self.row.id,
            lambda rows: [OrderLine.from_row(row, currency) for row in rows],
        )

    @strawberry.field
    def allocations(self, info: Info) -> list[Allocation]:
        loaders = info.context.loaders
        return loaded(  # type: ignore[no-any-return]
            loaders.allocations_by_order,
            self.row.id,
            lambda rows: loaded(loaders.lines_by_order, self.row.id, lambda lines: _allocations(rows, lines)),
        )

    @strawberry.field
    def shipments(self, info: Info) -> list[Shipment]:
        return loaded(  # type: ignore[no-any-return]
            info.context.loaders.shipments_by_order, self.row.id, lambda rows: [Shipment.from_row(r) for r in rows]
        )

    @strawberry.field(description="Status history, oldest first.")
    def events(self, info: Info) -> list[OrderEvent]:
        return loaded(  # type: ignore[no-any-return]
            info.context.loaders.events_by_order, self.row.id, lambda rows: [OrderEvent.from_row(r) for r in rows]
        )

    @strawberry.field(
        description="Holds, open and released; open ones have no releasedAt. A fulfillment order's own holds "
        "are on the fulfillment order."
    )
    def holds(self, info: Info) -> list[Hold]:
        return loaded(  # type: ignore[no-any-return]
            info.context.loaders.holds_by_order,
            self.row.id,
            lambda rows: [Hold.from_row(r) for r in rows if r.fulfillment_order_id is None],
        )

    @strawberry.field(description="One per location the order is allocated to: what each ships.")
    def fulfillment_orders(
        self, info: Info
    ) -> list[Annotated[FulfillmentOrder, strawberry.lazy("oms_graphql.schema.fulfillment")]]:
        from oms_graphql.schema.fulfillment import FulfillmentOrder

        return loaded(  # type: ignore[no-any-return]
            info.context.loaders.fulfillment_orders_by_order,
            self.row.id,
            lambda rows: [FulfillmentOrder.from_row(row) for row in rows],
        )

    @strawberry.field(description="Its returns, oldest first (a fully returned order ends COMPLETED).")
    def returns(self, info: Info) -> list[Annotated[Return, strawberry.lazy("oms_graphql.schema.returns")]]:
        from oms_graphql.schema.returns import Return

        return loaded(  # type: ignore[no-any-return]
            info.context.loaders.returns_by_order, self.row.id, lambda rows: [Return.from_row(row) for row in rows]
        )

    @strawberry.field(description="The sum of its refunds (returns and others).")
    def refund_total(self) -> Money:
        return money(self.row.refunded_total, self.row.currency)

    @classmethod
    def from_row(cls, row: models.Order) -> Order:
        return cls(
            row=row,
            id=strawberry.ID(to_global_id("Order", row.id)),
            number=row.number,
            status=row.status,
            external_id=row.external_id,
            currency=row.currency,
            delivery_option=DeliveryOptionKind(row.delivery_option) if row.delivery_option else None,
            note=row.note,
            placed_at=row.placed_at,
            paid_at=row.paid_at,
            cancelled_at=row.cancelled_at,
        )


@strawberry.type(description="An installed plugin.")
class Plugin:
    name: str
    version: str | None
    distribution: str | None
    kinds: list[str] = strawberry.field(description="channel, carrier, notifier, allocation.")
    hooks: list[str]


@strawberry.type(description="Who is calling.")
class Me:
    name: str
    role: str | None
    customer_id: strawberry.ID | None


ORDERS_NEWEST_FIRST = Keyset("placedAt-", (models.Order.placed_at, models.Order.id), descending=True)
"""The orders' default sort: newest placed first, the id breaking ties."""

# What each Order relation loads, by loader and the order's column holding the key.
_ORDER_RELATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "channel": (("channel", "channel_id"),),
    "customer": (("customer", "customer_id"),),
    "shippingAddress": (("address", "shipping_address_id"),),
    "lines": (("lines_by_order", "id"),),
    "allocations": (("allocations_by_order", "id"), ("lines_by_order", "id")),
    "shipments": (("shipments_by_order", "id"),),
    "events": (("events_by_order", "id"),),
    "holds": (("holds_by_order", "id"),),
    "fulfillmentOrders": (("fulfillment_orders_by_order", "id"),),
    "returns": (("returns_by_order", "id"),),
}


def _selections(selections: Iterable[Selection], *path: str) -> list[SelectedField]:
    """The selections found under ``path`` (GraphQL names), through fragments and aliases."""
    found = list(selections)
    for name in path:
        found = [child for selection in _flat(found) if selection.name == name for child in selection.selections]
    return list(_flat(found))


def _flat(selections: Iterable[Selection]) -> Iterable[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:  # a fragment: its fields count as the parent's
            yield from _flat(selection.selections)


async def prefetch_orders(info: Info, connection: Connection[Order]) -> None:
    """Load what the selection asks of a page's orders, one query per relation for the whole
    page (run together), into the request's loaders; Order's fields then resolve from them
    without awaiting. Looks one level further for allocations' locations."""
    rows = [edge.node.row for edge in connection.edges]
    if not rows:
        return
    loaders = info.context.loaders
    loaders.order.prime_many({row.id: row for row in rows})
    node = _selections([child for field in info.selected_fields for child in field.selections], "edges", "node")
    wanted = {(loader, column) for selection in node for loader, column in _ORDER_RELATIONS.get(selection.name, ())}
    await asyncio.gather(
        *(
            getattr(loaders, loader).load_many([key for row in rows if (key := getattr(row, column)) is not None])
            for loader, column in sorted(wanted)
        )
    )
    if any(selection.name == "location" for selection in _selections(node, "allocations")):
        found = await loaders.allocations_by_order.load_many([row.id for row in rows])
        await loaders.location.load_many(sorted({allocation.location_id for group in found for allocation in group}))
