"""Hook implementations of the ``easypost`` carrier kind.

EasyPost sells other carriers' services (USPS, UPS, FedEx…) under one account:
a shipment is created with the addresses and the parcel, answers with rates,
and one rate is bought for a label and a tracking code (carrier-samples README
section 3).

Idempotency of ``oms_carrier_create_waybill``: the OMS's ``request.reference``
is sent as the shipment's EasyPost ``reference``, and EasyPost accepts a
reference in place of an id (docs.easypost.com/docs/easypost-objects). Every
attempt therefore first asks ``GET /shipments/{reference}``:

* none yet → create the shipment (with the reference) and buy;
* found, not bought (the create's or the buy's answer was lost before the buy
  went through) → buy the matching rate of *that* shipment, no second shipment;
* found and bought (the buy's answer was lost) → return the same waybill.

A buy refused because the shipment is already bought (code UNCONFIRMED in the
README) is settled the same way, by reading the shipment again. Quotes create
shipments *without* a reference, so the reference names only the one shipment
the waybill was bought on. EasyPost does not promise references are unique
(its docs recommend ids); ours are, per the contract, so the look-up is exact
unless someone else reuses the reference on the same account.

Webhooks are configured once per EasyPost account (dashboard or ``POST
/webhooks``, with the ``webhookSecret``); ``oms_carrier_subscribe`` only makes
sure a tracker exists, since EasyPost has no per-tracker callback URL.
"""

from __future__ import annotations

import json
from typing import Any

from oms_graphql.plugins.calls import with_retries
from oms_graphql.plugins.carrier_contract import (
    CarrierConfig,
    CarrierKind,
    CarrierService,
    DeliveryKind,
    Label,
    RateQuote,
    ShipmentRequest,
    TrackingEvent,
    TrackingPush,
    Waybill,
)
from oms_graphql.plugins.contract import (
    PayloadError,
    PermanentError,
    RetryableError,
    SettingField,
    WebhookRequest,
    WebhookVerdict,
)
from oms_graphql.plugins.hookspecs import hookimpl
from oms_plugin_easypost.client import (
    DEFAULT_API_URL,
    DEFAULT_CALLS_PER_SECOND,
    DEFAULT_TIMEOUT_SECONDS,
    SIGNATURE_HEADER,
    EasyPostClient,
    EasyPostError,
    signature_matches,
)
from oms_plugin_easypost.mapping import (
    is_bought,
    label_url,
    money,
    rate_quote,
    rates_of,
    service_code,
    shipment_body,
    split_service_code,
    tracking_events,
)

KIND = "easypost"
LABEL_FORMATS = {"PDF": "application/pdf", "PNG": "image/png", "ZPL": "application/zpl"}
DEFAULT_LABEL_FORMAT = "PDF"  # the contract's Label is a PDF unless it says otherwise
TRACKER_UPDATED = "tracker.updated"

# The services the README's samples show for a test account (all USPS, domestic):
# shipment_create_response.json rates, with their delivery_days. Weight and size
# limits are the carriers', not in the samples, so none are claimed here. Accounts
# with other carriers list their services in the ``services`` setting.
# An EasyPost Shipment object carries one ``parcel`` (README samples shipment_create_*):
# a heavier consignment would be one shipment per parcel, which this plugin does not do yet.
ONE_PARCEL = 1
DEFAULT_SERVICES = (
    CarrierService(
        code=service_code("USPS", "GroundAdvantage"),
        name="USPS Ground Advantage",
        kind=DeliveryKind.STANDARD,
        transit_days=3,
        areas=("US",),
        currency="USD",
        max_parcels=ONE_PARCEL,
    ),
    CarrierService(
        code=service_code("USPS", "Priority"),
        name="USPS Priority Mail",
        kind=DeliveryKind.STANDARD,
        transit_days=2,
        areas=("US",),
        currency="USD",
        max_parcels=ONE_PARCEL,
    ),
    CarrierService(
        code=service_code("USPS", "Express"),
        name="USPS Priority Mail Express",
        kind=DeliveryKind.EXPRESS,
        transit_days=2,
        areas=("US",),
        currency="USD",
        max_parcels=ONE_PARCEL,
    ),
)
EXPRESS_WORDS = ("express", "overnight", "nextday", "2day", "priorityovernight")


@hookimpl
def oms_carrier_kinds() -> list[CarrierKind]:
    return [
        CarrierKind(
            kind=KIND,
            name="EasyPost",
            settings=(
                SettingField("apiUrl", "EasyPost API URL", kind="url", default=DEFAULT_API_URL),
                SettingField("apiKey", "API key (test or production)", secret=True),
                SettingField(
                    "webhookSecret",
                    "Webhook secret",
                    secret=True,
                    help="The webhook_secret of the account's webhook pointing at /webhooks/carriers/{code}",
                ),
                SettingField(
                    "services",
                    "Services to offer (CARRIER:Service)",
                    kind="list",
                    required=False,
                    help="Default: " + ", ".join(service.code for service in DEFAULT_SERVICES),
                ),
                SettingField(
                    "labelFormat", "Label format", required=False, default=DEFAULT_LABEL_FORMAT, help="PDF, PNG or ZPL"
                ),
                SettingField(
                    "timeoutSeconds",
                    "HTTP timeout in seconds",
                    kind="int",
                    required=False,
                    default=int(DEFAULT_TIMEOUT_SECONDS),
                ),
                SettingField(
                    "callsPerSecond",
                    "Most EasyPost calls per second for this key",
                    kind="int",
                    required=False,
                    default=DEFAULT_CALLS_PER_SECOND,
                ),
            ),
            creates_waybills=True,
            receives_webhooks=True,
            # No code per kind: the transporting carrier is the bought rate's (USPS, UPS,
            # FedEx…), named by the service code's CARRIER part (oms_carrier_marketplace_code).
            marketplace_codes={},
        )
    ]


# EasyPost's carrier names (rates[].carrier) where Amazon's carrierCode differs; the others
# (USPS, UPS, FedEx, OnTrac…) are the same word. Amazon's list is in Seller Central, not in
# the samples (confirmShipment_request.json shows "UPS").
AMAZON_CARRIER_CODES = {"DHLExpress": "DHL", "CanadaPost": "Canada Post", "LaserShip": "Lasership"}


@hookimpl
def oms_carrier_marketplace_code(carrier: CarrierConfig, service_code: str, channel_kind: str) -> str | None:
    if carrier.kind != KIND or not service_code:
        return None
    try:
        carrier_name, _service = split_service_code(service_code)
    except PermanentError:
        return None
    return AMAZON_CARRIER_CODES.get(carrier_name, carrier_name) if channel_kind == "amazon" else carrier_name


@hookimpl
def oms_carrier_check_settings(kind: str, settings: dict) -> list[tuple[str, str]] | None:
    if kind != KIND:
        return None
    problems = []
    api_url = str(settings.get("apiUrl") or "")
    if not api_url.startswith(("http://", "https://")):
        problems.append(("apiUrl", f"Use the full API URL, e.g. {DEFAULT_API_URL}"))
    for key, what in (("apiKey", "the account's API key"), ("webhookSecret", "the webhook's secret")):
        if not str(settings.get(key) or "").strip():
            problems.append((key, f"Give {what} (EasyPost dashboard)"))
    label_format = str(settings.get("labelFormat") or DEFAULT_LABEL_FORMAT).upper()
    if label_format not in LABEL_FORMATS:
        problems.append(("labelFormat", f"Choose one of {', '.join(LABEL_FORMATS)}"))
    services = settings.get("services")
    if services is not None:
        if not isinstance(services, list) or not services:
            problems.append(("services", "Give a list of service codes such as USPS:GroundAdvantage"))
        else:
            for code in services:
                try:
                    split_service_code(str(code))
                except PermanentError as error:
                    problems.append(("services", str(error)))
    for key, what in (("timeoutSeconds", "seconds"), ("callsPerSecond", "calls per second")):
        value = settings.get(key)
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            problems.append((key, f"Give a positive number of {what}"))
    return problems


@hookimpl
def oms_carrier_services(carrier: CarrierConfig) -> list[CarrierService] | None:
    if carrier.kind != KIND:
        return None
    return list(configured_services(carrier))


@hookimpl
def oms_carrier_quote(carrier: CarrierConfig, request: ShipmentRequest) -> list[RateQuote] | None:
    if carrier.kind != KIND:
        return None
    offered = {service.code for service in configured_services(carrier)}
    with client_for(carrier) as client:
        # No reference on a quote's shipment: the reference names the bought one only.
        shipment = client.create_shipment(shipment_body(request, label_format(carrier), with_reference=False))
    quotes = [rate_quote(rate) for rate in rates_of(shipment)]
    wanted = request.service_code or None
    return [quote for quote in quotes if quote.service_code in offered and wanted in (None, quote.service_code)]


@hookimpl
def oms_carrier_create_waybill(carrier: CarrierConfig, request: ShipmentRequest) -> Waybill | None:
    if carrier.kind != KIND:
        return None
    if request.service_code not in {service.code for service in configured_services(carrier)}:
        raise PermanentError(
            f"EasyPost carrier {carrier.code} does not offer service {request.service_code!r}; "
            "choose one of its services or add it to the 'services' setting"
        )
    body = shipment_body(request, label_format(carrier), with_reference=True)  # refuses what EasyPost cannot ship
    with client_for(carrier) as client:
        # Each attempt starts from a look-up by reference, so retrying after a lost
        # answer never buys twice (module docstring).
        shipment = with_retries(lambda: bought_shipment(client, request, body))
        try:
            label: Label | None = download_label(client, shipment, label_format(carrier))
        except RetryableError:
            label = None  # the postage is bought: keep the waybill, the OMS fetches the label later
    return waybill_of(shipment, label)


def bought_shipment(client: EasyPostClient, request: ShipmentRequest, body: dict[str, Any]) -> dict[str, Any]:
    """The shipment of ``request.reference``, bought: found, found and bought now, or created and bought."""
    shipment = client.get_shipment(request.reference, retry=False)
    if shipment is None:
        shipment = client.create_shipment(body, retry=False)
    if is_bought(shipment):
        return shipment
    rate = matching_rate(shipment, request.service_code)
    try:
        return client.buy(str(shipment["id"]), str(rate["id"]))
    except EasyPostError:
        # Bought meanwhile (a concurrent or earlier attempt)? Then that is the waybill.
        again = client.get_shipment(str(shipment["id"]), retry=False)
        if again is not None and is_bought(again):
            return again
        raise


def matching_rate(shipment: dict[str, Any], wanted: str) -> dict[str, Any]:
    carrier_name, service = split_service_code(wanted)
    for rate in rates_of(shipment):
        if rate.get("carrier") == carrier_name and rate.get("service") == service:
            return rate
    offered = ", ".join(service_code(str(r.get("carrier")), str(r.get("service"))) for r in rates_of(shipment))
    messages = "; ".join(
        str(m.get("message", m)) if isinstance(m, dict) else str(m) for m in shipment.get("messages") or []
    )
    raise PermanentError(
        f"EasyPost has no {wanted} rate for shipment {shipment.get('id')} (rates: {offered or 'none'})"
        + (f" — {messages}" if messages else "")
        + "; choose another service"
    )


def waybill_of(shipment: dict[str, Any], label: Label | None) -> Waybill:
    selected = shipment.get("selected_rate") or {}
    return Waybill(
        tracking_number=str(shipment["tracking_code"]),
        carrier_reference=str(shipment["id"]),
        label=label,
        price=money(selected.get("rate"), "selected_rate.rate"),
        currency=selected.get("currency") or None,
    )


@hookimpl
def oms_carrier_fetch_label(carrier: CarrierConfig, waybill: Waybill) -> Label | None:
    if carrier.kind != KIND:
        return None
    if not waybill.carrier_reference:
        raise PermanentError(
            f"EasyPost waybill {waybill.tracking_number} has no shipment id (shp_…); the label cannot be found"
        )
    with client_for(carrier) as client:
        shipment = client.get_shipment(waybill.carrier_reference)
        if shipment is None or not is_bought(shipment):
            raise PermanentError(f"EasyPost shipment {waybill.carrier_reference} has no purchased label")
        return download_label(client, shipment, label_format(carrier))


def download_label(client: EasyPostClient, shipment: dict[str, Any], file_format: str) -> Label:
    url = label_url(shipment, file_format)
    if url is None:
        # Asked for another format than the label was made in: have EasyPost convert it.
        url = label_url(client.convert_label(str(shipment["id"]), file_format), file_format)
    if url is None:
        raise RetryableError(f"EasyPost has no {file_format} label for shipment {shipment['id']} yet")
    content, _ = client.download(url)
    return Label(content=content, media_type=LABEL_FORMATS[file_format])


# Shipment.refund_status after POST /shipments/{id}/refund (not in the carrier samples; from
# docs.easypost.com/docs/shipments/shipping-refund): "submitted" is the usual first answer and
# the refund then goes through at the carrier; "rejected" and "not_applicable" mean no refund.
REFUND_ACCEPTED = {"submitted", "refunded"}


@hookimpl
def oms_carrier_cancel(carrier: CarrierConfig, waybill: Waybill) -> bool | None:
    """Cancelling an EasyPost label is refunding its postage (a USPS label must not have been scanned)."""
    if carrier.kind != KIND:
        return None
    if not waybill.carrier_reference:
        raise PermanentError(
            f"EasyPost waybill {waybill.tracking_number} has no shipment id (shp_…): "
            "refund it in the EasyPost dashboard"
        )
    with client_for(carrier) as client:
        shipment = client.refund(waybill.carrier_reference)
    status = str(shipment.get("refund_status") or "")
    if status not in REFUND_ACCEPTED:
        raise PermanentError(
            f"EasyPost did not refund the label of {waybill.tracking_number} (refund_status {status or 'none'}): "
            "the carrier may have scanned it already, or refunds do not apply to it"
        )
    return True


@hookimpl
def oms_carrier_track(
    carrier: CarrierConfig, tracking_number: str, company_code: str | None
) -> list[TrackingEvent] | None:
    if carrier.kind != KIND:
        return None
    # POST /trackers answers with the tracker of that code (EasyPost prevents duplicates);
    # the plugin keeps no tracker ids, so this is its poll.
    with client_for(carrier) as client:
        return tracking_events(client.create_tracker(tracking_number, company_code))


@hookimpl
def oms_carrier_subscribe(carrier: CarrierConfig, tracking_number: str, company_code: str | None) -> bool | None:
    if carrier.kind != KIND:
        return None
    with client_for(carrier) as client:
        tracker = client.create_tracker(tracking_number, company_code)
    return bool(tracker.get("id"))


@hookimpl
def oms_carrier_verify_webhook(carrier: CarrierConfig, request: WebhookRequest) -> WebhookVerdict | None:
    if carrier.kind != KIND:
        return None
    secret = str(carrier.settings.get("webhookSecret") or "")
    if not secret:
        return WebhookVerdict(False, "the carrier has no webhookSecret setting: set the webhook's secret")
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not header:
        return WebhookVerdict(False, "no X-Hmac-Signature header: the webhook has no secret at EasyPost")
    if not signature_matches(request.body, header, secret):
        return WebhookVerdict(False, "X-Hmac-Signature does not match the body and the webhookSecret")
    # De-duplicate on the signed Event.id (carrier-samples README, "Webhooks"): a replay is refused.
    try:
        event = json.loads(request.body)
    except ValueError:
        event = None
    event_id = event.get("id") if isinstance(event, dict) else None
    return WebhookVerdict(True, event_id=str(event_id)[:200] if event_id else None)


@hookimpl
def oms_carrier_parse_tracking_push(carrier: CarrierConfig, body: bytes) -> TrackingPush | None:
    if carrier.kind != KIND:
        return None
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"EasyPost webhook body is not JSON: {exc}") from None
    if not isinstance(event, dict) or event.get("object") != "Event":
        raise PayloadError("EasyPost webhook body is not an Event object")
    # Any 2XX is the answer EasyPost wants; other events (batch.*, refund.*) are acknowledged and skipped.
    if event.get("description") != TRACKER_UPDATED:
        return TrackingPush(events=(), response_media_type="text/plain")
    return TrackingPush(events=tuple(tracking_events(event.get("result"))), response_media_type="text/plain")


# --- settings ---------------------------------------------------------------


def configured_services(carrier: CarrierConfig) -> tuple[CarrierService, ...]:
    codes = carrier.settings.get("services")
    if not codes:
        return DEFAULT_SERVICES
    known = {service.code: service for service in DEFAULT_SERVICES}
    services = []
    for code in codes:
        carrier_name, service = split_service_code(str(code))
        express = any(word in service.lower() for word in EXPRESS_WORDS)
        services.append(
            known.get(str(code))
            or CarrierService(
                code=str(code),
                name=f"{carrier_name} {service}",
                kind=DeliveryKind.EXPRESS if express else DeliveryKind.STANDARD,
                max_parcels=ONE_PARCEL,
            )
        )
    return tuple(services)


def label_format(carrier: CarrierConfig) -> str:
    value = str(carrier.settings.get("labelFormat") or DEFAULT_LABEL_FORMAT).upper()
    if value not in LABEL_FORMATS:
        raise PermanentError(f"EasyPost carrier {carrier.code}: labelFormat {value!r} is not PDF, PNG or ZPL")
    return value


def client_for(carrier: CarrierConfig) -> EasyPostClient:
    settings = carrier.settings
    if not settings.get("apiKey"):
        raise PermanentError(f"EasyPost carrier {carrier.code}: setting 'apiKey' is missing")
    return EasyPostClient(
        api_url=str(settings.get("apiUrl") or DEFAULT_API_URL),
        api_key=str(settings["apiKey"]),
        timeout=float(settings.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS),
        calls_per_second=float(settings.get("callsPerSecond") or DEFAULT_CALLS_PER_SECOND),
    )
