"""Dispatch through a carrier: a paid order goes by itself from ALLOCATED to SHIPPED with an SF
waybill and label, then to DELIVERED on SF's route push; by hand where a location says so; and a
shipment SF refuses is parked with a hold and an alert, never half-dispatched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes import sf
from tests.fakes.server import serve
from tests.support import (
    add_location,
    add_product,
    eventually,
    place_order,
    receive,
    sigkill_when_stalled,
    wait_for_status,
)
from tests.test_tracking import CARRIER_CREATE, sf_push

ORDER = """query($id: ID!) { order(id: $id) { number status
  fulfillmentOrders { id status holds { reason note } }
  shipments { id status carrier service trackingNumber labelUrl deliveryChoice } } }"""
CREATE = """mutation($input: ShipmentCreateInput!) { shipmentCreate(input: $input) {
  shipment { id status carrier service deliveryChoice } userErrors { field message code } } }"""
DISPATCH = """mutation($id: ID!) { shipmentDispatch(input: {id: $id}) {
  shipment { status } userErrors { field message code } } }"""
ALERTS = "{ alerts(first: 30) { edges { node { kind message } } } }"


@pytest.fixture
def sf_carrier(admin, uid) -> Iterator[tuple[str, sf.SfState]]:
    """An SF account on the fake SF gateway: the only active carrier of the scenario."""
    state = sf.SfState()
    with serve(sf.make_app(state)) as base:
        code = f"sf-disp-{uid}".lower()
        settings = {"apiUrl": base + sf.API_PATH, **state.settings()}
        payload = admin.mutate(
            "carrierCreate", CARRIER_CREATE, {"input": {"code": code, "name": "SF", "kind": "sf", "settings": settings}}
        )
        assert payload["userErrors"] == [], payload
        yield code, state


def paid_order(admin, uid: str, *, auto: bool = True, phone: str | None = "+86 13800000000") -> dict:
    sku, where = f"DSP-{uid}-{auto}-{bool(phone)}", f"DSP-WH-{uid}-{auto}-{bool(phone)}"
    add_product(admin, sku)
    add_location(admin, where, autoDispatch=auto)
    receive(admin, sku, where, 5)
    address = {"country": "CN", "region": "上海", "city": "上海市", "line1": "88 Century Ave", "name": "Wang Fang"}
    if phone:
        address["phone"] = phone
    return place_order(admin, [(sku, 2, "30.00")], paid=True, shippingAddress=address)


def test_a_paid_order_is_dispatched_by_itself_and_delivered_on_the_carriers_push(admin, server, uid, sf_carrier):
    code, state = sf_carrier
    order = paid_order(admin, uid)

    shipped = wait_for_status(admin, order["id"], "SHIPPED")
    data = admin(ORDER, {"id": order["id"]})["order"]

    [shipment] = data["shipments"]
    assert shipped and shipment["status"] == "DISPATCHED" and shipment["carrier"] == code
    assert shipment["trackingNumber"] in {o["waybillNo"] for o in state.orders.values()}
    assert len(state.orders) == 1  # one waybill at SF
    assert shipment["deliveryChoice"].startswith("Chosen:")
    label = admin.http.get(shipment["labelUrl"])
    assert label.status_code == 200 and label.content.startswith(b"%PDF")
    assert httpx.get(server + shipment["labelUrl"]).status_code == 401  # the same permission as the shipment

    push = sf_push(
        shipment["trackingNumber"], ("50", "2026-12-01 09:00:00", "已收取快件"), ("80", "2026-12-01 16:00:00", "已签收")
    )
    answer = httpx.post(f"{server}/webhooks/carriers/{code}", params={"token": state.webhook_token}, content=push)
    assert answer.status_code == 200
    assert wait_for_status(admin, order["id"], "DELIVERED")


def test_a_location_that_ships_by_hand_waits_for_shipment_create_and_dispatch(admin, uid, sf_carrier):
    code, state = sf_carrier
    order = paid_order(admin, uid, auto=False)
    wait_for_status(admin, order["id"], "ALLOCATED")
    [fulfillment] = admin(ORDER, {"id": order["id"]})["order"]["fulfillmentOrders"]
    assert state.orders == {}  # nothing went to SF by itself

    created = admin.mutate("shipmentCreate", CREATE, {"input": {"fulfillmentOrderId": fulfillment["id"]}})
    again = admin.mutate("shipmentCreate", CREATE, {"input": {"fulfillmentOrderId": fulfillment["id"]}})
    wrong = admin.mutate(
        "shipmentCreate", CREATE, {"input": {"fulfillmentOrderId": fulfillment["id"], "carrierCode": "nobody"}}
    )

    assert created["userErrors"] == [] and created["shipment"]["status"] == "PENDING"
    assert created["shipment"]["carrier"] == code and created["shipment"]["service"] in {"express", "standard"}
    assert again["shipment"]["id"] == created["shipment"]["id"]  # asked twice: one shipment
    assert [(e["field"], e["code"]) for e in wrong["userErrors"]] == [(["input", "carrierCode"], "PENDING_SHIPMENT")]

    queued = admin.mutate("shipmentDispatch", DISPATCH, {"id": created["shipment"]["id"]})
    assert queued["userErrors"] == []
    assert wait_for_status(admin, order["id"], "SHIPPED")
    done = admin.mutate("shipmentDispatch", DISPATCH, {"id": created["shipment"]["id"]})
    assert [e["code"] for e in done["userErrors"]] == ["INVALID_TRANSITION"]
    assert len(state.orders) == 1


def test_a_shipment_the_carrier_refuses_is_parked_with_a_hold_and_an_alert(admin, uid, sf_carrier):
    _code, state = sf_carrier
    order = paid_order(admin, uid, phone=None)  # SF refuses a receiver without a phone (1016)

    def parked():
        data = admin(ORDER, {"id": order["id"]})["order"]
        held = [f for f in data["fulfillmentOrders"] if f["status"] == "ON_HOLD"]  # once allocated, then parked
        return data if held else None

    data = eventually(parked, timeout=30)
    assert data["status"] == "ALLOCATED"  # stock still reserved, nothing shipped
    [hold] = data["fulfillmentOrders"][0]["holds"]
    assert hold["reason"] == "DELIVERY_PROBLEM" and "1016" in hold["note"]
    assert [s["status"] for s in data["shipments"]] == ["CANCELLED"]
    alerts = [e["node"]["message"] for e in admin(ALERTS)["alerts"]["edges"] if e["node"]["kind"] == "DISPATCH_FAILED"]
    assert any(data["number"] in message for message in alerts)
    assert json.dumps(state.orders) == "{}"  # no waybill was made


def test_a_taobao_order_ships_through_sf_and_taobao_hears_sfs_code_and_waybill(admin, uid, sf_carrier):
    from tests.channel_support import create_channel, ensure_product, sync_until, taobao_settings
    from tests.fakes import taobao
    from tests.test_ingestion import DRESS, SOCK, new_trade

    where = f"DSP-TB-{uid}"
    # Last in line: the sample SKUs are shared with other scenarios, whose warehouses come first.
    add_location(admin, where, priority=900)
    for sku in (DRESS, SOCK):
        ensure_product(admin, sku)
        receive(admin, sku, where, 10)

    _code, state = sf_carrier
    shop = taobao.TaobaoState(load_samples=False)
    with serve(taobao.make_app(shop)) as url:
        tid = new_trade(shop)
        channel = f"tb-disp-{uid}".lower()
        create_channel(admin, channel, "taobao", taobao_settings(url, shop))

        order = sync_until(admin, channel, tid, "SHIPPED", timeout=60)

        [shipment] = order["shipments"]
        confirmed = eventually(lambda: [s for s in shop.shipments if s["tid"] == tid], timeout=30)
    assert confirmed[0]["company_code"] == "SF"  # the SF plugin's code for Taobao, not our account's code
    assert confirmed[0]["out_sid"] == shipment["trackingNumber"]
    assert shipment["trackingNumber"] in {o["waybillNo"] for o in state.orders.values()}


MARK = """mutation($id: ID!) { shipmentMarkDelivered(input: {id: $id}) {
  shipment { status } userErrors { field message code } } }"""
CANCEL = """mutation($id: ID!) { shipmentCancel(input: {id: $id}) {
  shipment { status } userErrors { field message code } } }"""
SHIPMENT_EVENTS = """subscription($f: ShipmentEventsFilter) { shipmentEvents(filter: $f) {
  shipmentId orderId carrier trackingNumber fromStatus status at } }"""


async def shipment_events(ws_url: str, token: str, order_id: str, count: int, act) -> list[dict]:
    import asyncio

    import websockets

    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": SHIPMENT_EVENTS, "variables": {"f": {"orderId": order_id}}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        await asyncio.sleep(0.3)  # the subscription registers with the hub
        await asyncio.to_thread(act)
        events = []
        while len(events) < count:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
            assert message["type"] == "next", message
            events.append(message["payload"]["data"]["shipmentEvents"])
        return events


def test_shipment_changes_are_pushed_and_a_shipment_is_delivered_or_cancelled_by_hand(admin, server, uid, sf_carrier):
    import asyncio

    code, _state = sf_carrier
    order = paid_order(admin, uid, auto=False)
    wait_for_status(admin, order["id"], "ALLOCATED")
    [fulfillment] = admin(ORDER, {"id": order["id"]})["order"]["fulfillmentOrders"]
    first = admin.mutate("shipmentCreate", CREATE, {"input": {"fulfillmentOrderId": fulfillment["id"]}})["shipment"]
    assert admin.mutate("shipmentCancel", CANCEL, {"id": first["id"]})["shipment"] == {"status": "CANCELLED"}
    assert [e["code"] for e in admin.mutate("shipmentCancel", CANCEL, {"id": first["id"]})["userErrors"]] == [
        "INVALID_TRANSITION"
    ]
    shipment = admin.mutate("shipmentCreate", CREATE, {"input": {"fulfillmentOrderId": fulfillment["id"]}})["shipment"]
    assert shipment["id"] != first["id"]

    def act() -> None:
        admin.mutate("shipmentDispatch", DISPATCH, {"id": shipment["id"]})
        wait_for_status(admin, order["id"], "SHIPPED")
        assert admin.mutate("shipmentMarkDelivered", MARK, {"id": shipment["id"]})["userErrors"] == []

    events = asyncio.run(shipment_events(server.replace("http", "ws") + "/graphql", admin.token, order["id"], 2, act))

    assert [(e["fromStatus"], e["status"]) for e in events] == [("PENDING", "DISPATCHED"), ("DISPATCHED", "DELIVERED")]
    assert all(e["shipmentId"] == shipment["id"] and e["carrier"] == code for e in events)
    assert wait_for_status(admin, order["id"], "DELIVERED")
    again = admin.mutate("shipmentMarkDelivered", MARK, {"id": shipment["id"]})
    assert [e["code"] for e in again["userErrors"]] == ["INVALID_TRANSITION"]


LATE = """query($id: ID!) { order(id: $id) { status promisedDeliverBy shipments { status late trackingNumber } } }"""


def test_an_open_shipment_is_polled_and_a_late_one_alerted_once(admin, uid, sf_carrier, database_url):
    from datetime import UTC, datetime, timedelta

    from oms_graphql.db.engine import Database
    from oms_graphql.domain import tracking
    from oms_graphql.jobs.delivery import poll_shipment_tracking
    from tests.support import run_async

    _code, state = sf_carrier
    promised = (datetime.now(UTC) - timedelta(hours=1)).isoformat()  # already past: the order is late
    sku, where = f"DSP-L-{uid}", f"DSP-LWH-{uid}"
    add_product(admin, sku)
    add_location(admin, where)
    receive(admin, sku, where, 2)
    order = place_order(admin, [(sku, 1, "30.00")], paid=True, promisedDeliverBy=promised)
    wait_for_status(admin, order["id"], "SHIPPED")
    [shipment] = admin(LATE, {"id": order["id"]})["order"]["shipments"]
    assert shipment["late"] is True
    # SF has moved the parcel; it pushes nothing here, so only a poll can tell.
    state.routes[shipment["trackingNumber"]] = [
        {"acceptTime": "2026-12-01 10:00:00", "acceptAddress": "上海市", "remark": "派送中", "opCode": "44"}
    ]

    async def sweep() -> tuple[list[int], int, int]:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                due = await tracking.due_for_polling(session, timedelta(seconds=-1))
                first = await tracking.alert_late_shipments(session)
            async with database.session() as session, session.begin():
                second = await tracking.alert_late_shipments(session)
            return due, first, second
        finally:
            await database.dispose()

    due, first, second = run_async(sweep())
    for shipment_id in due:
        poll_shipment_tracking(shipment_id)

    assert first >= 1 and second == 0  # told once
    after = admin(LATE, {"id": order["id"]})["order"]
    assert after["shipments"][0]["status"] == "OUT_FOR_DELIVERY"
    alerts = [e["node"]["message"] for e in admin(ALERTS)["alerts"]["edges"] if e["node"]["kind"] == "DELAYED_ORDER"]
    assert any(order["number"] in message for message in alerts)


def allocated_by_hand(admin, orders: list[dict]) -> list[int]:
    """The orders' fulfillment order ids, once allocated (at a location that ships by hand)."""
    from oms_graphql.schema.ids import from_global_id

    fulfillment_ids = []
    for order in orders:
        wait_for_status(admin, order["id"], "ALLOCATED")
        [held] = admin(ORDER, {"id": order["id"]})["order"]["fulfillmentOrders"]
        fulfillment_ids.append(from_global_id(held["id"])[1])
    return fulfillment_ids


def test_a_batch_of_fulfillment_orders_is_dispatched_each_on_its_own_and_a_rerun_doubles_nothing(
    admin, uid, sf_carrier
):
    from oms_graphql.jobs.delivery import dispatch_fulfillment_orders

    _code, state = sf_carrier
    # Allocated at a location that ships by hand, so that the batch job below is the only dispatch.
    orders = [paid_order(admin, f"{uid}{n}", auto=False) for n in range(3)]
    no_phone = paid_order(admin, f"{uid}x", auto=False, phone=None)  # SF refuses it (1016)
    everyone = [*orders, no_phone]
    fulfillment_ids = allocated_by_hand(admin, everyone)
    # The first waybill is made at SF but its answer is lost, and SF answers 500 to the plugin's
    # own three retries: that shipment is handed to a job of its own (where SF answers 8016 and the
    # plugin fetches the same waybill), and the others go on meanwhile.
    state.inject("lost_answer", service="EXP_RECE_CREATE_ORDER")
    state.inject("http_500", times=3, service="EXP_RECE_CREATE_ORDER")

    dispatch_fulfillment_orders.fn(fulfillment_order_ids=fulfillment_ids)
    for order in orders:
        assert wait_for_status(admin, order["id"], "SHIPPED")
    dispatch_fulfillment_orders.fn(fulfillment_order_ids=fulfillment_ids)  # redelivered: nothing is doubled

    shipments = {order["number"]: admin(ORDER, {"id": order["id"]})["order"]["shipments"] for order in everyone}
    for order in orders:
        [shipment] = shipments[order["number"]]
        assert shipment["status"] == "DISPATCHED" and shipment["trackingNumber"]
    assert len({shipments[order["number"]][0]["trackingNumber"] for order in orders}) == 3
    assert sorted(o["waybillNo"] for o in state.orders.values()) == sorted(
        shipments[order["number"]][0]["trackingNumber"] for order in orders
    )  # one waybill at SF per shipment
    assert state.calls_to("EXP_RECE_SEARCH_ORDER_RESP")  # the lost one was fetched, not made again
    refused = admin(ORDER, {"id": no_phone["id"]})["order"]
    assert refused["status"] == "ALLOCATED" and [s["status"] for s in refused["shipments"]] == ["CANCELLED"]
    assert [f["status"] for f in refused["fulfillmentOrders"]] == ["ON_HOLD"]


def test_a_batch_dispatch_killed_between_the_waybill_and_its_booking_is_finished_by_the_rerun(
    admin, uid, sf_carrier, database_url
):
    from oms_graphql.jobs.delivery import dispatch_fulfillment_orders

    _code, state = sf_carrier
    orders = [paid_order(admin, f"{uid}k{n}", auto=False) for n in range(3)]
    fulfillment_ids = allocated_by_hand(admin, orders)
    marker = Path(f"/tmp/oms-dispatch-kill-{uid}")
    # The batch job stops once SF has made the first waybill, before it is booked: SIGKILL there.
    script = (
        "import sys, time, pathlib; from oms_graphql.domain import dispatch\n"
        "async def stalled(*args, **kwargs):\n"
        "    pathlib.Path(sys.argv[1]).write_text('stalled'); time.sleep(600)\n"
        "dispatch.complete_dispatch = stalled\n"
        "from oms_graphql.jobs.delivery import dispatch_fulfillment_orders\n"
        "dispatch_fulfillment_orders.fn(fulfillment_order_ids=[int(i) for i in sys.argv[2].split(',')])\n"
    )
    sigkill_when_stalled(script, marker, database_url, fulfillment_ids)
    assert len(state.orders) == 1  # one waybill made, none booked
    assert all(admin(ORDER, {"id": o["id"]})["order"]["status"] == "ALLOCATED" for o in orders)

    dispatch_fulfillment_orders.fn(fulfillment_order_ids=fulfillment_ids)  # the redelivered message

    shipments = [admin(ORDER, {"id": o["id"]})["order"] for o in orders]
    assert [o["status"] for o in shipments] == ["SHIPPED"] * 3
    numbers = [shipment["trackingNumber"] for o in shipments for shipment in o["shipments"]]
    assert [s["status"] for o in shipments for s in o["shipments"]] == ["DISPATCHED"] * 3
    assert sorted(numbers) == sorted(o["waybillNo"] for o in state.orders.values())  # none doubled, none lost
