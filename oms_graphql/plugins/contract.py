"""Plain data types that cross the plugin boundary.

A plugin receives and returns only these (and plain Python values): never an ORM
object, a session or anything from GraphQL. Times are timezone-aware UTC
``datetime``s; money is ``Decimal`` with a separate ISO 4217 currency code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

# --- errors a plugin raises -------------------------------------------------


class PluginError(Exception):
    """Base of every error a plugin reports to the job layer."""


class RetryableError(PluginError):
    """A temporary failure (throttling, 5xx, timeout): the job retries later.

    ``retry_after`` is the number of seconds the remote side asked us to wait
    (HTTP ``Retry-After`` or an equivalent hint), or None to use backoff.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(PluginError):
    """A failure that retrying will not fix (bad credentials, rejected request)."""


class PayloadError(PluginError):
    """A payload that cannot be understood; the message says which part and why."""


# --- describing a plugin ----------------------------------------------------


@dataclass(frozen=True)
class SettingField:
    """One key of a channel's (or carrier's) ``settings`` JSON.

    ``kind`` is one of ``string``, ``url``, ``int``, ``list`` (of strings) or
    ``bool``. A ``secret`` field is encrypted at rest and never returned or logged.
    """

    key: str
    label: str
    kind: str = "string"
    required: bool = True
    secret: bool = False
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class ChannelKind:
    """What a channel plugin offers: its kind name (``taobao``) and settings."""

    kind: str
    name: str
    settings: tuple[SettingField, ...] = ()
    pulls_orders: bool = True
    receives_webhooks: bool = False


@dataclass(frozen=True)
class ChannelConfig:
    """One configured channel as a plugin sees it: settings already decrypted."""

    code: str
    kind: str
    # Kept out of repr(): the settings hold decrypted secrets, and reprs end up in logs.
    settings: dict[str, Any] = field(repr=False)


# --- orders coming in -------------------------------------------------------


class ChannelOrderStatus(enum.StrEnum):
    """The channel's order state mapped onto what the OMS needs to know."""

    UNPAID = "UNPAID"  # placed, waiting for the buyer to pay
    PAID = "PAID"  # paid, the merchant must ship
    ON_HOLD = "ON_HOLD"  # locked / frozen / disputed at the channel
    SHIPPED = "SHIPPED"  # shipped outside the OMS (or already confirmed)
    COMPLETED = "COMPLETED"  # received / finished at the channel
    CANCELLED = "CANCELLED"  # closed, cancelled or fully refunded before shipping


@dataclass(frozen=True)
class RawOrderPayload:
    """One order exactly as the channel sent it, before any parsing.

    ``body`` is the JSON object for that one order (as decoded from the
    channel's response); the OMS stores it as an InboundMessage before parsing.
    ``updated_at`` is the channel's own "last modified" stamp of this version:
    give it whenever the channel has one, so a re-listing of a version stored
    already costs nothing. ``partial=True`` says the body is only a listing's
    summary of the order (Taobao's increment list, a JD search row without
    lines): the OMS then asks ``oms_channel_fetch_order`` for the full order,
    but only when this version (``external_id``, ``updated_at``) is not stored yet.
    """

    external_id: str
    body: dict[str, Any]
    updated_at: datetime | None = None
    partial: bool = False
    # Set by the OMS, not by plugins: when it asked the channel for this version.
    fetched_at: datetime | None = None


@dataclass(frozen=True)
class OrderPage:
    """One page of a pull: the orders, and the token of the next page (or None)."""

    orders: list[RawOrderPayload]
    next_page: str | None = None


@dataclass(frozen=True)
class NormalizedAddress:
    country: str  # ISO 3166-1 alpha-2
    line1: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    region: str | None = None
    city: str | None = None
    district: str | None = None
    line2: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True)
class NormalizedBuyer:
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    channel_buyer_id: str | None = None


class RefundStatus(enum.StrEnum):
    """Where a buyer's after-sale request on one line stands at the channel."""

    REQUESTED = "REQUESTED"  # asked, waiting for the seller (Taobao WAIT_SELLER_AGREE)
    AGREED = "AGREED"  # the seller agreed; goods to come back (WAIT_BUYER_RETURN_GOODS)
    RETURNING = "RETURNING"  # the buyer sent the goods back (WAIT_SELLER_CONFIRM_GOODS)
    REFUSED = "REFUSED"  # the seller refused (SELLER_REFUSE_BUYER)
    CLOSED = "CLOSED"  # withdrawn or closed without money back
    SUCCESS = "SUCCESS"  # the channel paid the buyer back


@dataclass(frozen=True)
class LineRefund:
    """A buyer's refund / return request on one line, as the channel reports it (售后).

    ``refund_id`` is the channel's id of the request (Taobao ``refund_id``); ``quantity``
    the units it covers (None: the whole line). The OMS turns it into a hold
    (REFUND_IN_PROGRESS) while nothing is shipped, an intercept alert when the units are
    on their way, and a Return (with its refund once the channel pays) once shipped.
    """

    refund_id: str
    status: RefundStatus
    quantity: int | None = None


@dataclass(frozen=True)
class NormalizedLine:
    """One order line.

    ``merchant_sku`` is the seller's own code (Taobao ``outer_sku_id``/``outer_iid``,
    JD ``outerSkuId``, Amazon ``SellerSKU``, the POS item's SKU); when it equals one
    of our SKUs the line maps without a listing. ``channel_sku_id`` (and
    ``channel_item_id`` where the channel has one) is looked up in the listings.
    ``unit_price`` is the price per unit before line discounts; ``discount`` is
    the discount on the whole line.
    """

    channel_line_id: str
    quantity: int
    unit_price: Decimal
    channel_sku_id: str | None = None
    channel_item_id: str | None = None
    merchant_sku: str | None = None
    title: str | None = None
    discount: Decimal = Decimal("0")
    refunded_quantity: int = 0
    refund: LineRefund | None = None  # an after-sale request on this line, if any


@dataclass(frozen=True)
class NormalizedOrder:
    """An order as every channel plugin must describe it to the OMS."""

    external_id: str
    status: ChannelOrderStatus
    raw_status: str
    currency: str
    placed_at: datetime
    lines: list[NormalizedLine]
    updated_at: datetime | None = None
    paid_at: datetime | None = None
    shipping_fee: Decimal = Decimal("0")
    discount: Decimal = Decimal("0")  # order-level discount, on top of line discounts
    total: Decimal | None = None  # what the channel says the buyer paid, for checks
    buyer: NormalizedBuyer | None = None
    shipping_address: NormalizedAddress | None = None
    note: str | None = None
    location_code: str | None = None  # POS: the store the sale happened in
    hold_reason: str | None = None  # why the channel holds it (ON_HOLD)
    # True when the channel ships the order from its own stock (Amazon AFN): the OMS
    # records it for sales figures but never reserves or ships our stock for it.
    fulfilled_by_channel: bool = False
    # The channel's own promises, when it makes them (Amazon ``LatestShipDate`` /
    # ``LatestDeliveryDate``): the order must be dispatched / delivered by then. Left None,
    # the OMS derives the ship-by date from the delivery kind at payment.
    ship_by: datetime | None = None
    deliver_by: datetime | None = None


@dataclass(frozen=True)
class WebhookRequest:
    """A pushed HTTP request, exactly as received."""

    url: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass(frozen=True)
class WebhookVerdict:
    """Whether a pushed request is authentic; ``reason`` says why not.

    For an accepted one, say what the sender signed that guards against replays, where
    it has it: ``event_id``, the sender's unique id of this delivery (a second request
    with the same id is refused), and ``signed_at``, a timestamp covered by the
    signature (a request older than ``OMS_WEBHOOK_TOLERANCE_SECONDS`` is refused).
    """

    accepted: bool
    reason: str | None = None
    event_id: str | None = None
    signed_at: datetime | None = None


# --- going back to the channel ---------------------------------------------


@dataclass(frozen=True)
class StockPush:
    """Set the sellable quantity of one listing at the channel."""

    sku: str
    channel_sku_id: str
    quantity: int
    channel_item_id: str | None = None


@dataclass(frozen=True)
class StockPushResult:
    channel_sku_id: str
    ok: bool
    message: str | None = None


@dataclass(frozen=True)
class ShipmentLine:
    channel_line_id: str
    quantity: int


@dataclass(frozen=True)
class ShipmentConfirmation:
    """Tell the channel an order (or part of it) left the warehouse."""

    external_order_id: str
    carrier_code: str
    tracking_number: str
    shipped_at: datetime
    lines: list[ShipmentLine] = field(default_factory=list)
    partial: bool = False
    carrier_name: str | None = None
    service: str | None = None


# --- notifications ----------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """Something a person should act on (low stock, delayed order, failed sync)."""

    kind: str
    message: str
    sku: str | None = None
    location_code: str | None = None
    suggested_quantity: int | None = None
    created_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


# --- allocation -------------------------------------------------------------


@dataclass(frozen=True)
class CandidateLocation:
    code: str
    kind: str
    priority: int
    available: dict[str, int]  # sku -> units available at this location
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class AllocationRequest:
    order_number: str
    lines: dict[str, int]  # sku -> units wanted
    latitude: float | None = None
    longitude: float | None = None
    country: str | None = None
    region: str | None = None
