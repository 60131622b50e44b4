"""Plain data types that cross the carrier-plugin boundary.

Like :mod:`oms_graphql.plugins.contract` for channels: a carrier plugin receives
and returns only these (and plain Python values), never an ORM object or a
session. Times are timezone-aware UTC ``datetime``s; money is ``Decimal`` with
a separate ISO 4217 currency code; weights in grams, lengths in millimetres.
Errors are the channel contract's: ``RetryableError`` (throttled, 5xx, timeout),
``PermanentError`` (rejected: bad address, service unavailable, bad
credentials), ``PayloadError`` (a push or answer that cannot be read).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from oms_graphql.plugins.contract import NormalizedAddress, SettingField


class DeliveryKind(enum.StrEnum):
    """What kind of delivery a service is (API.md ``DeliveryOptionKind``)."""

    STANDARD = "STANDARD"
    EXPRESS = "EXPRESS"
    SAME_DAY = "SAME_DAY"
    PICKUP = "PICKUP"


class Handling(enum.StrEnum):
    """Special handling an item needs and a service may offer (API.md ``Handling``)."""

    FRAGILE = "FRAGILE"
    COLD_CHAIN = "COLD_CHAIN"
    OVERSIZE = "OVERSIZE"
    HAZMAT = "HAZMAT"


class TrackingStatus(enum.StrEnum):
    """The neutral tracking vocabulary (carrier-samples README, ``status_map.json``)."""

    PRE_TRANSIT = "PRE_TRANSIT"  # label made, not yet handed over
    IN_TRANSIT = "IN_TRANSIT"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    DELIVERED = "DELIVERED"
    FAILED_ATTEMPT = "FAILED_ATTEMPT"
    EXCEPTION = "EXCEPTION"  # lost, damaged, held, refused…
    RETURNED_TO_SENDER = "RETURNED_TO_SENDER"


@dataclass(frozen=True)
class CarrierKind:
    """What a carrier plugin offers: its kind name (``sf``), settings and abilities."""

    kind: str
    name: str
    settings: tuple[SettingField, ...] = ()
    creates_waybills: bool = True  # False: tracking only (kuaidi100), or no outside API at all
    receives_webhooks: bool = False  # pushes tracking to POST /webhooks/carriers/{code}
    # The carrier's company code as each marketplace names it, by channel kind
    # (Taobao ``company_code``, JD ``logiCoprId``, Amazon ``carrierCode``).
    marketplace_codes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CarrierConfig:
    """One configured carrier as a plugin sees it: settings already decrypted."""

    code: str
    kind: str
    # Kept out of repr(): the settings hold decrypted secrets, and reprs end up in logs.
    settings: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class CarrierService:
    """One service a carrier sells, with the limits the OMS checks before offering it.

    ``areas`` are ISO 3166-1 country codes (``"CN"``) or ISO 3166-2 region codes
    (``"CN-SH"``) the service delivers to; empty means everywhere. ``handling`` is
    what it can carry; an item needing any other handling rules the service out.
    """

    code: str
    name: str
    kind: DeliveryKind
    handling: tuple[Handling, ...] = ()
    max_weight_grams: int | None = None
    max_length_mm: int | None = None  # the longest side of one parcel
    # ``max_weight_grams`` and ``max_length_mm`` are per parcel: a shipment heavier than one
    # parcel goes in several, up to ``max_parcels`` (None: any number) in one shipment.
    max_parcels: int | None = None
    transit_days: int | None = None
    areas: tuple[str, ...] = ()
    currency: str | None = None  # what its quotes are in


@dataclass(frozen=True)
class Parcel:
    weight_grams: int
    length_mm: int | None = None
    width_mm: int | None = None
    height_mm: int | None = None


@dataclass(frozen=True)
class ParcelItem:
    """What is in the parcels, for customs and the label (name, quantity, unit value)."""

    sku: str
    name: str
    quantity: int
    unit_value: Decimal | None = None


@dataclass(frozen=True)
class ShipmentRequest:
    """One shipment to quote or to create a waybill for.

    ``reference`` is unique per shipment and stays the same on every retry: a
    plugin passes it to the carrier as the merchant's order id, so a retried
    create never makes a second waybill (look the first one up instead).
    """

    reference: str
    service_code: str
    sender: NormalizedAddress
    recipient: NormalizedAddress
    parcels: tuple[Parcel, ...]
    items: tuple[ParcelItem, ...] = ()
    handling: tuple[Handling, ...] = ()
    declared_value: Decimal | None = None
    currency: str | None = None
    ship_at: datetime | None = None


@dataclass(frozen=True)
class RateQuote:
    service_code: str
    price: Decimal | None
    currency: str | None
    estimated_delivery_at: datetime | None = None
    transit_days: int | None = None
    carrier_rate_id: str | None = None  # what the carrier calls this rate (EasyPost ``rate.id``)


@dataclass(frozen=True)
class Waybill:
    """A created shipment at the carrier: the tracking number, and the label when it comes at once."""

    tracking_number: str
    carrier_reference: str | None = None  # the carrier's own id (EasyPost ``shp_…``, SF order id)
    label: Label | None = None
    price: Decimal | None = None
    currency: str | None = None
    # One number per parcel of the request, in its order, when the carrier numbers each
    # parcel (SF: the master waybill, then the child waybills 子单); empty otherwise.
    parcel_tracking_numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Label:
    """A printable label document (PDF unless ``media_type`` says otherwise)."""

    content: bytes = field(repr=False)
    media_type: str = "application/pdf"


@dataclass(frozen=True)
class TrackingEvent:
    """One tracking event, with the carrier's own code and text kept beside the neutral status."""

    tracking_number: str
    status: TrackingStatus
    occurred_at: datetime
    carrier_code: str = ""  # the carrier's status or op code (SF opCode "80")
    description: str = ""
    location: str | None = None


@dataclass(frozen=True)
class TrackingPush:
    """What a pushed tracking request said, and what to answer the carrier.

    ``response_body`` / ``response_status`` are sent back as they are (SF wants
    ``{"return_code":"0000"}``; Kuaidi100 ``{"result":true,"returnCode":"200"}``).
    """

    events: tuple[TrackingEvent, ...]
    response_body: bytes = b""
    response_media_type: str = "application/json"
    response_status: int = 200
