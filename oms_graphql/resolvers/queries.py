"""Root query fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.domain.access import Role
from oms_graphql.domain.customer_profiles import customer_by_id, customer_search
from oms_graphql.domain.errors import NotFound
from oms_graphql.plugins.host import installed_plugins
from oms_graphql.resolvers.common import context, db_id
from oms_graphql.resolvers.inventory import transfer_node
from oms_graphql.schema.channel_types import InboundMessage
from oms_graphql.schema.delivery import Carrier
from oms_graphql.schema.fulfillment import FulfillmentOrder
from oms_graphql.schema.identities import ApiToken, AuditEntry
from oms_graphql.schema.ids import from_global_id, to_global_id
from oms_graphql.schema.inputs import (
    LocationFilter,
    OrderFilter,
    OrderSort,
    ProductFilter,
    StockLevelFilter,
    StockMovementFilter,
)
from oms_graphql.schema.permissions import SIGNED_IN, STAFF, SYNC_READ
from oms_graphql.schema.relay import Connection, Keyset, paginate, paginate_keyset
from oms_graphql.schema.returns import Return
from oms_graphql.schema.types import (
    ORDERS_NEWEST_FIRST,
    Channel,
    Customer,
    Location,
    Me,
    Node,
    Order,
    Plugin,
    Product,
    Shipment,
    StockLevel,
    StockMovement,
    prefetch_orders,
)

# Node types fetched by primary key and shaped by their from_row (Order and Transfer need more).
_NODE_TYPES: dict[str, tuple[Any, Callable[[Any], Node]]] = {
    "Product": (models.Product, Product.from_row),
    "Location": (models.Location, Location.from_row),
    "Channel": (models.Channel, Channel.from_row),
    "Shipment": (models.Shipment, Shipment.from_row),
    "InboundMessage": (models.InboundMessage, InboundMessage.from_row),
    "Carrier": (models.Carrier, Carrier.from_row),
    "FulfillmentOrder": (models.FulfillmentOrder, FulfillmentOrder.from_row),
    "Return": (models.Return, Return.from_row),
    "ApiToken": (models.ApiToken, ApiToken.from_row),
    "AuditEntry": (models.AuditEntry, AuditEntry.from_row),
}
_ADMIN_NODE_TYPES = frozenset({"ApiToken", "AuditEntry"})

# Each sort's key, unique per order (the id breaks ties); migration 0020 indexes them.
ORDER_KEYSETS = {
    OrderSort.PLACED_AT_DESC: ORDERS_NEWEST_FIRST,
    OrderSort.PLACED_AT_ASC: Keyset("placedAt", (models.Order.placed_at, models.Order.id)),
    OrderSort.NUMBER_ASC: Keyset("number", (models.Order.number,)),
    OrderSort.TOTAL_DESC: Keyset("total-", (models.Order.total, models.Order.id), descending=True),
}


async def _visible_order(info: Info, row: models.Order | None) -> Order | None:
    """Customers see only their own orders; staff see all."""
    if row is None:
        return None
    caller = await context(info).caller()
    if caller.role == Role.CUSTOMER and row.customer_id != caller.customer_id:
        return None
    return Order.from_row(row)


async def _customer_node(session: AsyncSession, key: int) -> Customer | None:
    try:
        return Customer.from_row(await customer_by_id(session, key))
    except NotFound:
        return None


async def _one(info: Info, query: Select) -> object | None:
    async with context(info).database.session() as session:
        return await session.scalar(query)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@strawberry.type
class Query:
    @strawberry.field(description="Any object by its global id.", permission_classes=SIGNED_IN)
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        decoded = from_global_id(id)
        if decoded is None:
            return None
        type_name, key = decoded
        if type_name == "Order":
            return await _visible_order(info, await context(info).loaders.order.load(key))
        caller = await context(info).caller()
        if caller.role == Role.CUSTOMER and not (type_name == "Customer" and key == caller.customer_id):
            return None
        if type_name in _ADMIN_NODE_TYPES and caller.role != Role.ADMIN:
            return None
        async with context(info).database.session() as session:
            if type_name == "Transfer":
                transfer = await session.get(models.Transfer, key)
                return await transfer_node(session, transfer) if transfer else None
            if type_name == "Customer":  # a merged duplicate's id finds the profile it went into
                return await _customer_node(session, key)
            if type_name not in _NODE_TYPES:
                return None
            model, to_node = _NODE_TYPES[type_name]
            row = await session.get(model, key)
        return to_node(row) if row is not None else None

    @strawberry.field(description="The catalog.", permission_classes=SYNC_READ)
    async def products(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: ProductFilter | None = None,
    ) -> Connection[Product]:
        query = select(models.Product).order_by(models.Product.sku)
        if filter and filter.search:
            pattern = _like(filter.search)
            query = query.where(or_(models.Product.sku.ilike(pattern), models.Product.name.ilike(pattern)))
        if filter and filter.category:
            query = query.where(models.Product.category == filter.category)
        return await paginate(
            context(info).database,
            query,
            Product.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )

    @strawberry.field(description="One product by SKU.", permission_classes=SYNC_READ)
    async def product(self, info: Info, sku: str) -> Product | None:
        row = await _one(info, select(models.Product).where(models.Product.sku == sku))
        return Product.from_row(row) if row else None  # type: ignore[arg-type]

    @strawberry.field(description="Warehouses, stores and suppliers.", permission_classes=SYNC_READ)
    async def locations(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: LocationFilter | None = None,
    ) -> Connection[Location]:
        query = select(models.Location).order_by(models.Location.priority, models.Location.code)
        if filter and filter.kind:
            query = query.where(models.Location.kind == getattr(filter.kind, "value", filter.kind))
        if filter and filter.active is not None:
            query = query.where(models.Location.active.is_(filter.active))
        return await paginate(
            context(info).database,
            query,
            Location.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )

    @strawberry.field(description="One location by code.", permission_classes=SYNC_READ)
    async def location(self, info: Info, code: str) -> Location | None:
        row = await _one(info, select(models.Location).where(models.Location.code == code))
        return Location.from_row(row) if row else None  # type: ignore[arg-type]

    @strawberry.field(description="On hand, reserved and available per SKU and location.", permission_classes=SYNC_READ)
    async def stock_levels(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: StockLevelFilter | None = None,
    ) -> Connection[StockLevel]:
        query = (
            select(models.StockLevel, models.Product.sku)
            .join(models.Product, models.Product.id == models.StockLevel.product_id)
            .join(models.Location, models.Location.id == models.StockLevel.location_id)
            .order_by(models.Product.sku, models.Location.code)
        )
        if filter and filter.sku:
            query = query.where(models.Product.sku == filter.sku)
        if filter and filter.location_code:
            query = query.where(models.Location.code == filter.location_code)
        if filter and filter.below_reorder_point:
            level = models.StockLevel
            query = query.where(
                level.reorder_point.is_not(None),
                level.on_hand - level.reserved - level.safety_stock < level.reorder_point,
            )
        return await paginate(
            context(info).database,
            query,
            lambda row: StockLevel.from_row(row[0], row[1]),
            first=first,
            after=after,
            last=last,
            before=before,
            scalars=False,
        )

    @strawberry.field(description="The stock ledger, newest first.", permission_classes=STAFF)
    async def stock_movements(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: StockMovementFilter | None = None,
    ) -> Connection[StockMovement]:
        query = (
            select(models.StockMovement, models.Product.sku)
            .join(models.Product, models.Product.id == models.StockMovement.product_id)
            .join(models.Location, models.Location.id == models.StockMovement.location_id)
            .order_by(models.StockMovement.id.desc())
        )
        if filter and filter.sku:
            query = query.where(models.Product.sku == filter.sku)
        if filter and filter.location_code:
            query = query.where(models.Location.code == filter.location_code)
        if filter and filter.reason:
            query = query.where(models.StockMovement.reason == filter.reason)
        return await paginate(
            context(info).database,
            query,
            lambda row: StockMovement.from_row(row[0], row[1]),
            first=first,
            after=after,
            last=last,
            before=before,
            scalars=False,
        )

    @strawberry.field(description="Orders; customers see only their own.", permission_classes=SIGNED_IN)
    async def orders(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: OrderFilter | None = None,
        sort: OrderSort = OrderSort.PLACED_AT_DESC,
    ) -> Connection[Order]:
        O = models.Order  # noqa: E741
        query = select(O)
        caller = await context(info).caller()
        if caller.role == Role.CUSTOMER:
            query = query.where(O.customer_id == (caller.customer_id or -1))
        if filter:
            if filter.status:
                query = query.where(O.status.in_([getattr(s, "value", s) for s in filter.status]))
            if filter.channel_code:
                query = query.where(
                    O.channel_id.in_(select(models.Channel.id).where(models.Channel.code == filter.channel_code))
                )
            if filter.customer_id:
                query = query.where(O.customer_id == db_id(filter.customer_id, "Customer", ("filter", "customerId")))
            if filter.placed_after:
                query = query.where(O.placed_at >= filter.placed_after)
            if filter.placed_before:
                query = query.where(O.placed_at < filter.placed_before)
            if filter.search:
                text = filter.search.strip()
                # Name, e-mail or phone written any way (the customer search's rule).
                matching_customers = select(models.Customer.id).where(customer_search(text))
                query = query.where(
                    or_(
                        O.number.ilike(_like(text)),
                        O.external_id == text,
                        O.customer_id.in_(matching_customers),
                    )
                )
        connection = await paginate_keyset(
            context(info).database,
            query,
            ORDER_KEYSETS[sort],
            Order.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        await prefetch_orders(info, connection)
        return connection

    @strawberry.field(description="One order by global id.", permission_classes=SIGNED_IN)
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        decoded = from_global_id(id)
        if decoded is None or decoded[0] != "Order":
            return None
        return await _visible_order(info, await context(info).loaders.order.load(decoded[1]))

    @strawberry.field(description="One order by its number.", permission_classes=SIGNED_IN)
    async def order_by_number(self, info: Info, number: str) -> Order | None:
        row = await _one(info, select(models.Order).where(models.Order.number == number))
        return await _visible_order(info, row)  # type: ignore[arg-type]

    @strawberry.field(description="One order by its channel's id.", permission_classes=SIGNED_IN)
    async def order_by_external_id(self, info: Info, channel_code: str, external_id: str) -> Order | None:
        row = await _one(
            info,
            select(models.Order)
            .join(models.Channel, models.Channel.id == models.Order.channel_id)
            .where(models.Channel.code == channel_code, models.Order.external_id == external_id),
        )
        return await _visible_order(info, row)  # type: ignore[arg-type]

    @strawberry.field(description="Configured sales channels.", permission_classes=SYNC_READ)
    async def channels(self, info: Info) -> list[Channel]:
        async with context(info).database.session() as session:
            rows = (await session.scalars(select(models.Channel).order_by(models.Channel.code))).all()
        return [Channel.from_row(row) for row in rows]

    @strawberry.field(description="Every installed plugin.", permission_classes=STAFF)
    def plugins(self) -> list[Plugin]:
        return [
            Plugin(
                name=p.name,
                version=p.version,
                distribution=p.distribution,
                kinds=list(p.kinds),
                hooks=list(p.hooks),
            )
            for p in installed_plugins()
        ]

    @strawberry.field(description="Who is calling, and with which role.", permission_classes=SIGNED_IN)
    async def me(self, info: Info) -> Me:
        caller = await context(info).caller()
        return Me(
            name=caller.name,
            role=caller.role.value if caller.role else None,
            customer_id=strawberry.ID(to_global_id("Customer", caller.customer_id)) if caller.customer_id else None,
        )
