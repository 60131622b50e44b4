"""Changes to what ships and when: ship-by promises and their lateness, parcels, and cancelling a
shipment at the carrier before it is collected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oms_graphql.db.engine import Database
from oms_graphql.domain import tracking
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


def test_an_order_not_dispatched_by_its_ship_by_date_is_alerted_once_and_its_shipment_is_late(
    admin, uid, database_url
):
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
