"""The easypost carrier plugin against the fake EasyPost API, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from importlib.metadata import entry_points

import pluggy
import pytest
from oms_plugin_easypost import plugin
from oms_plugin_easypost.client import signature_matches, webhook_signature
from oms_plugin_easypost.mapping import STATUS_MAP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oms_graphql.plugins import hookspecs
from oms_graphql.plugins.carrier_contract import (
    CarrierConfig,
    DeliveryKind,
    Parcel,
    ShipmentRequest,
    TrackingStatus,
    Waybill,
)
from oms_graphql.plugins.contract import (
    NormalizedAddress,
    PayloadError,
    PermanentError,
    RetryableError,
    WebhookRequest,
)
from tests.fakes.easypost import API_PATH, SAMPLES, EasyPostState, load_sample, make_app, sample_bytes
from tests.fakes.server import serve

GROUND = "USPS:GroundAdvantage"
SENDER = NormalizedAddress(
    country="US", line1="417 Montgomery Street", line2="5th Floor", name="EasyPost", city="San Francisco",
    region="CA", postal_code="94104", phone="4153334445",
)  # fmt: skip
RECIPIENT = NormalizedAddress(
    country="US", line1="179 N Harbor Dr", name="Test Recipient", city="Redondo Beach", region="CA",
    postal_code="90277", phone="5555550100", email="recipient@example.test",
)  # fmt: skip


@pytest.fixture
def fake() -> EasyPostState:
    return EasyPostState()


@pytest.fixture
def carrier(fake: EasyPostState) -> Iterator[CarrierConfig]:
    with serve(make_app(fake)) as base_url:
        settings = {"apiUrl": base_url + API_PATH, **fake.settings(), "timeoutSeconds": 1}
        yield CarrierConfig(code="easypost-us", kind="easypost", settings=settings)


def with_settings(carrier: CarrierConfig, **changes: object) -> CarrierConfig:
    return CarrierConfig(code=carrier.code, kind=carrier.kind, settings={**carrier.settings, **changes})


def shipment(reference: str = "OMS-20250314-000125", service_code: str = GROUND, **changes) -> ShipmentRequest:
    fields = dict(
        reference=reference,
        service_code=service_code,
        sender=SENDER,
        recipient=RECIPIENT,
        parcels=(Parcel(weight_grams=1868, length_mm=513, width_mm=277, height_mm=127),),
    )
    return ShipmentRequest(**{**fields, **changes})


def webhook(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-hmac-signature"] = signature
    return WebhookRequest(url="https://oms.example.test/webhooks/carriers/easypost-us", headers=headers, body=body)


# --- webhook signature ------------------------------------------------------------


@pytest.mark.parametrize("name", ["webhook_tracker_updated", "event_body_official"])
def test_the_signature_matches_the_signed_samples(name):
    vector = load_sample(f"{name}.signature.json")
    body = sample_bytes(vector["body_file"])
    assert not body.endswith(b"\n")  # signed byte for byte

    assert webhook_signature(body, vector["webhook_secret"]) == vector["headers"]["x-hmac-signature"]
    assert signature_matches(body, vector["headers"]["x-hmac-signature"], vector["webhook_secret"])


def test_the_secret_is_nfkd_normalised_as_the_official_sdk_does():
    vector = load_sample("event_body_official.signature.json")
    body = sample_bytes(vector["body_file"])
    # "sécret" composed or decomposed: the same key once normalised.
    assert webhook_signature(body, "se\u0301cret") == vector["headers"]["x-hmac-signature"]
    assert webhook_signature(body, "s\u00e9cret") != vector["without_nfkd_normalisation_would_be"]


def test_a_signed_sample_push_is_accepted_and_parsed():
    vector = load_sample("webhook_tracker_updated.signature.json")
    body = sample_bytes(vector["body_file"])
    carrier = CarrierConfig(code="easypost-us", kind="easypost", settings={"webhookSecret": vector["webhook_secret"]})

    verdict = plugin.oms_carrier_verify_webhook(
        carrier=carrier, request=webhook(body, vector["headers"]["x-hmac-signature"])
    )
    push = plugin.oms_carrier_parse_tracking_push(carrier=carrier, body=body)

    assert verdict.accepted
    assert [event.status for event in push.events] == [
        TrackingStatus.PRE_TRANSIT,
        TrackingStatus.IN_TRANSIT,
        TrackingStatus.OUT_FOR_DELIVERY,
        TrackingStatus.DELIVERED,
    ]
    delivered = push.events[-1]
    assert delivered.tracking_number == "EZ4000000004" and delivered.carrier_code == "delivered"
    assert delivered.description == "Delivered, In/At Mailbox" and delivered.location == "REDONDO BEACH, CA, 90277"
    assert delivered.occurred_at.isoformat() == "2025-03-17T21:03:00+00:00"
    assert push.response_status == 200 and push.response_body == b""


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda body, sig: (body.replace(b"delivered", b"in_transit", 1), sig), "does not match"),
        (lambda body, sig: (body, sig.replace("7646", "7647")), "does not match"),
        (lambda body, sig: (body + b"\n", sig), "does not match"),  # re-serialised or reformatted
        (lambda body, sig: (body, None), "no X-Hmac-Signature"),
    ],
)
def test_forged_pushes_are_refused(change, reason):
    vector = load_sample("webhook_tracker_updated.signature.json")
    body, signature = change(sample_bytes(vector["body_file"]), vector["headers"]["x-hmac-signature"])
    carrier = CarrierConfig(code="easypost-us", kind="easypost", settings={"webhookSecret": vector["webhook_secret"]})

    verdict = plugin.oms_carrier_verify_webhook(carrier=carrier, request=webhook(body, signature))

    assert not verdict.accepted and reason in verdict.reason


def test_a_push_signed_with_another_secret_is_refused():
    vector = load_sample("webhook_tracker_updated.signature.json")
    carrier = CarrierConfig(code="easypost-us", kind="easypost", settings={"webhookSecret": "whsec_someone_else"})
    request = webhook(sample_bytes(vector["body_file"]), vector["headers"]["x-hmac-signature"])

    assert not plugin.oms_carrier_verify_webhook(carrier=carrier, request=request).accepted


def test_the_official_docs_event_parses_and_other_events_are_acknowledged():
    carrier = CarrierConfig(code="easypost-us", kind="easypost", settings={})
    docs_event = load_sample("event_tracker_updated_docs_example.json")

    push = plugin.oms_carrier_parse_tracking_push(carrier=carrier, body=json.dumps(docs_event).encode())
    batch = plugin.oms_carrier_parse_tracking_push(
        carrier=carrier, body=json.dumps({**docs_event, "description": "batch.updated"}).encode()
    )

    # Sorted oldest first: the example lists "DELIVERED" with an earlier time than the scans.
    assert push.events[0].status is TrackingStatus.DELIVERED and len(push.events) == 6
    assert push.events[-1].status is TrackingStatus.OUT_FOR_DELIVERY
    assert batch.events == () and batch.response_status == 200


@pytest.mark.parametrize(
    "body", [b"{not json", b"[]", b'{"object":"Event","description":"tracker.updated","result":{}}']
)
def test_an_unreadable_push_is_a_payload_error(body):
    carrier = CarrierConfig(code="easypost-us", kind="easypost", settings={})
    with pytest.raises(PayloadError):
        plugin.oms_carrier_parse_tracking_push(carrier=carrier, body=body)


def test_the_status_map_is_the_shared_one():
    shared = json.loads((SAMPLES.parent / "status_map.json").read_text(encoding="utf-8"))["easypost"]["codes"]
    assert {code: status.value for code, status in STATUS_MAP.items()} == shared


# --- services and quotes ------------------------------------------------------------


def test_services_are_the_samples_usps_services_unless_configured(carrier):
    services = plugin.oms_carrier_services(carrier=carrier)
    configured = plugin.oms_carrier_services(carrier=with_settings(carrier, services=["UPS:Ground", "UPS:NextDayAir"]))

    assert [service.code for service in services] == ["USPS:GroundAdvantage", "USPS:Priority", "USPS:Express"]
    assert {service.areas for service in services} == {("US",)}
    assert services[2].kind is DeliveryKind.EXPRESS
    assert [(service.code, service.kind) for service in configured] == [
        ("UPS:Ground", DeliveryKind.STANDARD), ("UPS:NextDayAir", DeliveryKind.EXPRESS),
    ]  # fmt: skip


def test_a_quote_lists_every_offered_rate(carrier, fake):
    quotes = plugin.oms_carrier_quote(carrier=carrier, request=shipment(service_code=""))

    assert [(quote.service_code, quote.price, quote.transit_days) for quote in quotes] == [
        ("USPS:Express", Decimal("51.20"), 2), ("USPS:Priority", Decimal("11.01"), 2), (GROUND, Decimal("8.20"), 3),
    ]  # fmt: skip
    assert all(quote.currency == "USD" and quote.carrier_rate_id.startswith("rate_") for quote in quotes)
    [created] = fake.shipments.values()
    # Ounces and inches, one decimal, rounded up; no reference on a quote's shipment.
    assert created["parcel"]["weight"] == 65.9 and created["parcel"]["length"] == 20.2
    assert created["reference"] is None and fake.purchases == []


def test_a_quote_leaves_out_services_the_carrier_does_not_offer(carrier):
    only_ground = with_settings(carrier, services=[GROUND])
    assert [
        q.service_code for q in plugin.oms_carrier_quote(carrier=only_ground, request=shipment(service_code=""))
    ] == [GROUND]


def test_an_address_easypost_cannot_verify_is_refused_with_its_message(carrier):
    bad = shipment(recipient=NormalizedAddress(country="US", line1="", city="Nowhere"))
    with pytest.raises(
        PermanentError, match=r"ADDRESS\.VERIFY\.FAILURE.*Address not found.*street1: House number is missing"
    ):
        plugin.oms_carrier_quote(carrier=carrier, request=bad)


def test_more_than_one_parcel_is_refused_before_any_call(carrier, fake):
    two = shipment(parcels=(Parcel(weight_grams=500), Parcel(weight_grams=700)))
    with pytest.raises(PermanentError, match="one parcel per shipment"):
        plugin.oms_carrier_create_waybill(carrier=carrier, request=two)
    assert fake.calls == []


# --- waybills and labels ------------------------------------------------------------------


def test_a_waybill_buys_the_chosen_rate_and_brings_the_label(carrier, fake):
    waybill = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())

    [bought_id] = fake.purchases
    bought = fake.shipments[bought_id]
    assert bought["reference"] == "OMS-20250314-000125"
    assert bought["selected_rate"]["service"] == "GroundAdvantage" and bought["options"]["label_format"] == "PDF"
    assert waybill.tracking_number == bought["tracking_code"] and waybill.carrier_reference == bought_id
    assert (waybill.price, waybill.currency) == (Decimal("8.20"), "USD")
    assert waybill.label.media_type == "application/pdf" and waybill.label.content.startswith(b"%PDF")


def test_creating_the_same_waybill_again_returns_the_first_one(carrier, fake):
    first = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())
    again = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())

    assert again.tracking_number == first.tracking_number and again.carrier_reference == first.carrier_reference
    assert len(fake.purchases) == 1 and len(fake.shipments) == 1


def test_a_lost_buy_answer_is_recovered_without_buying_twice(carrier, fake):
    fake.inject("lost_answer", path="/buy")  # bought at EasyPost, but the reply never arrives

    waybill = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())

    [bought_id] = fake.purchases
    assert (
        waybill.carrier_reference == bought_id and waybill.tracking_number == fake.shipments[bought_id]["tracking_code"]
    )
    assert len(fake.calls_to("POST", "/buy")) == 1  # the retry found the purchase by reference


def test_a_lost_create_answer_reuses_the_shipment_it_made(carrier, fake):
    fake.inject("lost_answer", path="/shipments")

    plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())

    assert len(fake.shipments) == 1 and len(fake.purchases) == 1


def test_a_service_without_a_rate_is_refused(carrier, fake):
    with pytest.raises(PermanentError, match="does not offer service 'UPS:Ground'"):
        plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment(service_code="UPS:Ground"))
    ups = with_settings(carrier, services=["UPS:Ground"])
    with pytest.raises(PermanentError, match="no UPS:Ground rate"):
        plugin.oms_carrier_create_waybill(carrier=ups, request=shipment(service_code="UPS:Ground"))
    assert fake.purchases == []


@pytest.mark.parametrize(
    ("label_format", "media_type", "magic"), [("PNG", "image/png", b"\x89PNG"), ("ZPL", "application/zpl", b"^XA")]
)
def test_the_label_comes_in_the_configured_format(carrier, label_format, media_type, magic):
    waybill = plugin.oms_carrier_create_waybill(
        carrier=with_settings(carrier, labelFormat=label_format), request=shipment()
    )
    assert waybill.label.media_type == media_type and waybill.label.content.startswith(magic)


def test_a_label_is_fetched_again_and_converted_when_needed(carrier, fake):
    waybill = plugin.oms_carrier_create_waybill(carrier=with_settings(carrier, labelFormat="PNG"), request=shipment())

    label = plugin.oms_carrier_fetch_label(
        carrier=carrier, waybill=Waybill(waybill.tracking_number, waybill.carrier_reference)
    )

    assert label.media_type == "application/pdf" and label.content.startswith(b"%PDF")
    assert len(fake.calls_to("GET", "/label")) == 1  # PNG was made: EasyPost converted it


def test_a_waybill_without_shipment_id_has_no_label_to_fetch(carrier):
    with pytest.raises(PermanentError, match="no shipment id"):
        plugin.oms_carrier_fetch_label(carrier=carrier, waybill=Waybill("9434600208303109842228"))


# --- tracking -------------------------------------------------------------------------------------


def test_a_test_tracker_walks_its_statuses_on_each_poll(carrier):
    polls = [
        plugin.oms_carrier_track(carrier=carrier, tracking_number="EZ4000000004", company_code="USPS") for _ in range(5)
    ]

    assert [events[-1].status for events in polls] == [
        TrackingStatus.PRE_TRANSIT, TrackingStatus.IN_TRANSIT, TrackingStatus.OUT_FOR_DELIVERY,
        TrackingStatus.DELIVERED, TrackingStatus.DELIVERED,
    ]  # fmt: skip
    assert [event.occurred_at for event in polls[-1]] == sorted(event.occurred_at for event in polls[-1])


@pytest.mark.parametrize(
    ("code", "final"),
    [("EZ1000000001", TrackingStatus.PRE_TRANSIT), ("EZ5000000005", TrackingStatus.RETURNED_TO_SENDER),
     ("EZ6000000006", TrackingStatus.EXCEPTION)],
)  # fmt: skip
def test_every_test_code_ends_at_its_status(carrier, code, final):
    for _ in range(4):
        events = plugin.oms_carrier_track(carrier=carrier, tracking_number=code, company_code=None)
    assert events[-1].status is final


def test_an_unknown_tracker_has_no_events_yet(carrier):
    assert plugin.oms_carrier_track(carrier=carrier, tracking_number="EZ7000000007", company_code=None) == []


def test_subscribing_makes_one_tracker_and_its_pushes_arrive_signed(carrier, fake):
    received: list[WebhookRequest] = []

    async def receive(request: Request) -> Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        received.append(WebhookRequest(url=str(request.url), headers=headers, body=await request.body()))
        return Response(status_code=200)

    url = "/webhooks/carriers/easypost-us"
    # EasyPost has no per-tracker callback URL (the account's webhook is used), so the
    # hook takes no callback_url: pluggy passes only the arguments an implementation names.
    assert plugin.oms_carrier_subscribe(carrier=carrier, tracking_number="EZ3000000003", company_code=None)
    assert plugin.oms_carrier_subscribe(carrier=carrier, tracking_number="EZ3000000003", company_code=None)
    [tracker] = fake.trackers.values()
    with serve(Starlette(routes=[Route(url, receive, methods=["POST"])])) as oms_url:
        fake.send_event(tracker["id"], oms_url + url)
        fake.send_event(tracker["id"], oms_url + url, secret="whsec_forger")

    genuine, forged = received
    assert plugin.oms_carrier_verify_webhook(carrier=carrier, request=genuine).accepted
    assert not plugin.oms_carrier_verify_webhook(carrier=carrier, request=forged).accepted
    push = plugin.oms_carrier_parse_tracking_push(carrier=carrier, body=genuine.body)
    assert [event.status for event in push.events] == [TrackingStatus.PRE_TRANSIT, TrackingStatus.IN_TRANSIT]


# --- faults ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "options"),
    [("http_500", {}), ("http_500", {"status": 503}), ("throttle", {"retry_after": 0}), ("slow", {"delay": 1.5}),
     ("malformed_json", {})],
)  # fmt: skip
def test_a_passing_fault_is_retried_in_the_call(carrier, fake, fault, options):
    fake.inject(fault, **options)
    assert plugin.oms_carrier_quote(carrier=carrier, request=shipment(service_code=""))


@pytest.mark.parametrize(
    ("fault", "options", "retry_after"),
    [
        ("http_500", {"retry_after": 30}, 30.0),
        ("throttle", {"retry_after": 60}, 60.0),
        ("http_500", {"status": 504}, None),
    ],
)
def test_a_lasting_fault_is_retryable_with_retry_after(carrier, fake, fault, options, retry_after):
    fake.inject(fault, times=10, **options)
    with pytest.raises(RetryableError) as raised:
        plugin.oms_carrier_track(carrier=carrier, tracking_number="EZ2000000002", company_code=None)
    assert raised.value.retry_after == retry_after


def test_a_flaky_gateway_costs_retries_not_a_failed_waybill(carrier, fake):
    fake.gateway.fail_every = 3
    waybill = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())
    assert fake.gateway.failures >= 1 and len(fake.purchases) == 1 and waybill.label is not None


def test_a_wrong_api_key_is_permanent(carrier, fake):
    with pytest.raises(PermanentError, match="HTTP 401"):
        plugin.oms_carrier_track(
            carrier=with_settings(carrier, apiKey="EZTKwrong"), tracking_number="EZ1000000001", company_code=None
        )


def test_a_missing_parameter_names_the_field(carrier):
    with pytest.raises(PermanentError, match=r"PARAMETER\.REQUIRED.*tracker\.tracking_code: cannot be blank"):
        plugin.oms_carrier_track(carrier=carrier, tracking_number="", company_code=None)


# --- settings and registration ---------------------------------------------------------------------


def test_settings_are_described_and_checked():
    [kind] = plugin.oms_carrier_kinds()
    assert kind.kind == "easypost" and kind.receives_webhooks and kind.creates_waybills
    assert {setting.key for setting in kind.settings if setting.secret} == {"apiKey", "webhookSecret"}
    assert {"apiUrl", "apiKey", "webhookSecret"} <= {setting.key for setting in kind.settings}

    good = {"apiUrl": "https://api.easypost.com/v2", "apiKey": "EZTK…", "webhookSecret": "whsec"}
    assert plugin.oms_carrier_check_settings(kind="easypost", settings=good) == []
    bad = {"apiUrl": "api.easypost.com", "apiKey": "", "labelFormat": "GIF", "services": ["Ground"]}
    assert {key for key, _ in plugin.oms_carrier_check_settings(kind="easypost", settings=bad)} == {
        "apiUrl", "apiKey", "webhookSecret", "labelFormat", "services",
    }  # fmt: skip
    assert plugin.oms_carrier_check_settings(kind="kuaidi100", settings={}) is None


def test_other_carrier_kinds_are_left_alone():
    other = CarrierConfig(code="sf", kind="sf", settings={})
    request = shipment()
    assert plugin.oms_carrier_services(carrier=other) is None
    assert plugin.oms_carrier_quote(carrier=other, request=request) is None
    assert plugin.oms_carrier_create_waybill(carrier=other, request=request) is None
    assert plugin.oms_carrier_fetch_label(carrier=other, waybill=Waybill("SF1")) is None
    assert plugin.oms_carrier_track(carrier=other, tracking_number="SF1", company_code=None) is None
    assert plugin.oms_carrier_subscribe(carrier=other, tracking_number="SF1", company_code=None) is None
    assert plugin.oms_carrier_verify_webhook(carrier=other, request=webhook(b"{}", None)) is None
    assert plugin.oms_carrier_parse_tracking_push(carrier=other, body=b"{}") is None


def test_the_plugin_registers_against_the_hookspecs():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()  # every hookimpl matches a spec by name and arguments
    [entry_point] = [ep for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP) if ep.name == "easypost"]
    assert entry_point.load() is plugin


# --- the carrier as marketplaces name it --------------------------------------


@pytest.mark.parametrize(
    ("service", "channel_kind", "named"),
    [
        ("USPS:Priority", "amazon", "USPS"),
        ("UPS:Ground", "amazon", "UPS"),
        ("DHLExpress:ExpressWorldwideNonDoc", "amazon", "DHL"),
        ("FedEx:FEDEX_GROUND", "pos", "FedEx"),
        ("not-a-service-code", "amazon", None),
        ("", "amazon", None),
    ],
)
def test_marketplaces_hear_the_carrier_that_carries_the_parcel(service, channel_kind, named):
    carrier = CarrierConfig(code="easypost-us", kind="easypost", settings={})
    other = CarrierConfig(code="sf-main", kind="sf", settings={})

    name = plugin.oms_carrier_marketplace_code

    assert name(carrier=carrier, service_code=service, channel_kind=channel_kind) == named
    assert name(carrier=other, service_code=service, channel_kind=channel_kind) is None


# --- cancel: refund the label ------------------------------------------------------


def test_cancelling_a_waybill_refunds_its_unscanned_label(carrier, fake):
    waybill = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment(reference="OMS-CANCEL-1"))

    assert plugin.oms_carrier_cancel(carrier=carrier, waybill=waybill) is True
    assert fake.refunds == [waybill.carrier_reference]
    assert fake.shipments[waybill.carrier_reference]["refund_status"] == "submitted"


@pytest.mark.parametrize("answer", ["rejected", "not_applicable"])
def test_a_refused_refund_is_a_permanent_error_with_easyposts_status(carrier, fake, answer):
    waybill = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment(reference=f"OMS-CANCEL-{answer}"))
    fake.refund_answer = answer

    with pytest.raises(PermanentError, match=answer):
        plugin.oms_carrier_cancel(carrier=carrier, waybill=waybill)


def test_a_waybill_without_shipment_id_cannot_be_refunded(carrier):
    with pytest.raises(PermanentError, match="no shipment id"):
        plugin.oms_carrier_cancel(carrier=carrier, waybill=Waybill(tracking_number="9400"))
