"""The kuaidi100 tracking plugin against the fake Kuaidi100, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.metadata import entry_points
from urllib.parse import urlencode

import pluggy
import pytest
from oms_plugin_kuaidi100 import plugin
from oms_plugin_kuaidi100.client import push_sign, query_sign
from oms_plugin_kuaidi100.mapping import STATUS_MAP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oms_graphql.plugins import hookspecs
from oms_graphql.plugins.carrier_contract import CarrierConfig, TrackingStatus
from oms_graphql.plugins.contract import PayloadError, PermanentError, RetryableError, WebhookRequest
from tests.fakes.kuaidi100 import SAMPLES, Kuaidi100State, load_sample, make_app
from tests.fakes.server import serve

SF_NUMBER = "SF7444400123456"


@pytest.fixture
def fake() -> Kuaidi100State:
    return Kuaidi100State()


@pytest.fixture
def carrier(fake: Kuaidi100State) -> Iterator[CarrierConfig]:
    with serve(make_app(fake)) as base_url:
        settings = {"apiUrl": base_url, **fake.settings(), "timeoutSeconds": 1}
        yield CarrierConfig(code="kd100", kind="kuaidi100", settings=settings)


def with_settings(carrier: CarrierConfig, **changes: object) -> CarrierConfig:
    return CarrierConfig(code=carrier.code, kind=carrier.kind, settings={**carrier.settings, **changes})


def push_request(form: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(
        url="https://oms.example.test/webhooks/carriers/kd100",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=urlencode(form).encode(),
    )


def sample_push() -> dict[str, str]:
    return load_sample("push_request.json")["form"]


# --- signing --------------------------------------------------------------------


def test_the_signing_vectors_pass():
    vectors = {vector["name"]: vector for vector in load_sample("signing_vectors.json")["vectors"]}
    k1, k2 = vectors["K-1 query"], vectors["K-2 push"]

    assert query_sign(k1["param"], k1["key"], k1["customer"]) == k1["sign"]
    assert query_sign(k1["param"], k1["key"], k1["customer"]) == load_sample("query_request.json")["form"]["sign"]
    assert push_sign(sample_push()["param"], k2["salt"]) == k2["sign"] == sample_push()["sign"]
    # The same object re-serialised with spaces signs differently: sign the exact string.
    spaced = json.dumps(json.loads(sample_push()["param"]), ensure_ascii=False)
    assert push_sign(spaced, k2["salt"]) == vectors["K-2b push, spaces after separators (json.dumps default)"]["sign"]


def test_the_status_map_is_the_shared_one():
    shared = json.loads((SAMPLES.parent / "status_map.json").read_text(encoding="utf-8"))["kuaidi100"]["codes"]
    assert {code: status.value for code, status in STATUS_MAP.items()} == {
        code: entry["neutral"] for code, entry in shared.items()
    }


# --- query ------------------------------------------------------------------------


def test_a_query_gives_the_events_oldest_first(carrier, fake):
    events = plugin.oms_carrier_track(carrier=carrier, tracking_number=SF_NUMBER, phone="0002", company_code="shunfeng")

    assert [event.status for event in events] == [
        TrackingStatus.IN_TRANSIT,  # 1 揽收
        TrackingStatus.IN_TRANSIT,  # 1002 干线
        TrackingStatus.IN_TRANSIT,  # 1001 到达派件城市
        TrackingStatus.OUT_FOR_DELIVERY,  # 5 派件
        TrackingStatus.DELIVERED,  # 301 本人签收
    ]
    delivered = events[-1]
    assert delivered.carrier_code == "301" and delivered.location == "北京,北京市,朝阳区"
    assert delivered.occurred_at.isoformat() == "2025-03-16T02:21:08+00:00"  # 10:21:08 Beijing time
    [call] = fake.calls
    sent = json.loads(call["form"]["param"])
    assert sent == {"com": "shunfeng", "num": SF_NUMBER, "phone": "0002", "resultv2": "4", "show": "0", "order": "desc"}
    assert "key" not in call["form"] and call["form"]["customer"] == fake.customer


def test_the_company_setting_is_used_when_the_shipment_names_none(carrier):
    defaulted = with_settings(carrier, company="shunfeng")
    assert plugin.oms_carrier_track(carrier=defaulted, tracking_number=SF_NUMBER, phone="0002", company_code=None)
    with pytest.raises(PermanentError, match="no company code"):
        plugin.oms_carrier_track(carrier=carrier, tracking_number=SF_NUMBER, phone="0002", company_code=None)


@pytest.mark.parametrize(("number", "phone"), [("YT0000000000001", None), (SF_NUMBER, None), (SF_NUMBER, "9999")])
def test_no_result_yet_is_an_empty_list(carrier, number, phone):
    assert plugin.oms_carrier_track(carrier=carrier, tracking_number=number, phone=phone, company_code="shunfeng") == []


def test_a_bad_sign_is_permanent_and_says_what_to_check(carrier):
    wrong_key = with_settings(carrier, key="notTheKey")
    with pytest.raises(PermanentError, match=r"returnCode 503.*check the customer and key"):
        plugin.oms_carrier_track(carrier=wrong_key, tracking_number=SF_NUMBER, phone="0002", company_code="shunfeng")


# --- subscription and push ----------------------------------------------------------------


def test_subscribing_twice_counts_as_subscribed(carrier, fake):
    url = "https://oms.example.test/webhooks/carriers/kd100?shipment=shp_000123"
    for _ in range(2):
        assert plugin.oms_carrier_subscribe(
            carrier=carrier, tracking_number=SF_NUMBER, company_code="shunfeng", callback_url=url, phone="0002"
        )

    assert [call["answer"]["returnCode"] for call in fake.calls] == ["200", "501"]
    assert fake.subscriptions[("shunfeng", SF_NUMBER)] == {
        "callbackurl": url, "salt": fake.salt, "resultv2": "4", "phone": "0002",
    }  # fmt: skip


def test_a_subscription_with_a_wrong_key_is_refused(carrier):
    with pytest.raises(PermanentError, match="returnCode 503"):
        plugin.oms_carrier_subscribe(
            carrier=with_settings(carrier, key="nope"), tracking_number=SF_NUMBER, company_code="shunfeng",
            callback_url="https://oms.example.test/cb", phone=None,
        )  # fmt: skip


def test_the_sample_push_is_accepted_and_answered_as_kuaidi100_requires(carrier):
    request = push_request(sample_push())

    verdict = plugin.oms_carrier_verify_webhook(carrier=carrier, request=request)
    push = plugin.oms_carrier_parse_tracking_push(carrier=carrier, body=request.body)

    assert verdict.accepted
    assert push.events[-1].status is TrackingStatus.DELIVERED and len(push.events) == 5
    assert push.response_status == 200
    assert json.loads(push.response_body) == load_sample("push_ack.json")


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({**sample_push(), "sign": "C6A8DC1679D98C6CBAC47672B448A5AB"}, "does not match"),
        ({**sample_push(), "param": sample_push()["param"].replace("301", "203")}, "does not match"),
        ({"param": sample_push()["param"]}, "no 'sign'"),
        ({"sign": sample_push()["sign"]}, "no 'param'"),
    ],
)
def test_forged_pushes_are_refused(carrier, form, reason):
    verdict = plugin.oms_carrier_verify_webhook(carrier=carrier, request=push_request(form))
    assert not verdict.accepted and reason in verdict.reason


def test_a_push_from_the_fake_arrives_signed_and_a_wrong_salt_is_refused(carrier, fake):
    received: list[WebhookRequest] = []

    async def receive(request: Request) -> Response:
        received.append(WebhookRequest(url=str(request.url), headers=dict(request.headers), body=await request.body()))
        return Response(status_code=200)

    with serve(Starlette(routes=[Route("/webhooks/carriers/kd100", receive, methods=["POST"])])) as oms_url:
        plugin.oms_carrier_subscribe(
            carrier=carrier, tracking_number=SF_NUMBER, company_code="shunfeng",
            callback_url=oms_url + "/webhooks/carriers/kd100?shipment=shp_000123", phone="0002",
        )  # fmt: skip
        fake.send_push(SF_NUMBER, status="polling")
        fake.send_push(SF_NUMBER, status="abort")
        fake.send_push(SF_NUMBER, salt="someone else's salt")

    polling, abort, forged = received
    assert all(plugin.oms_carrier_verify_webhook(carrier=carrier, request=r).accepted for r in (polling, abort))
    assert not plugin.oms_carrier_verify_webhook(carrier=carrier, request=forged).accepted
    assert len(plugin.oms_carrier_parse_tracking_push(carrier=carrier, body=polling.body).events) == 5
    assert plugin.oms_carrier_parse_tracking_push(carrier=carrier, body=abort.body).events == ()
    assert received[0].url.endswith("?shipment=shp_000123")


@pytest.mark.parametrize("body", [b"param=%7Bnot+json", b"sign=ABC", b"\xff\xfe", urlencode({"param": "{}"}).encode()])
def test_an_unreadable_push_is_a_payload_error(carrier, body):
    with pytest.raises(PayloadError):
        plugin.oms_carrier_parse_tracking_push(carrier=carrier, body=body)


# --- faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("http_500", {}),
        ("throttle", {"retry_after": 0}),
        ("slow", {"delay": 1.5}),
        ("malformed_json", {}),
        ("busy", {}),
    ],
)
def test_a_passing_fault_is_retried_in_the_call(carrier, fake, fault, options):
    fake.inject(fault, **options)
    assert plugin.oms_carrier_track(carrier=carrier, tracking_number=SF_NUMBER, phone="0002", company_code="shunfeng")


@pytest.mark.parametrize(
    ("fault", "options", "retry_after"), [("throttle", {"retry_after": 60}, 60.0), ("busy", {}, None)]
)
def test_a_lasting_fault_is_retryable(carrier, fake, fault, options, retry_after):
    fake.inject(fault, times=10, **options)
    with pytest.raises(RetryableError) as raised:
        plugin.oms_carrier_track(carrier=carrier, tracking_number=SF_NUMBER, phone="0002", company_code="shunfeng")
    assert raised.value.retry_after == retry_after


def test_a_flaky_gateway_costs_retries_only(carrier, fake):
    fake.gateway.fail_every = 2
    for _ in range(3):
        assert plugin.oms_carrier_track(
            carrier=carrier, tracking_number=SF_NUMBER, phone="0002", company_code="shunfeng"
        )
    assert fake.gateway.failures >= 1


# --- settings and registration ------------------------------------------------------------


def test_settings_are_described_and_checked():
    [kind] = plugin.oms_carrier_kinds()
    assert kind.kind == "kuaidi100" and not kind.creates_waybills and kind.receives_webhooks
    assert {setting.key for setting in kind.settings if setting.secret} == {"key", "salt"}
    assert {"apiUrl", "customer", "key", "salt"} <= {setting.key for setting in kind.settings}
    good = {"apiUrl": "https://poll.kuaidi100.com", "customer": "C", "key": "K", "salt": "fakeSalt0123456789"}
    assert plugin.oms_carrier_check_settings(kind="kuaidi100", settings=good) == []
    bad = {"apiUrl": "poll.kuaidi100.com", "salt": "short", "company": "ShunFeng"}
    assert {key for key, _ in plugin.oms_carrier_check_settings(kind="kuaidi100", settings=bad)} == {
        "apiUrl", "customer", "key", "salt", "company",
    }  # fmt: skip
    assert plugin.oms_carrier_check_settings(kind="easypost", settings={}) is None


def test_tracking_only_means_no_services(carrier):
    assert plugin.oms_carrier_services(carrier=carrier) == []


def test_other_carrier_kinds_are_left_alone():
    other = CarrierConfig(code="sf", kind="sf", settings={})
    assert plugin.oms_carrier_services(carrier=other) is None
    assert plugin.oms_carrier_track(carrier=other, tracking_number="SF1", phone=None, company_code=None) is None
    assert plugin.oms_carrier_subscribe(
        carrier=other, tracking_number="SF1", company_code=None, callback_url="https://x", phone=None
    ) is None  # fmt: skip
    assert plugin.oms_carrier_verify_webhook(carrier=other, request=push_request(sample_push())) is None
    assert plugin.oms_carrier_parse_tracking_push(carrier=other, body=b"") is None


def test_the_plugin_registers_against_the_hookspecs():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()  # every hookimpl matches a spec by name and arguments
    [entry_point] = [ep for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP) if ep.name == "kuaidi100"]
    assert entry_point.load() is plugin
