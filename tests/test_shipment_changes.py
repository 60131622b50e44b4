"""Changes to what ships and when: ship-by promises and their lateness, parcels, and cancelling a
shipment at the carrier before it is collected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from oms_graphql.db.engine import Database
from oms_graphql.domain import tracking
from tests.fakes import sf
from tests.fakes.server import serve
from tests.support import (
    add_location,
    add_product,
    order_input,
    place_order,
    receive,
    run_async,
    wait_for_status,
)
from tests.test_ingestion import dispatch_order
from tests.test_tracking import CARRIER_CREATE

PROMISES = """query($id: ID!) { order(id: $id) { number status paidAt promisedShipBy promisedDeliverBy
  shipments { status late dispatchedAt } } }"""
ORDER_CREATE = """mutation($input: OrderCreateInput!) { orderCreate(input: $input) {
  order { id } userErrors { field message code } } }"""
CONFIRM = """mutation($id: ID!) { orderConfirmPayment(input: {id: $id}) {
  order { id } userErrors { field message code } } }"""
ALERTS = "{ alerts(first: 100) { edges { node { kind message } } } }"


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def stocked(admin, uid: str, tag: str, units: int = 5, **location: object) -> str:
    sku, where = f"SC-{tag}-{uid}", f"SC-{tag}-WH-{uid}"
    add_product(admin, sku)
    add_location(admin, where, **location)
    receive(admin, sku, where, units)
    return sku


# --- promisedShipBy -------------------------------------------------------------


def test_a_paid_order_promises_to_ship_within_a_day_and_same_day_by_the_end_of_the_day(admin, uid):
    sku = stocked(admin, uid, "SB", autoDispatch=False)
    standard = place_order(admin, [(sku, 1, "9.00")], paid=True)
    same_day = place_order(admin, [(sku, 1, "9.00")], paid=True, deliveryOption="SAME_DAY")
    given = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    chosen = place_order(admin, [(sku, 1, "9.00")], paid=True, promisedShipBy=given.isoformat())
    unpaid = place_order(admin, [(sku, 1, "9.00")])

    standard_view = admin(PROMISES, {"id": standard["id"]})["order"]
    same_day_view = admin(PROMISES, {"id": same_day["id"]})["order"]
    assert when(standard_view["promisedShipBy"]) == when(standard_view["paidAt"]) + timedelta(days=1)
    paid = when(same_day_view["paidAt"])
    assert when(same_day_view["promisedShipBy"]) == paid.replace(hour=23, minute=59, second=59, microsecond=0)
    assert when(admin(PROMISES, {"id": chosen["id"]})["order"]["promisedShipBy"]) == given
    assert admin(PROMISES, {"id": unpaid["id"]})["order"]["promisedShipBy"] is None  # no promise before payment

    assert admin.mutate("orderConfirmPayment", CONFIRM, {"id": unpaid["id"]})["userErrors"] == []
    confirmed = admin(PROMISES, {"id": unpaid["id"]})["order"]
    assert when(confirmed["promisedShipBy"]) == when(confirmed["paidAt"]) + timedelta(days=1)


def test_promises_without_a_time_zone_or_shipping_after_the_delivery_are_refused(admin, uid):
    sku = stocked(admin, uid, "SBX", units=1, autoDispatch=False)
    naive = admin.mutate(
        "orderCreate",
        ORDER_CREATE,
        {"input": order_input([(sku, 1, "9.00")], paid=True, promisedShipBy="2026-12-24T10:00:00")},
    )
    backwards = admin.mutate(
        "orderCreate",
        ORDER_CREATE,
        {
            "input": order_input(
                [(sku, 1, "9.00")],
                paid=True,
                promisedShipBy="2026-12-24T10:00:00Z",
                promisedDeliverBy="2026-12-23T10:00:00Z",
            )
        },
    )

    assert naive["order"] is None and [e["field"] for e in naive["userErrors"]] == [["input", "promisedShipBy"]]
    assert "time zone" in naive["userErrors"][0]["message"]
    assert backwards["order"] is None
    assert [e["field"] for e in backwards["userErrors"]] == [["input", "promisedShipBy"]]


def sweep_late(database_url: str) -> tuple[int, int]:
    async def run() -> tuple[int, int]:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                first = await tracking.alert_late_shipments(session)
            async with database.session() as session, session.begin():
                second = await tracking.alert_late_shipments(session)
            return first, second
        finally:
            await database.dispose()

    return run_async(run())


def test_an_order_not_dispatched_by_its_ship_by_date_is_alerted_once_and_its_shipment_is_late(admin, uid, database_url):
    sku = stocked(admin, uid, "SBL", autoDispatch=False)  # shipped by hand, later than promised
    past = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    order = place_order(admin, [(sku, 1, "9.00")], paid=True, promisedShipBy=past)
    wait_for_status(admin, order["id"], "ALLOCATED")

    sweep_late(database_url)  # the server's own sweep may have run already: either way, one alert
    _first, second = sweep_late(database_url)

    number = admin(PROMISES, {"id": order["id"]})["order"]["number"]
    mine = [e["node"]["message"] for e in admin(ALERTS)["alerts"]["edges"] if number in e["node"]["message"]]
    assert second == 0  # told once
    assert len(mine) == 1 and "to be dispatched by" in mine[0]
    alert_kinds = {e["node"]["kind"] for e in admin(ALERTS)["alerts"]["edges"] if number in e["node"]["message"]}
    assert alert_kinds == {"DELAYED_ORDER"}

    dispatch_order(database_url, number, "sf-main", f"SF{uid}")  # dispatched now: after the promise
    [shipment] = admin(PROMISES, {"id": order["id"]})["order"]["shipments"]
    assert shipment["status"] == "DISPATCHED" and shipment["late"] is True


def test_a_shipment_dispatched_before_its_ship_by_date_is_not_late(admin, uid, database_url):
    sku = stocked(admin, uid, "SBOK", autoDispatch=False)
    order = place_order(admin, [(sku, 1, "9.00")], paid=True)  # ship by tomorrow
    wait_for_status(admin, order["id"], "ALLOCATED")
    number = admin(PROMISES, {"id": order["id"]})["order"]["number"]

    dispatch_order(database_url, number, "sf-main", f"SF{uid}")

    [shipment] = admin(PROMISES, {"id": order["id"]})["order"]["shipments"]
    assert shipment["late"] is False


# --- packages -------------------------------------------------------------------

PRODUCT = """mutation($input: ProductCreateInput!) { productCreate(input: $input) {
  product { sku } userErrors { field message code } } }"""
FULFILLMENT = """query($id: ID!) { order(id: $id) { status fulfillmentOrders { id status }
  shipments { id status trackingNumber packages { weightGrams lengthMm trackingNumber } } } }"""
OPTIONS = """query($id: ID!) { deliveryOptions(orderId: $id) {
  carrierCode serviceCode eligible chosen reason price { amount } } }"""
SHIPMENT_CREATE = """mutation($input: ShipmentCreateInput!) { shipmentCreate(input: $input) {
  shipment { id status packages { weightGrams lengthMm widthMm heightMm trackingNumber } }
  userErrors { field message code } } }"""
DISPATCH = """mutation($id: ID!) { shipmentDispatch(input: {id: $id}) {
  shipment { status } userErrors { field message code } } }"""


@pytest.fixture
def sf_5kg(admin, uid) -> Iterator[tuple[str, sf.SfState]]:
    """An SF account whose contract takes parcels of at most 5 kg."""
    state = sf.SfState()
    with serve(sf.make_app(state)) as base:
        code = f"sf-5kg-{uid}".lower()
        settings = {"apiUrl": base + sf.API_PATH, **state.settings(), "maxWeightGrams": 5000}
        payload = admin.mutate(
            "carrierCreate", CARRIER_CREATE, {"input": {"code": code, "name": "SF", "kind": "sf", "settings": settings}}
        )
        assert payload["userErrors"] == [], payload
        yield code, state


def heavy_order(admin, uid: str, tag: str, grams: int, units: int) -> tuple[dict, str]:
    sku, where = f"SC-{tag}-{uid}", f"SC-{tag}-WH-{uid}"
    made = admin.mutate(
        "productCreate",
        PRODUCT,
        {"input": {"sku": sku, "name": f"Box {sku}", "weightGrams": grams, "lengthMm": 400, "widthMm": 300}},
    )
    assert made["userErrors"] == [], made
    add_location(admin, where, autoDispatch=False)
    receive(admin, sku, where, units)
    address = {"country": "CN", "region": "上海", "city": "上海市", "line1": "88 Century Ave", "phone": "13800000000"}
    order = place_order(admin, [(sku, units, "30.00")], paid=True, shippingAddress=address)
    wait_for_status(admin, order["id"], "ALLOCATED")
    [fulfillment] = admin(FULFILLMENT, {"id": order["id"]})["order"]["fulfillmentOrders"]
    return order, fulfillment["id"]


def test_an_order_heavier_than_one_parcel_ships_in_several_with_sfs_child_waybills(admin, uid, sf_5kg):
    code, state = sf_5kg
    order, fulfillment_id = heavy_order(admin, uid, "PK", grams=2000, units=4)  # 8 kg: two parcels of 4 kg

    options = [o for o in admin(OPTIONS, {"id": order["id"]})["deliveryOptions"] if o["carrierCode"] == code]
    created = admin.mutate(
        "shipmentCreate", SHIPMENT_CREATE, {"input": {"fulfillmentOrderId": fulfillment_id, "carrierCode": code}}
    )
    assert all(o["eligible"] for o in options) and all("for 2 parcels" in o["reason"] for o in options)
    assert created["userErrors"] == []
    assert [(p["weightGrams"], p["lengthMm"]) for p in created["shipment"]["packages"]] == [(4000, 400), (4000, 400)]

    assert admin.mutate("shipmentDispatch", DISPATCH, {"id": created["shipment"]["id"]})["userErrors"] == []
    wait_for_status(admin, order["id"], "SHIPPED")

    [call] = [c for c in state.calls_to("EXP_RECE_CREATE_ORDER") if c["result"] == "S0000"]
    assert call["msgData"]["parcelQty"] == 2 and call["msgData"]["totalWeight"] == 8.0
    [shipment] = admin(FULFILLMENT, {"id": order["id"]})["order"]["shipments"]
    master, child = (p["trackingNumber"] for p in shipment["packages"])
    assert master == shipment["trackingNumber"] and child and child != master
    [sf_order] = state.orders.values()
    assert {master, child} <= {entry["waybillNo"] for entry in sf_order["reply"]["msgData"]["waybillNoInfoList"]}


def test_a_unit_heavier_than_a_parcel_cannot_go_with_that_service(admin, uid, sf_5kg):
    code, _state = sf_5kg
    order, fulfillment_id = heavy_order(admin, uid, "PKX", grams=6000, units=1)

    options = [o for o in admin(OPTIONS, {"id": order["id"]})["deliveryOptions"] if o["carrierCode"] == code]
    created = admin.mutate(
        "shipmentCreate", SHIPMENT_CREATE, {"input": {"fulfillmentOrderId": fulfillment_id, "carrierCode": code}}
    )

    assert options and not any(o["eligible"] for o in options)
    assert all("one unit weighs 6 kg" in o["reason"] for o in options)
    assert created["shipment"] is None and [e["code"] for e in created["userErrors"]] == ["NOT_ELIGIBLE"]


def test_packages_given_by_hand_are_kept_and_bad_ones_refused_naming_the_field(admin, uid, sf_5kg):
    code, _state = sf_5kg
    order, fulfillment_id = heavy_order(admin, uid, "PKH", grams=2000, units=3)  # 6 kg of goods

    def create(*packages: dict) -> dict:
        return admin.mutate(
            "shipmentCreate",
            SHIPMENT_CREATE,
            {"input": {"fulfillmentOrderId": fulfillment_id, "carrierCode": code, "packages": list(packages)}},
        )

    weightless = create({"weightGrams": 0}, {"weightGrams": 6000})
    too_light = create({"weightGrams": 1000})
    too_heavy = create({"weightGrams": 6100, "lengthMm": 500})
    kept = create({"weightGrams": 2100, "lengthMm": 410}, {"weightGrams": 4200, "lengthMm": 410, "heightMm": 300})

    assert weightless["shipment"] is None
    assert [(e["field"], e["code"]) for e in weightless["userErrors"]] == [
        (["input", "packages", "0", "weightGrams"], "NOT_POSITIVE"),
        (["input", "packages", "1", "weightGrams"], "TOO_HEAVY"),
    ]
    # 1 kg cannot hold 6 kg of goods, nor one 2 kg unit.
    assert [(e["field"], e["code"]) for e in too_light["userErrors"]] == [(["input", "packages"], "CANNOT_CARRY")] * 2
    assert [(e["field"], e["code"]) for e in too_heavy["userErrors"]] == [
        (["input", "packages", "0", "weightGrams"], "TOO_HEAVY")
    ]
    assert kept["userErrors"] == []
    assert [(p["weightGrams"], p["heightMm"]) for p in kept["shipment"]["packages"]] == [(2100, None), (4200, 300)]
    shipments = admin(FULFILLMENT, {"id": order["id"]})["order"]["shipments"]
    assert [s["status"] for s in shipments] == ["PENDING"]  # the refused ones left nothing behind
