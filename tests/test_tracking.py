"""Tracking events move shipments and orders: duplicates and late events change nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from oms_graphql.db.engine import Database
from oms_graphql.domain.tracking import apply_tracking
from oms_graphql.plugins.carrier_contract import TrackingEvent, TrackingStatus
from tests.channel_support import messages
from tests.fakes.sf import SfState
from tests.support import add_location, add_product, eventually, place_order, receive, run_async, wait_for_status
from tests.test_ingestion import dispatch_order

SHIPMENTS = """query($id: ID!) { order(id: $id) { status
  shipments { status trackingNumber deliveredAt events { code description location occurredAt } } } }"""


def shipped_order(admin, database_url: str, uid: str, tracking: str, carrier_code: str = "sf-main") -> dict:
    """A paid order allocated and dispatched with ``carrier_code`` under ``tracking``."""
    sku, where = f"TR-{uid}", f"TR-WH-{uid}"
    add_product(admin, sku)
    add_location(admin, where, autoDispatch=False)  # shipped by hand below
    receive(admin, sku, where, 3)
    order = place_order(admin, [(sku, 1, "9.00")], paid=True)
    wait_for_status(admin, order["id"], "ALLOCATED")
    dispatch_order(database_url, order["number"], carrier_code, tracking)
    return order


def track(database_url: str, carrier: str, *events: TrackingEvent):
    async def run():
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                return await apply_tracking(session, carrier, list(events))
        finally:
            await database.dispose()

    return run_async(run())


def event(tracking: str, status: TrackingStatus, minutes: int, code: str = "", text: str = "") -> TrackingEvent:
    at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=minutes)
    return TrackingEvent(tracking, status, at, carrier_code=code, description=text, location="杭州")


def test_events_take_a_shipment_and_its_order_to_delivered(admin, uid, database_url):
    tracking = f"SF{uid}"
    order = shipped_order(admin, database_url, uid, tracking)

    first = track(
        database_url,
        "sf-main",
        event(tracking, TrackingStatus.IN_TRANSIT, 10, "30", "快件已发车"),
        event(tracking, TrackingStatus.OUT_FOR_DELIVERY, 60, "44", "派送中"),
    )
    in_between = admin(SHIPMENTS, {"id": order["id"]})["order"]
    last = track(database_url, "sf-main", event(tracking, TrackingStatus.DELIVERED, 90, "80", "已签收"))

    assert (first.events, first.shipments, first.unknown) == (2, 1, ())
    assert in_between["status"] == "SHIPPED" and in_between["shipments"][0]["status"] == "OUT_FOR_DELIVERY"
    assert last.events == 1
    done = admin(SHIPMENTS, {"id": order["id"]})["order"]
    assert done["status"] == "DELIVERED"
    [shipment] = done["shipments"]
    assert shipment["status"] == "DELIVERED" and shipment["deliveredAt"].startswith("2026-12-01T09:30")
    assert [e["code"] for e in shipment["events"]] == ["IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED"]
    assert shipment["events"][2]["description"] == "已签收"


def test_duplicate_and_late_events_change_nothing_twice(admin, uid, database_url):
    tracking = f"SF{uid}"
    order = shipped_order(admin, database_url, uid, tracking)
    track(database_url, "sf-main", event(tracking, TrackingStatus.OUT_FOR_DELIVERY, 60, "44"))

    again = track(
        database_url,
        "sf-main",
        event(tracking, TrackingStatus.OUT_FOR_DELIVERY, 60, "44"),  # the same push twice
        event(tracking, TrackingStatus.IN_TRANSIT, 10, "30"),  # an older event arriving late
    )
    track(database_url, "sf-main", event(tracking, TrackingStatus.DELIVERED, 90, "80"))
    stray = track(database_url, "sf-main", event(tracking, TrackingStatus.IN_TRANSIT, 120, "31"))  # a scan after
    other = track(database_url, "sf-main", event("SF-NOBODY", TrackingStatus.IN_TRANSIT, 5))
    wrong_carrier = track(database_url, "ems", event(tracking, TrackingStatus.DELIVERED, 99))

    assert again.events == 1  # only the late one is new
    [shipment] = admin(SHIPMENTS, {"id": order["id"]})["order"]["shipments"]
    assert stray.events == 1  # kept in the history…
    assert shipment["status"] == "DELIVERED"  # …but neither the late event nor the stray scan moved it back
    assert [e["code"] for e in shipment["events"]] == ["IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED", "IN_TRANSIT"]
    assert other.unknown == ("SF-NOBODY",) and other.events == 0
    assert wrong_carrier.events == 0  # another carrier's parcel with the same number is not ours


def test_a_failed_attempt_raises_an_alert(admin, uid, database_url):
    tracking = f"SF{uid}"
    shipped_order(admin, database_url, uid, tracking)

    track(database_url, "sf-main", event(tracking, TrackingStatus.FAILED_ATTEMPT, 30, "70", "客户不在"))

    alerts = admin("{ alerts(first: 50) { edges { node { kind message } } } }")
    messages = [
        edge["node"]["message"] for edge in alerts["alerts"]["edges"] if edge["node"]["kind"] == "DELIVERY_EXCEPTION"
    ]
    assert any(tracking in message and "FAILED_ATTEMPT" in message for message in messages)


# --- pushed by the carrier, over HTTP -----------------------------------------

CARRIER_CREATE = """mutation($input: CarrierCreateInput!) { carrierCreate(input: $input) {
  carrier { code secretSettingsSet settings } userErrors { field message code } } }"""


def sf_push(tracking: str, *routes: tuple[str, str, str]) -> bytes:
    """A route push in SF's documented JSON shape (carrier-samples/sf/route_push_body.json)."""
    body = {
        "Body": {
            "WaybillRoute": [
                {
                    "mailno": tracking,
                    "acceptAddress": "杭州市",
                    "reasonName": "",
                    "orderid": f"OMS-{tracking}",
                    "acceptTime": when,
                    "remark": remark,
                    "opCode": op_code,
                    "id": f"{abs(hash((tracking, when))) % 10**15:015d}",
                    "reasonCode": "",
                }
                for op_code, when, remark in routes
            ]
        }
    }
    return json.dumps(body, ensure_ascii=False).encode()


def test_an_sf_route_push_delivers_the_order_and_a_forged_one_is_kept_rejected(admin, server, uid, database_url):
    sf = SfState()
    code = f"sf-{uid}".lower()
    created = admin.mutate(
        "carrierCreate",
        CARRIER_CREATE,
        {
            "input": {
                "code": code,
                "name": "SF",
                "kind": "sf",
                "settings": {"apiUrl": "http://127.0.0.1:9/std/service", **sf.settings()},
            }
        },
    )
    assert created["userErrors"] == [] and "webhookToken" in created["carrier"]["secretSettingsSet"]
    assert "webhookToken" not in created["carrier"]["settings"]  # secrets are write-only
    tracking = f"SF{uid}"
    order = shipped_order(admin, database_url, uid, tracking, carrier_code=code)
    url = f"{server}/webhooks/carriers/{code}"
    push = sf_push(tracking, ("50", "2026-12-01 09:00:00", "已收取快件"), ("80", "2026-12-01 15:30:00", "已签收"))

    answer = httpx.post(url, params={"token": sf.webhook_token}, content=push)
    again = httpx.post(url, params={"token": sf.webhook_token}, content=push)
    forged = httpx.post(url, params={"token": "not-the-token"}, content=push)
    garbled = httpx.post(url, params={"token": sf.webhook_token}, content=b'{"Body": 1}')

    assert answer.status_code == 200 and answer.json() == {"return_code": "0000", "return_msg": "成功"}
    assert again.status_code == 200 and forged.status_code == 401 and garbled.status_code == 400
    delivered = eventually(
        lambda: (o := admin(SHIPMENTS, {"id": order["id"]})["order"])["status"] == "DELIVERED" and o, timeout=20
    )
    [shipment] = delivered["shipments"]
    assert [e["code"] for e in shipment["events"]] == ["IN_TRANSIT", "DELIVERED"]  # the repeat added nothing
    stored = {m["status"] for m in messages(admin, code)}
    assert {"PROCESSED", "REJECTED", "FAILED"} <= stored  # every push kept, the forged one refused


def test_a_replayed_easypost_event_is_refused_and_unknown_carriers_store_nothing(admin, server, uid):
    from tests.fakes.easypost import EasyPostState

    state = EasyPostState()
    code = f"ep-{uid}".lower()
    settings = {"apiUrl": "http://127.0.0.1:9/v2", **state.settings()}
    created = admin.mutate(
        "carrierCreate",
        CARRIER_CREATE,
        {"input": {"code": code, "name": "EP", "kind": "easypost", "settings": settings}},
    )
    assert created["userErrors"] == []
    tracker = state.new_tracker(f"EZ{uid}", "USPS")
    url = f"{server}/webhooks/carriers/{code}"

    first = state.send_event(tracker["id"], url)
    sent = state.events_sent[-1]
    headers = {"content-type": "application/json", "x-hmac-signature": sent["signature"]}
    replay = httpx.post(url, content=sent["body"], headers=headers)
    unknown = httpx.post(f"{server}/webhooks/carriers/nope-{uid}", content=b'{"x": 1}')

    assert first.status_code == 200
    assert replay.status_code == 409 and "received already" in replay.json()["reason"]
    assert len(messages(admin, code)) == 1
    assert unknown.status_code == 404 and messages(admin, f"nope-{uid}") == []


# --- what a customer sees, without a token --------------------------------------

ORDER_TRACKING = """query($number: String!, $contact: String!) { orderTracking(number: $number, contact: $contact) {
  number status placedAt city shipments { carrier trackingNumber status events { code description occurredAt } } } }"""


def test_a_customer_tracks_an_order_with_its_phone_or_email_and_sees_no_personal_data(
    admin, anonymous, uid, database_url
):
    tracking = f"SF{uid}"
    order = shipped_order(admin, database_url, uid, tracking)
    track(database_url, "sf-main", event(tracking, TrackingStatus.IN_TRANSIT, 10, "30", "快件已发车"))

    by_phone = anonymous(ORDER_TRACKING, {"number": order["number"], "contact": "13800000000"})["orderTracking"]
    by_full_phone = anonymous(ORDER_TRACKING, {"number": order["number"], "contact": "+86 138 0000 0000"})
    wrong = anonymous(ORDER_TRACKING, {"number": order["number"], "contact": "13900000000"})["orderTracking"]
    raw = anonymous.raw(
        ORDER_TRACKING.replace("city", "city shippingAddress { line1 }"), {"number": "x", "contact": "y"}
    )

    assert by_phone["number"] == order["number"] and by_phone["status"] == "SHIPPED"
    assert by_phone["city"] == "Shanghai"
    [shipment] = by_phone["shipments"]
    assert shipment["trackingNumber"] == tracking and shipment["status"] == "IN_TRANSIT"
    assert [e["description"] for e in shipment["events"]] == ["快件已发车"]
    assert by_full_phone["orderTracking"]["number"] == order["number"]
    assert wrong is None
    assert raw["errors"]  # no street, name or phone to ask for


def test_guessing_contacts_for_an_order_is_rate_limited(anonymous, uid):
    number = f"261201-{uid[:6]}"
    answers = [anonymous.raw(ORDER_TRACKING, {"number": number, "contact": f"1380000{i:04d}"}) for i in range(7)]

    assert [a["data"]["orderTracking"] for a in answers[:5]] == [None] * 5
    assert answers[5]["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert "try again in" in answers[5]["errors"][0]["message"]
