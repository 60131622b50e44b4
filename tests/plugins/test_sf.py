"""The sf carrier plugin against the fake SF gateway, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import entry_points
from zoneinfo import ZoneInfo

import pluggy
import pytest
from oms_plugin_sf import mapping, plugin
from oms_plugin_sf.client import msg_digest

from oms_graphql.plugins import hookspecs
from oms_graphql.plugins.carrier_contract import (
    CarrierConfig,
    DeliveryKind,
    Parcel,
    ParcelItem,
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
from tests.fakes.server import serve
from tests.fakes.sf import API_PATH, SAMPLE_WAYBILL, SfState, load_sample, make_app, samples_dir

SHANGHAI = ZoneInfo("Asia/Shanghai")
CREATE = "EXP_RECE_CREATE_ORDER"
SEARCH_ORDER = "EXP_RECE_SEARCH_ORDER_RESP"
ROUTES = "EXP_RECE_SEARCH_ROUTES"
VECTORS = load_sample("signing_vectors.json")


@pytest.fixture
def fake() -> SfState:
    return SfState()


@pytest.fixture
def carrier(fake: SfState) -> Iterator[CarrierConfig]:
    with serve(make_app(fake)) as base_url:
        settings = {"apiUrl": base_url + API_PATH, **fake.settings(), "timeoutSeconds": 1}
        yield CarrierConfig(code="sf-main", kind="sf", settings=settings)


def with_settings(carrier: CarrierConfig, **changes: object) -> CarrierConfig:
    return CarrierConfig(code=carrier.code, kind=carrier.kind, settings={**carrier.settings, **changes})


def shipment(reference: str = "OMS-20250314-000123", **changes: object) -> ShipmentRequest:
    """The sample order (sf/create_order_msgData.json) as the OMS would ask for it."""
    request = ShipmentRequest(
        reference=reference,
        service_code="express",
        sender=NormalizedAddress(
            country="CN", region="广东省", city="深圳市", district="南山区", line1="科技园示例路1号A栋101",
            name="张测试", phone="13900000001",
        ),
        recipient=NormalizedAddress(
            country="CN", region="北京", city="北京市", district="朝阳区", line1="示例街道演示小区3号楼2单元501",
            name="李样例", phone="+86 137 0000 0002",
        ),
        parcels=(Parcel(weight_grams=900),),
        items=(ParcelItem(sku="TEE-WHITE-M", name="纯棉T恤", quantity=2, unit_value=Decimal("129.00")),),
        currency="CNY",
        ship_at=datetime(2025, 3, 14, 16, 0, tzinfo=SHANGHAI).astimezone(UTC),
    )  # fmt: skip
    return replace(request, **changes)  # type: ignore[arg-type]


# --- signing ------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda vector: vector["name"].split()[0])
def test_msg_digest_matches_the_java_sdk_vectors(vector):
    msg_data = VECTORS["vectors"][0]["msgData"] if vector["msgData"] == "same as SF-1" else vector["msgData"]
    checkword = vector.get("checkword", VECTORS["checkword"])

    assert msg_digest(msg_data, VECTORS["timestamp"], checkword) == vector["msgDigest_java_urlencoder"]


def test_the_signature_uses_javas_encoder_not_pythons_quote_plus():
    # SF-2's remark holds "*" and "~": Java keeps "*" and encodes "~", quote_plus does the
    # opposite, and the official Python demo's digest is refused by the (Java) gateway.
    sf2 = VECTORS["vectors"][1]
    digest = msg_digest(sf2["msgData"], VECTORS["timestamp"], VECTORS["checkword"])
    assert digest != sf2["python_quote_plus_official_py_demo"]


def test_a_wrong_check_word_is_refused_and_permanent(carrier, fake):
    sf3 = VECTORS["vectors"][2]
    with pytest.raises(PermanentError, match="A1006"):
        plugin.oms_carrier_track(
            carrier=with_settings(carrier, checkWord=sf3["checkword"]), tracking_number=SAMPLE_WAYBILL, phone=None
        )
    assert fake.calls[-1]["result"] == "A1006"
    assert len(fake.calls) == 1  # not retried


# --- waybills -------------------------------------------------------------------


def test_create_sends_the_documented_order_and_returns_the_waybill(carrier, fake):
    waybill = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())

    assert waybill.tracking_number == SAMPLE_WAYBILL
    assert waybill.carrier_reference == "OMS-20250314-000123"
    sent = fake.calls_to(CREATE)[0]["msgData"]
    documented = load_sample("create_order_msgData.json")
    for key in ("language", "orderId", "monthlyCard", "payMethod", "expressTypeId", "parcelQty", "totalWeight"):
        assert sent[key] == documented[key], key
    sender, recipient = sent["contactInfoList"]
    assert sender == {key: value for key, value in documented["contactInfoList"][0].items() if key != "company"}
    assert recipient == documented["contactInfoList"][1]
    assert [(c["contactType"], c["contact"], c["mobile"]) for c in sent["contactInfoList"]] == [
        (1, "张测试", "13900000001"),
        (2, "李样例", "13700000002"),  # +86 and spaces removed
    ]
    assert [(c["name"], c["count"], c["amount"]) for c in sent["cargoDetails"]] == [("纯棉T恤", 2, 129.0)]


def test_a_create_whose_answer_was_lost_returns_the_same_waybill(carrier, fake):
    fake.inject("lost_answer", service=CREATE)  # SF stores the order, the proxy answers 502

    waybill = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())

    assert waybill.tracking_number == SAMPLE_WAYBILL
    assert len(fake.orders) == 1
    assert [(call["service"], call["result"]) for call in fake.calls] == [
        (CREATE, "S0000 then HTTP 502"),
        (CREATE, "8016"),  # the same orderId again: 重复下单
        (SEARCH_ORDER, "S0000"),  # so the first order is looked up
    ]


@pytest.mark.parametrize("duplicate_answer", ["error", "first_waybill"])
def test_a_repeated_create_never_makes_a_second_waybill(carrier, fake, duplicate_answer):
    fake.duplicate_answer = duplicate_answer  # README: SF answers either 8016 or the first waybill

    first = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())
    again = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())

    assert again.tracking_number == first.tracking_number
    assert len(fake.orders) == 1


def test_each_shipment_gets_its_own_waybill(carrier, fake):
    first = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment("SHP-1"))
    second = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment("SHP-2", service_code="standard"))

    assert first.tracking_number != second.tracking_number
    assert fake.orders["SHP-2"]["msgData"]["expressTypeId"] == 2


def test_a_missing_receiver_phone_is_permanent_and_says_what_to_fix(carrier, fake):
    request = shipment()
    request = replace(request, recipient=replace(request.recipient, phone=None))

    with pytest.raises(PermanentError, match="1016") as caught:
        plugin.oms_carrier_create_waybill(carrier=carrier, request=request)

    assert "recipient's phone is missing" in str(caught.value)
    assert fake.orders == {}
    assert len(fake.calls) == 1


def test_an_unknown_service_is_refused_before_calling_sf(carrier, fake):
    with pytest.raises(PermanentError, match="express, standard"):
        plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment(service_code="cold-chain"))
    assert fake.calls == []


def test_cancel_cancels_the_order_at_sf(carrier, fake):
    waybill = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())

    assert plugin.oms_carrier_cancel(carrier=carrier, waybill=waybill) is True

    assert fake.orders["OMS-20250314-000123"]["cancelled"]
    assert fake.calls[-1]["msgData"] == {"orderId": "OMS-20250314-000123", "dealType": 2}


# --- label ------------------------------------------------------------------------


def test_the_label_is_the_pdf_behind_the_cloud_print_link(carrier, fake):
    waybill = plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment())

    label = plugin.oms_carrier_fetch_label(carrier=carrier, waybill=waybill)

    assert label.content.startswith(b"%PDF")
    assert label.media_type == "application/pdf"
    printed = fake.calls_to("COM_RECE_CLOUD_PRINT_WAYBILLS")[0]["msgData"]
    assert printed["templateCode"] == "fm_150_standard_FAKEPARTNER01"
    assert printed["documents"] == [{"masterWaybillNo": SAMPLE_WAYBILL}]
    [download] = fake.label_downloads
    assert download["token"] == fake.labels[download["name"]][0]  # sent as X-Auth-Token


def test_an_expired_label_link_is_printed_again(carrier, fake):
    fake.expire_links = 1  # the first link has expired by the time it is fetched

    label = plugin.oms_carrier_fetch_label(carrier=carrier, waybill=Waybill(tracking_number=SAMPLE_WAYBILL))

    assert label.content.startswith(b"%PDF")
    assert len(fake.calls_to("COM_RECE_CLOUD_PRINT_WAYBILLS")) == 2
    assert len(fake.label_downloads) == 2


# --- quote --------------------------------------------------------------------------


def test_quote_gives_price_and_delivery_time_of_each_service(carrier, fake):
    quotes = plugin.oms_carrier_quote(carrier=carrier, request=shipment(service_code=""))

    by_code = {quote.service_code: quote for quote in quotes}
    assert set(by_code) == {"express", "standard"}
    standard = by_code["standard"]  # the official sample: 顺丰特惠, 23.0, 2025-03-16 18:00
    assert (standard.price, standard.currency) == (Decimal("23.00"), "CNY")
    assert standard.estimated_delivery_at == datetime(2025, 3, 16, 10, 0, tzinfo=UTC)
    sent = fake.calls_to("EXP_RECE_QUERY_DELIVERTM")[-1]["msgData"]
    documented = load_sample("query_delivertm_request_msgData.json")
    assert sent == documented


def test_quote_of_one_service_asks_only_for_it(carrier, fake):
    quotes = plugin.oms_carrier_quote(carrier=carrier, request=shipment(service_code="express"))

    assert [quote.service_code for quote in quotes] == ["express"]
    assert [call["msgData"]["businessType"] for call in fake.calls] == ["1"]


# --- tracking -------------------------------------------------------------------------


def test_track_maps_every_route_in_order_and_keeps_sfs_code_and_text(carrier, fake):
    events = plugin.oms_carrier_track(carrier=carrier, tracking_number=SAMPLE_WAYBILL, phone="137-0000-0002")

    assert [event.status for event in events] == [
        TrackingStatus.IN_TRANSIT,  # 50 collected
        TrackingStatus.IN_TRANSIT,  # 30 sorted
        TrackingStatus.IN_TRANSIT,  # 36 departed
        TrackingStatus.IN_TRANSIT,  # 31 arrived
        TrackingStatus.OUT_FOR_DELIVERY,  # 44
        TrackingStatus.DELIVERED,  # 80 signed
    ]
    assert [event.carrier_code for event in events] == ["50", "30", "36", "31", "44", "80"]
    assert events[0].description == "顺丰速运 已收取快件"
    assert events[0].location == "深圳市"
    assert events[0].occurred_at == datetime(2025, 3, 14, 10, 20, 11, tzinfo=UTC)  # 18:20:11 in Shanghai
    assert fake.calls[0]["msgData"] == load_sample("search_routes_request_msgData.json")  # checkPhoneNo "0002"


def test_track_with_a_wrong_phone_finds_nothing(carrier, fake):
    assert plugin.oms_carrier_track(carrier=carrier, tracking_number=SAMPLE_WAYBILL, phone="13800009999") == []


def test_the_op_code_mapping_is_status_map_json():
    status_map = json.loads((samples_dir() / "status_map.json").read_text(encoding="utf-8"))
    expected = {code: entry["neutral"] for code, entry in status_map["sf_express"]["codes"].items()}

    assert {code: str(status) for code, status in mapping.OP_CODE_STATUSES.items()} == expected
    assert mapping.status_of("501") == TrackingStatus.IN_TRANSIT  # unknown: status_map's default


# --- route push -------------------------------------------------------------------------


def push_request(carrier: CarrierConfig, query: str) -> WebhookRequest:
    body = json.dumps(load_sample("route_push_body.json"), ensure_ascii=False).encode()
    return WebhookRequest(url=f"https://oms.example.com/webhooks/carriers/{carrier.code}{query}", headers={}, body=body)


def test_a_push_with_the_right_token_is_accepted(carrier, fake):
    verdict = plugin.oms_carrier_verify_webhook(
        carrier=carrier, request=push_request(carrier, f"?token={fake.webhook_token}")
    )

    assert verdict.accepted


@pytest.mark.parametrize(
    "query", ["", "?token=", "?token=whk_fake_0123456789abcdeX", "?other=whk_fake_0123456789abcdef"]
)
def test_a_push_without_the_right_token_is_refused(carrier, query):
    verdict = plugin.oms_carrier_verify_webhook(carrier=carrier, request=push_request(carrier, query))

    assert not verdict.accepted
    assert verdict.reason


def test_a_push_is_refused_when_no_token_is_configured(carrier):
    request = push_request(carrier, "?token=")
    verdict = plugin.oms_carrier_verify_webhook(carrier=with_settings(carrier, webhookToken=""), request=request)

    assert not verdict.accepted and "webhookToken" in verdict.reason


@pytest.mark.parametrize(
    ("sample", "statuses"),
    [
        ("route_push_body.json", [TrackingStatus.IN_TRANSIT, TrackingStatus.IN_TRANSIT]),
        ("route_push_body_with_status_fields.json", [TrackingStatus.DELIVERED]),
    ],
)
def test_a_route_push_gives_its_events_and_the_ack(carrier, sample, statuses):
    body = (samples_dir() / "sf" / sample).read_bytes()

    push = plugin.oms_carrier_parse_tracking_push(carrier=carrier, body=body)

    assert [event.status for event in push.events] == statuses
    assert all(event.tracking_number == SAMPLE_WAYBILL for event in push.events)
    assert json.loads(push.response_body) == load_sample("route_push_ack.json")
    assert push.response_status == 200


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"content=%3CRequest%3E", "not JSON"),
        (b'{"Head":"OK"}', "'Body'"),
        (b'{"Body":{"WaybillRoute":"SF7444400123456"}}', "not a list"),
        (b'{"Body":{"WaybillRoute":[{"mailno":"SF1","acceptTime":"2025-03-14 18:20:11"}]}}', "opCode"),
        (b'{"Body":{"WaybillRoute":[{"mailno":"SF1","opCode":"50","acceptTime":"14/03/2025"}]}}', "acceptTime"),
    ],
)
def test_a_malformed_push_is_a_payload_error(carrier, body, match):
    with pytest.raises(PayloadError, match=match):
        plugin.oms_carrier_parse_tracking_push(carrier=carrier, body=body)


# --- failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "options", "match"),
    [
        ("http_500", {"status": 503}, "HTTP 503"),
        ("rate_limited", {}, "A1005"),
        ("slow", {"delay": 3}, "timed out"),  # the carrier's timeoutSeconds is 1
        ("malformed_json", {}, "not JSON"),
    ],
)
def test_gateway_faults_are_retried_then_retryable(carrier, fake, fault, options, match):
    fake.inject(fault, times=4, service=ROUTES, **options)  # every quick try of the call

    with pytest.raises(RetryableError, match=match):
        plugin.oms_carrier_track(carrier=carrier, tracking_number=SAMPLE_WAYBILL, phone=None)

    assert len(plugin.oms_carrier_track(carrier=carrier, tracking_number=SAMPLE_WAYBILL, phone=None)) == 6


def test_one_rate_limited_answer_is_retried_in_the_call(carrier, fake):
    fake.inject("rate_limited", service=ROUTES)

    assert len(plugin.oms_carrier_track(carrier=carrier, tracking_number=SAMPLE_WAYBILL, phone=None)) == 6
    assert [call["result"] for call in fake.calls] == ["A1005", "S0000"]


def test_a_flaky_gateway_still_makes_exactly_one_waybill_per_shipment(carrier, fake):
    fake.gateway.fail_every = 2  # every other request: nginx's 502 page

    waybills = [plugin.oms_carrier_create_waybill(carrier=carrier, request=shipment(f"SHP-{n}")) for n in range(4)]

    assert len({waybill.tracking_number for waybill in waybills}) == 4
    assert sorted(fake.orders) == [f"SHP-{n}" for n in range(4)]
    assert fake.gateway.failures >= 2


# --- settings, services, registration ---------------------------------------------------


def test_the_kind_describes_the_binding_settings():
    [kind] = plugin.oms_carrier_kinds()

    assert kind.kind == "sf" and kind.receives_webhooks and kind.creates_waybills
    fields = {field.key: field for field in kind.settings}
    assert {"apiUrl", "partnerId", "checkWord", "monthlyCard", "webhookToken"} <= set(fields)
    assert {key for key, field in fields.items() if field.secret} == {"checkWord", "webhookToken"}
    assert kind.marketplace_codes == {"taobao": "SF", "jd": "467", "amazon": "SF Express"}


def test_good_settings_pass_and_bad_ones_are_named(carrier):
    assert plugin.oms_carrier_check_settings(kind="sf", settings=carrier.settings) == []

    problems = plugin.oms_carrier_check_settings(
        kind="sf",
        settings={"apiUrl": "https://sfapi.sf-express.com/", "partnerId": "", "checkWord": "x",
                  "monthlyCard": "755123", "webhookToken": "short", "timeoutSeconds": 0},
    )  # fmt: skip

    assert [key for key, _ in problems] == ["apiUrl", "partnerId", "monthlyCard", "webhookToken", "timeoutSeconds"]
    assert "/std/service" in dict(problems)["apiUrl"]


def test_services_are_sf_express_and_economy_in_mainland_china(carrier):
    services = plugin.oms_carrier_services(carrier=with_settings(carrier, maxWeightGrams=30000))

    assert [(s.code, s.kind, s.areas, s.currency) for s in services] == [
        ("express", DeliveryKind.EXPRESS, ("CN",), "CNY"),
        ("standard", DeliveryKind.STANDARD, ("CN",), "CNY"),
    ]
    assert {s.max_weight_grams for s in services} == {30000}  # the merchant's contract limit
    assert all(s.handling == () for s in services)  # no cold chain: SF's API documents none here


def test_other_carrier_kinds_are_left_alone():
    other = CarrierConfig(code="ep", kind="easypost", settings={})
    waybill = Waybill(tracking_number="EZ1000000001")
    request = WebhookRequest(url="https://oms.example.com/webhooks/carriers/ep", headers={}, body=b"{}")

    assert plugin.oms_carrier_check_settings(kind="easypost", settings={}) is None
    assert plugin.oms_carrier_services(carrier=other) is None
    assert plugin.oms_carrier_quote(carrier=other, request=shipment()) is None
    assert plugin.oms_carrier_create_waybill(carrier=other, request=shipment()) is None
    assert plugin.oms_carrier_fetch_label(carrier=other, waybill=waybill) is None
    assert plugin.oms_carrier_cancel(carrier=other, waybill=waybill) is None
    assert plugin.oms_carrier_track(carrier=other, tracking_number="EZ1000000001", phone=None) is None
    assert plugin.oms_carrier_verify_webhook(carrier=other, request=request) is None
    assert plugin.oms_carrier_parse_tracking_push(carrier=other, body=b"{}") is None


def test_the_plugin_registers_against_the_hookspecs():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()  # every hookimpl matches a spec by name and arguments
    [entry_point] = [ep for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP) if ep.name == "sf"]
    assert entry_point.load() is plugin
