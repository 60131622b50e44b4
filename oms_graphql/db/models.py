"""SQLAlchemy 2 models: the whole persistent state of the OMS.

Stock figures (``StockLevel``) are a projection of the ledger (``StockMovement``);
CHECK constraints make a negative or oversold level impossible even if a code
path forgot its guard.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from oms_graphql.db.types import Amount, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


# The last line behind domain/limits.py (migration 0007): no row may hold a figure that GraphQL's
# 32-bit Int cannot answer, or an amount past 10^12. Amounts are compared as REAL because SQLite
# keeps them as text (db/types.Amount), and CAST of a text such as '1E+999' is infinite there.
MAX_INT = 2_147_483_647
STOCK_LEVEL_FIGURES = ("on_hand", "reserved", "in_transit", "safety_stock", "reorder_point", "reorder_quantity")
STOCK_MOVEMENT_DELTAS = ("on_hand_delta", "reserved_delta", "in_transit_delta")
ORDER_AMOUNTS = ("subtotal", "discount", "shipping_fee", "tax", "total")


def int_within(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} BETWEEN -{MAX_INT} AND {MAX_INT}", name=f"{column}_within_int")


def amount_within(column: str) -> CheckConstraint:
    return CheckConstraint(f"CAST({column} AS REAL) BETWEEN -1e12 AND 1e12", name=f"{column}_within_limit")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (amount_within("price_amount"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    price_amount: Mapped[Decimal | None] = mapped_column(Amount)
    price_currency: Mapped[str | None] = mapped_column(String(3))
    weight_grams: Mapped[int | None] = mapped_column(Integer)
    length_mm: Mapped[int | None] = mapped_column(Integer)
    width_mm: Mapped[int | None] = mapped_column(Integer)
    height_mm: Mapped[int | None] = mapped_column(Integer)
    handling: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Migration 0006: sold from a supplier's stock only (SUPPLIER locations ship it to the customer).
    drop_ship: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # WAREHOUSE, STORE, SUPPLIER
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    district: Mapped[str | None] = mapped_column(String(100))
    line1: Mapped[str] = mapped_column(String(300))
    line2: Mapped[str | None] = mapped_column(String(300))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(String(40))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    can_ship: Mapped[bool] = mapped_column(Boolean, default=True)
    can_pickup: Mapped[bool] = mapped_column(Boolean, default=False)
    regions_served: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Migration 0005: its allocated orders are dispatched by themselves (False: by hand).
    auto_dispatch: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StockLevel(Base):
    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("product_id", "location_id"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
        CheckConstraint("in_transit >= 0", name="in_transit_not_negative"),
        *(int_within(column) for column in STOCK_LEVEL_FIGURES),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    in_transit: Mapped[int] = mapped_column(Integer, default=0)
    safety_stock: Mapped[int] = mapped_column(Integer, default=0)
    reorder_point: Mapped[int | None] = mapped_column(Integer)
    reorder_quantity: Mapped[int | None] = mapped_column(Integer)
    lead_time_days: Mapped[int | None] = mapped_column(Integer)
    # True while an open low-stock alert exists, so one crossing raises one alert.
    low_stock_alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Channel stock push bookkeeping: every movement bumps ``sync_version``; the
    # debounced push job sets ``synced_version`` to what it pushed. Only the
    # movement that makes the level dirty asks for a job, so a burst of changes
    # costs one push (see oms_graphql.jobs.inventory).
    sync_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    synced_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    product: Mapped[Product] = relationship(lazy="raise")
    location: Mapped[Location] = relationship(lazy="raise")


class StockMovement(Base):
    """One append-only ledger row. The deltas of all rows sum to the level."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        Index("ix_stock_movements_level", "product_id", "location_id"),
        *(int_within(column) for column in STOCK_MOVEMENT_DELTAS),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    reason: Mapped[str] = mapped_column(String(16))
    on_hand_delta: Mapped[int] = mapped_column(Integer, default=0)
    reserved_delta: Mapped[int] = mapped_column(Integer, default=0)
    in_transit_delta: Mapped[int] = mapped_column(Integer, default=0)
    reference_type: Mapped[str | None] = mapped_column(String(32))
    reference_id: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(300))
    actor: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Channel(Base):
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    stock_share_percent: Mapped[int] = mapped_column(Integer, default=100)
    stock_buffer: Mapped[int] = mapped_column(Integer, default=0)
    poll_interval_seconds: Mapped[int] = mapped_column(Integer, default=300)
    sync_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_cursor: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Channel sync bookkeeping (migration 0003): a pull holds a lease so two workers never
    # pull one channel at once; a debounced stock push is due at stock_push_due_at.
    pull_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_pulled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stock_push_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Migration 0004: who holds the pull lease, and how far the pull has come (the window
    # and the token of the next page still to store), so a retry or another worker resumes
    # it instead of starting over; when the trailing reconciliation last ran, and its counts.
    pull_lease_holder: Mapped[str | None] = mapped_column(String(64))
    pull_window_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pull_window_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pull_page: Mapped[str | None] = mapped_column(Text)
    reconciled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_reconcile: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Carrier(Base):
    """A configured carrier account (migration 0005); its plugin is chosen by ``kind``."""

    __tablename__ = "carriers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChannelListing(Base):
    __tablename__ = "channel_listings"
    __table_args__ = (UniqueConstraint("channel_id", "channel_sku_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    channel_sku_id: Mapped[str] = mapped_column(String(100))
    channel_item_id: Mapped[str | None] = mapped_column(String(100))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Stock push state (migration 0003): set when the SKU's sellable quantity changed and
    # the channel has not been told yet; cleared by the push.
    push_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pushed_quantity: Mapped[int | None] = mapped_column(Integer)
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    push_error: Mapped[str | None] = mapped_column(Text)


class InboundMessage(Base):
    """A raw payload from a channel or carrier, stored before it is parsed."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("ix_inbound_messages_source_status", "source", "status"),
        Index("ix_inbound_messages_source_external", "source", "external_id"),
        Index("ux_inbound_messages_event", "source", "kind", "event_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))  # channel or carrier code
    kind: Mapped[str] = mapped_column(String(16))  # ORDER, WEBHOOK, TRACKING
    external_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="RECEIVED")
    body: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Migration 0003: sha256 of the body (a re-pulled, unchanged order is stored once),
    # the order it produced, and what became of it.
    digest: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    outcome: Mapped[str | None] = mapped_column(String(300))
    # When an ingest job was last asked for: the sweeper re-queues only messages whose
    # job has been missing for a while, never a whole backlog at once.
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Migration 0004: the channel's own "last modified" stamp of this version of the order,
    # so a re-listing can tell a version stored already from a newer one, and when the OMS
    # asked the channel for it (pulled orders only).
    channel_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Migration 0009: the sender's id of a pushed delivery (Square event_id, EasyPost Event.id),
    # unique per source and kind, so a replayed webhook is refused.
    event_id: Mapped[str | None] = mapped_column(String(200))


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Migration 0014: the merchant's tags and note; a duplicate merged into another profile
    # keeps its row (so its old id still finds the person) with merged_into_id set; an erased
    # profile keeps its orders but no personal data, and erased_at says when.
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    note: Mapped[str | None] = mapped_column(String(2000))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustomerIdentity(Base):
    """A way to recognise one person: phone, e-mail or a channel's buyer id."""

    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(80))  # phone, email, buyer:<channel code>
    value: Mapped[str] = mapped_column(String(254))


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(254))
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    district: Mapped[str | None] = mapped_column(String(100))
    line1: Mapped[str] = mapped_column(String(300))
    line2: Mapped[str | None] = mapped_column(String(300))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel_id", "external_id"),
        Index("ix_orders_status_placed", "status", "placed_at"),
        # The order pages' keyset sort keys (resolvers/queries.py).
        Index("ix_orders_placed_id", "placed_at", "id"),
        Index("ix_orders_total_id", "total", "id"),
        *(amount_within(column) for column in ORDER_AMOUNTS),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    external_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    # The status to go back to when the last hold is released.
    resume_status: Mapped[str | None] = mapped_column(String(20))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    shipping_address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id"))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(Amount)
    discount: Mapped[Decimal] = mapped_column(Amount)
    shipping_fee: Mapped[Decimal] = mapped_column(Amount)
    tax: Mapped[Decimal] = mapped_column(Amount)
    total: Mapped[Decimal] = mapped_column(Amount)
    delivery_option: Mapped[str | None] = mapped_column(String(16))
    pickup_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    note: Mapped[str | None] = mapped_column(String(2000))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Migration 0006: dispatched by then, or the order is late.
    promised_ship_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Migration 0013: the sum of its refunds.
    refunded_total: Mapped[Decimal] = mapped_column(Amount, default=Decimal("0"), server_default="0")
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    channel_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", lazy="raise", order_by="OrderLine.line_no")


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        UniqueConstraint("order_id", "line_no"),
        int_within("quantity"),
        amount_within("unit_price"),
        amount_within("discount"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))  # None: unmapped
    sku: Mapped[str | None] = mapped_column(String(64))
    channel_line_id: Mapped[str | None] = mapped_column(String(100))
    channel_sku_id: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Amount)
    discount: Mapped[Decimal] = mapped_column(Amount, default=Decimal("0"))
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0)
    # Migration 0013: units received back on returns (RESELLABLE or DAMAGED).
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    order: Mapped[Order] = relationship(back_populates="lines", lazy="raise")


class Hold(Base):
    """A typed reason why an order (or one fulfillment order) may not proceed."""

    __tablename__ = "holds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    fulfillment_order_id: Mapped[int | None] = mapped_column(ForeignKey("fulfillment_orders.id"))
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(1000))
    raised_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by: Mapped[str | None] = mapped_column(String(100))


class FulfillmentOrder(Base):
    """The allocations of one order at one location: what is picked and shipped together."""

    __tablename__ = "fulfillment_orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[str] = mapped_column(String(16), default="OPEN")
    # Migration 0010: when people were told it missed its order's ship-by date (once).
    late_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Allocation(Base):
    __tablename__ = "allocations"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        # Recent sales per SKU and location (transfer suggestions, reorder quantities).
        Index("ix_allocations_product_created", "product_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"))
    fulfillment_order_id: Mapped[int] = mapped_column(ForeignKey("fulfillment_orders.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    shipped_quantity: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="RESERVED")  # RESERVED RELEASED SHIPPED
    reason: Mapped[str | None] = mapped_column(String(300))
    # Migration 0006: the allocation engine's score of the chosen plan (lower is better).
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Shipment(Base):
    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    fulfillment_order_id: Mapped[int | None] = mapped_column(ForeignKey("fulfillment_orders.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    carrier: Mapped[str | None] = mapped_column(String(64))
    service: Mapped[str | None] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(100), index=True)
    label_url: Mapped[str | None] = mapped_column(String(500))
    # Migration 0006: the parcels as packed [{weightGrams, lengthMm, widthMm, heightMm}].
    packages: Mapped[list[dict] | None] = mapped_column(JSON)
    # Migration 0005: why this carrier service was chosen, and the carrier's own id of it.
    option_reason: Mapped[str | None] = mapped_column(String(1000))
    carrier_reference: Mapped[str | None] = mapped_column(String(100))
    # When its carrier was last polled for tracking, and when people were told it is late.
    tracked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    late_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Telling the sales channel (migration 0003): retried until it accepts.
    channel_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    channel_confirm_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    channel_confirm_error: Mapped[str | None] = mapped_column(Text)


class ShipmentLabel(Base):
    """A shipment's printable label, as the carrier gave it (migration 0005)."""

    __tablename__ = "shipment_labels"

    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ShipmentLine(Base):
    __tablename__ = "shipment_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"))
    quantity: Mapped[int] = mapped_column(Integer)


class ShipmentEvent(Base):
    __tablename__ = "shipment_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))  # a ShipmentStatus
    carrier_code: Mapped[str | None] = mapped_column(String(64))  # the carrier's own code (migration 0005)
    description: Mapped[str | None] = mapped_column(String(500))
    location: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OrderEvent(Base):
    """The status history of an order."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # STATUS_CHANGED, HOLD_ADDED, ...
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    message: Mapped[str | None] = mapped_column(String(1000))
    actor: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxEntry(Base):
    """An event or a job request, written in the same transaction as its cause.

    The relay publishes ``event`` rows to subscribers and sends ``job`` rows to
    the broker only after that transaction committed.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # event | job
    topic: Mapped[str] = mapped_column(String(64))  # event topic or actor name
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Failed sends: after MAX_ATTEMPTS the row is parked (left unpublished) for an operator.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Migration 0012: when the token stops working, and when it was last seen (kept to
    # within a minute, so a busy token does not write a row on every request).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One mutation call (migration 0012): who, what, with which input (secrets redacted), and how it ended.

    Written in the transaction of the change it records; a refused or failed call gets a row of its own.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(100), index=True)
    input: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[str] = mapped_column(String(16))  # OK, USER_ERROR, ERROR
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AlertRecord(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    sku: Mapped[str | None] = mapped_column(String(64))
    location_code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(1000))
    suggested_quantity: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Return(Base):
    """Units of one order coming back (migration 0013); a marketplace after-sale is one too."""

    __tablename__ = "returns"
    __table_args__ = (UniqueConstraint("order_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # a ReturnStatus
    note: Mapped[str | None] = mapped_column(String(2000))
    reject_reason: Mapped[str | None] = mapped_column(String(1000))
    external_id: Mapped[str | None] = mapped_column(String(100))  # the channel's refund / after-sale id
    replacement_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    refund_total: Mapped[Decimal] = mapped_column(Amount, default=Decimal("0"))
    requested_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReturnLine(Base):
    __tablename__ = "return_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "resellable_quantity >= 0 AND damaged_quantity >= 0 AND missing_quantity >= 0 AND "
            "resellable_quantity + damaged_quantity + missing_quantity <= quantity",
            name="received_within",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))  # a ReturnReason
    # What came back, by condition (set once, by returnReceive).
    resellable_quantity: Mapped[int] = mapped_column(Integer, default=0)
    damaged_quantity: Mapped[int] = mapped_column(Integer, default=0)
    missing_quantity: Mapped[int] = mapped_column(Integer, default=0)
    restock_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))


class Refund(Base):
    """Money given back on an order (migration 0013), by hand or as a marketplace reports it."""

    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    return_id: Mapped[int | None] = mapped_column(ForeignKey("returns.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    actor: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Transfer(Base):
    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    from_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    to_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    # DRAFT SHIPPED PARTIALLY_RECEIVED RECEIVED
    status: Mapped[str] = mapped_column(String(20), default="DRAFT")
    reference: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TransferLine(Base):
    __tablename__ = "transfer_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    received_quantity: Mapped[int] = mapped_column(Integer, default=0)
    discrepancy_note: Mapped[str | None] = mapped_column(String(500))


class Lease(Base):
    """A named lease (migration 0003): whoever holds an unexpired one does that work alone."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- reports: daily aggregates kept up to date per order (domain/reports/facts.py) ---------
# Amounts in the aggregates are integers in units of 1/10,000 (NUMERIC(18, 4) exactly), so
# that sums stay exact on SQLite too, where an Amount is text.


class ReportOrderFact(Base):
    """What one order contributes to the report tables, as last applied: the next refresh of
    the order subtracts this and adds the new figures, so a refresh can run twice safely."""

    __tablename__ = "report_order_facts"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)  # placed_at in OMS_REPORT_TIMEZONE
    channel_id: Mapped[int] = mapped_column(BigId)
    location_id: Mapped[int] = mapped_column(BigId, default=0)  # 0: not allocated anywhere
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    seconds_to_ship: Mapped[int | None] = mapped_column(BigInteger)
    seconds_to_deliver: Mapped[int | None] = mapped_column(BigInteger)
    contribution: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReportDailySales(Base):
    """Paid, not cancelled orders per placed day, channel, region and currency."""

    __tablename__ = "report_daily_sales"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    region: Mapped[str] = mapped_column(String(100), primary_key=True)  # "" when the address has none
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    units: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_e4: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportDailySkuSales(Base):
    """The same per SKU (and its category), from the order lines."""

    __tablename__ = "report_daily_sku_sales"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(100), primary_key=True)  # "" when none
    channel_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    region: Mapped[str] = mapped_column(String(100), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    units: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_e4: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportDailySkuTotal(Base):
    """The SKU table summed over channels and regions: what SKU reports read unless a
    channel or region narrows them (a row per day and SKU instead of one per channel × region)."""

    __tablename__ = "report_daily_sku_totals"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(100), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    units: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_e4: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportDailyCategorySales(Base):
    """Paid, not cancelled orders per placed day, category, channel, region and currency: an
    order counts once per category however many of its SKUs are in it (the SKU table would
    count it once per SKU)."""

    __tablename__ = "report_daily_category_sales"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(String(100), primary_key=True)
    channel_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    region: Mapped[str] = mapped_column(String(100), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    units: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_e4: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportCustomerCategory(Base):
    """Per customer, placed day and category: its paid, not cancelled orders with a line of the
    category (segment preferences)."""

    __tablename__ = "report_customer_categories"

    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(String(100), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportCustomerChannel(Base):
    """Per customer, placed day and channel: its paid, not cancelled orders (segment preferences)."""

    __tablename__ = "report_customer_channels"

    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)


class ReorderForecast(Base):
    """The forecast-based reorder suggestion of one SKU at one location, as the
    ``refresh_demand_forecasts`` job last computed it: low-stock alerts and transferSuggest
    read it (a forecast is too costly inside a stock transaction) while it is fresh."""

    __tablename__ = "reorder_forecasts"

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    method: Mapped[str] = mapped_column(String(20))
    lead_time_days: Mapped[int] = mapped_column(Integer)
    daily_demand: Mapped[float] = mapped_column(Float)  # this location's share, units a day
    demand: Mapped[float] = mapped_column(Float)  # over the lead time
    safety_stock: Mapped[float] = mapped_column(Float)
    quantity: Mapped[int] = mapped_column(Integer)  # to order, against the position when computed
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportDailyFulfillment(Base):
    """Counts behind the fulfilment rates per placed day, channel and location."""

    __tablename__ = "report_daily_fulfillment"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    location_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    orders_all: Mapped[int] = mapped_column(BigInteger, default=0)
    orders_cancelled: Mapped[int] = mapped_column(BigInteger, default=0)
    orders_completed: Mapped[int] = mapped_column(BigInteger, default=0)
    orders_shipped: Mapped[int] = mapped_column(BigInteger, default=0)
    orders_split: Mapped[int] = mapped_column(BigInteger, default=0)
    units_shipped: Mapped[int] = mapped_column(BigInteger, default=0)
    units_returned: Mapped[int] = mapped_column(BigInteger, default=0)
    shipments_dispatched: Mapped[int] = mapped_column(BigInteger, default=0)
    shipments_late: Mapped[int] = mapped_column(BigInteger, default=0)
    ship_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    ship_count: Mapped[int] = mapped_column(BigInteger, default=0)
    deliver_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    deliver_count: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportCustomerDay(Base):
    """Paid, not cancelled orders and revenue per customer and placed day (for RFM and cohorts)."""

    __tablename__ = "report_customer_days"

    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_e4: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportDailyStock(Base):
    """What the ledger moved of one level's on hand in one report day (migration 0022), written
    with the ledger rows (domain/reports/stock_days.py): inventoryKpis reads these, not the ledger."""

    __tablename__ = "report_daily_stock"

    product_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    location_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    on_hand_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    units_shipped: Mapped[int] = mapped_column(BigInteger, default=0)
