"""EasyPost payloads ↔ the carrier contract's dataclasses.

Units (README "Endpoints and call shape"): EasyPost weighs in ounces and
measures in inches, one decimal; money is a string of dollars; times are ISO
8601 with ``Z`` or the event's local offset.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from oms_graphql.plugins.carrier_contract import Parcel, RateQuote, ShipmentRequest, TrackingEvent, TrackingStatus
from oms_graphql.plugins.contract import NormalizedAddress, PayloadError, PermanentError

GRAMS_PER_OUNCE = Decimal("28.349523125")
MM_PER_INCH = Decimal("25.4")
SERVICE_SEPARATOR = ":"

# status_map.json "easypost" (Tracker.status and TrackingDetail.status → neutral).
STATUS_MAP = {
    "unknown": TrackingStatus.PRE_TRANSIT,  # no carrier info yet: never a step backwards
    "pre_transit": TrackingStatus.PRE_TRANSIT,
    "in_transit": TrackingStatus.IN_TRANSIT,
    "out_for_delivery": TrackingStatus.OUT_FOR_DELIVERY,
    "available_for_pickup": TrackingStatus.OUT_FOR_DELIVERY,  # held at a pickup point
    "delivered": TrackingStatus.DELIVERED,
    "return_to_sender": TrackingStatus.RETURNED_TO_SENDER,
    "failure": TrackingStatus.EXCEPTION,
    "cancelled": TrackingStatus.EXCEPTION,
    "error": TrackingStatus.EXCEPTION,
}


# --- service codes ------------------------------------------------------------


def service_code(carrier: str, service: str) -> str:
    """One code per (carrier, service) of a rate: ``USPS:GroundAdvantage``.

    EasyPost sells many carriers' services under one account, so the code names
    both; the part before the colon is the transporting carrier.
    """
    return f"{carrier}{SERVICE_SEPARATOR}{service}"


def split_service_code(code: str) -> tuple[str, str]:
    carrier, separator, service = code.partition(SERVICE_SEPARATOR)
    if not separator or not carrier or not service:
        raise PermanentError(
            f"EasyPost service code {code!r} is not CARRIER:Service (e.g. USPS:GroundAdvantage); "
            "pick one of the carrier's services"
        )
    return carrier, service


# --- what we send -----------------------------------------------------------


def shipment_body(request: ShipmentRequest, label_format: str, with_reference: bool) -> dict[str, Any]:
    """The ``shipment`` object of ``POST /shipments`` (README sample ``shipment_create_request.json``)."""
    if len(request.parcels) != 1:
        raise PermanentError(
            f"EasyPost ships one parcel per shipment; shipment {request.reference} has "
            f"{len(request.parcels)}: split it into one shipment per parcel"
        )
    body: dict[str, Any] = {
        "to_address": address_body(request.recipient),
        "from_address": address_body(request.sender),
        "parcel": parcel_body(request.parcels[0]),
        "options": {"label_format": label_format},
    }
    if with_reference:
        body["reference"] = request.reference
    return body


def address_body(address: NormalizedAddress) -> dict[str, str]:
    fields = {
        "name": address.name,
        "street1": address.line1,
        "street2": address.line2,
        "city": address.city,
        "state": address.region,
        "zip": address.postal_code,
        "country": address.country,
        "phone": address.phone,
        "email": address.email,
    }
    return {key: value for key, value in fields.items() if value}


def parcel_body(parcel: Parcel) -> dict[str, str]:
    body = {"weight": _one_decimal(Decimal(parcel.weight_grams) / GRAMS_PER_OUNCE)}
    for key, millimetres in (("length", parcel.length_mm), ("width", parcel.width_mm), ("height", parcel.height_mm)):
        if millimetres:
            body[key] = _one_decimal(Decimal(millimetres) / MM_PER_INCH)
    return body


def _one_decimal(value: Decimal) -> str:
    # Round up: a parcel declared lighter or smaller than it is gets surcharged.
    rounded = value.quantize(Decimal("0.1"), rounding="ROUND_CEILING")
    return str(max(rounded, Decimal("0.1")))


# --- what we read -------------------------------------------------------------


def rate_quote(rate: dict[str, Any]) -> RateQuote:
    days = rate.get("delivery_days") or rate.get("est_delivery_days")
    return RateQuote(
        service_code=service_code(str(rate.get("carrier") or ""), str(rate.get("service") or "")),
        price=money(rate.get("rate"), "rate.rate"),
        currency=rate.get("currency") or None,
        estimated_delivery_at=timestamp(rate["delivery_date"], "rate.delivery_date")
        if rate.get("delivery_date")
        else None,
        transit_days=int(days) if isinstance(days, int) else None,
        carrier_rate_id=rate.get("id"),
    )


def rates_of(shipment: dict[str, Any]) -> list[dict[str, Any]]:
    rates = shipment.get("rates") or []
    if not isinstance(rates, list) or not all(isinstance(rate, dict) for rate in rates):
        raise PayloadError("EasyPost shipment: 'rates' is not a list of Rate objects")
    return rates


def is_bought(shipment: dict[str, Any]) -> bool:
    return bool(shipment.get("tracking_code")) and isinstance(shipment.get("postage_label"), dict)


def label_url(shipment: dict[str, Any], label_format: str) -> str | None:
    """The URL of the label in ``label_format``, if EasyPost has made that file yet."""
    label = shipment.get("postage_label") or {}
    wanted = label_format.lower()
    url = label.get(f"label_{wanted}_url")
    if url:
        return str(url)
    # label_url is the file named by label_file_type (image/png unless asked otherwise).
    if wanted in str(label.get("label_file_type") or "image/png").lower() and label.get("label_url"):
        return str(label["label_url"])
    return None


def money(value: Any, field: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise PayloadError(f"EasyPost {field} is not an amount: {value!r}") from None


def timestamp(value: Any, field: str) -> datetime:
    """An ISO 8601 time with ``Z`` or an offset, as UTC (never assume ``Z``: README)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(f"EasyPost {field} is not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def tracking_events(tracker: dict[str, Any]) -> list[TrackingEvent]:
    """A Tracker's ``tracking_details`` as events, oldest first."""
    if not isinstance(tracker, dict) or tracker.get("object", "Tracker") != "Tracker":
        raise PayloadError("EasyPost: expected a Tracker object")
    number = tracker.get("tracking_code")
    if not number:
        raise PayloadError("EasyPost Tracker has no 'tracking_code'")
    details = tracker.get("tracking_details") or []
    if not isinstance(details, list):
        raise PayloadError("EasyPost Tracker: 'tracking_details' is not a list")
    events = []
    for index, detail in enumerate(details):
        if not isinstance(detail, dict):
            raise PayloadError(f"EasyPost Tracker: tracking_details[{index}] is not an object")
        code = str(detail.get("status") or "unknown")
        events.append(
            TrackingEvent(
                tracking_number=str(number),
                # An unknown status keeps the shipment where it is, like "unknown".
                status=STATUS_MAP.get(code, TrackingStatus.PRE_TRANSIT),
                occurred_at=timestamp(detail.get("datetime"), f"tracking_details[{index}].datetime"),
                carrier_code=code,
                description=str(detail.get("message") or detail.get("description") or ""),
                location=_location(detail.get("tracking_location")),
            )
        )
    events.sort(key=lambda event: event.occurred_at)
    return events


def _location(location: Any) -> str | None:
    if not isinstance(location, dict):
        return None
    parts = [location.get(key) for key in ("city", "state", "zip", "country")]
    text = ", ".join(str(part) for part in parts if part)
    return text or None
