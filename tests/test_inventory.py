"""Inventory through the GraphQL endpoint: ledger, counts, available to promise, alerts, transfers, live stock."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.sync.client import connect

from oms_graphql.plugins.hookspecs import hookimpl
from oms_graphql.plugins.host import plugin_manager
from tests.support import add_location, add_product, eventually, place_order, receive, run_async, wait_for_status

LEVEL = """query($sku: String!, $code: String!) { stockLevels(filter: {sku: $sku, locationCode: $code}) {
  edges { node { onHand reserved inTransit safetyStock available reorderPoint reorderQuantity } } } }"""
MOVEMENTS = """query($sku: String!, $reason: String) { stockMovements(first: 50, filter: {sku: $sku, reason: $reason}) {
  totalCount edges { node { reason quantity reference location { code } } } } }"""
RECEIVE = """mutation($input: StockReceiveInput!) { stockReceive(input: $input) {
  stockLevel { onHand } userErrors { field message code } } }"""
ADJUST = """mutation($input: StockAdjustInput!) { stockAdjust(input: $input) {
  stockLevel { onHand available } userErrors { field message code } } }"""
COUNT = """mutation($input: StockCountInput!) { stockCount(input: $input) {
  difference stockLevel { onHand reserved available } userErrors { field message code } } }"""
POLICY = """mutation($input: ReorderPolicySetInput!) { reorderPolicySet(input: $input) {
  stockLevel { safetyStock reorderPoint reorderQuantity available } userErrors { field message code } } }"""
ATP = """query($sku: String!, $channel: String) { availableToPromise(sku: $sku, channelCode: $channel) {
  sku channelCode total locationsTotal locations { location { code } available } } }"""
ALERTS = """query($sku: String!) { alerts(filter: {sku: $sku}) {
  edges { node { kind sku locationCode message suggestedQuantity resolvedAt } } } }"""
TRANSFER_FIELDS = """transfer { id status fromLocation { code } toLocation { code }
  lines { sku quantity receivedQuantity outstandingQuantity discrepancy } }
  userErrors { field message code }"""
TRANSFER_CREATE = "mutation($input: TransferCreateInput!) { transferCreate(input: $input) { FIELDS } }"
TRANSFER_SHIP = "mutation($id: ID!) { transferShip(input: {id: $id}) { FIELDS } }"
TRANSFER_RECEIVE = "mutation($input: TransferReceiveInput!) { transferReceive(input: $input) { FIELDS } }"
TRANSFER_CREATE, TRANSFER_SHIP, TRANSFER_RECEIVE = (
    query.replace("FIELDS", TRANSFER_FIELDS) for query in (TRANSFER_CREATE, TRANSFER_SHIP, TRANSFER_RECEIVE)
)
SUGGEST = """mutation($input: TransferSuggestInput!) { transferSuggest(input: $input) {
  suggestions { sku fromLocationCode toLocationCode quantity toCoverDaysBefore toCoverDaysAfter explanation }
  transfers { status lines { sku quantity } } userErrors { field message code } } }"""


def level(client, sku: str, code: str) -> dict:
    return client(LEVEL, {"sku": sku, "code": code})["stockLevels"]["edges"][0]["node"]


def movements(client, sku: str, reason: str | None = None) -> list[dict]:
    return [e["node"] for e in client(MOVEMENTS, {"sku": sku, "reason": reason})["stockMovements"]["edges"]]


def stocked(client, uid: str, units: int = 10, code: str | None = None) -> tuple[str, str]:
    sku, code = f"INV-{uid}", code or f"WH-{uid}"
    add_product(client, sku)
    add_location(client, code)
    if units:
        receive(client, sku, code, units)
    return sku, code


def add_channel(database_url: str, code: str, kind: str, share: int, buffer: int) -> None:
    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Channel

    async def create() -> None:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                session.add(Channel(code=code, name=code, kind=kind, stock_share_percent=share, stock_buffer=buffer))
        finally:
            await database.dispose()

    run_async(create())


def set_channel_active(database_url: str, code: str, active: bool) -> None:
    from sqlalchemy import update

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Channel

    async def change() -> None:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                await session.execute(update(Channel).where(Channel.code == code).values(active=active))
        finally:
            await database.dispose()

    run_async(change())


@contextmanager
def subscription(server: str, token: str, query: str, variables: dict[str, Any]):
    """A graphql-transport-ws subscription; yields a function returning the next event's data."""
    with connect(server.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}))
        time.sleep(0.3)  # let the server start listening before the test acts

        def next_event(timeout: float = 10) -> dict:
            while True:
                message = json.loads(ws.recv(timeout=timeout))
                if message["type"] == "next":
                    assert not message["payload"].get("errors"), message
                    return message["payload"]["data"]
                if message["type"] in ("error", "complete"):
                    raise AssertionError(message)

        yield next_event


class Recorder:
    """A plugin registered for one test, recording what the hooks receive."""

    def __init__(self) -> None:
        self.alerts: list[Any] = []
        self.stock_changes: list[dict] = []

    @hookimpl
    def oms_notify(self, alert):
        self.alerts.append(alert)

    @hookimpl
    def oms_stock_changed(self, channel_code, sku, quantity, locations):
        self.stock_changes.append({"channel": channel_code, "sku": sku, "quantity": quantity, "locations": locations})


@pytest.fixture
def recorder():
    plugin = Recorder()
    plugin_manager().register(plugin, name="test-recorder")
    try:
        yield plugin
    finally:
        plugin_manager().unregister(name="test-recorder")


# --- the ledger and bad input -------------------------------------------------


def test_bad_stock_input_is_refused_with_errors_naming_the_field_and_nothing_is_written(admin, uid):
    sku, code = stocked(admin, uid, units=5)
    before = movements(admin, sku)
    refused = admin.mutate("stockReceive", RECEIVE, {"input": {"sku": sku, "locationCode": code, "quantity": -3}})
    assert refused["stockLevel"] is None
    assert refused["userErrors"][0]["field"] == ["input", "quantity"]
    no_reason = admin.mutate(
        "stockAdjust", ADJUST, {"input": {"sku": sku, "locationCode": code, "delta": -1, "reason": " "}}
    )
    assert no_reason["userErrors"][0]["field"] == ["input", "reason"]
    unknown = admin.mutate(
        "stockCount", COUNT, {"input": {"sku": "NOPE-" + uid, "locationCode": "NOWHERE-" + uid, "countedQuantity": 3}}
    )
    assert {tuple(e["field"]) for e in unknown["userErrors"]} == {("input", "sku"), ("input", "locationCode")}
    assert {e["code"] for e in unknown["userErrors"]} == {"NOT_FOUND"}
    negative = admin.mutate("stockCount", COUNT, {"input": {"sku": sku, "locationCode": code, "countedQuantity": -1}})
    assert negative["userErrors"][0]["field"] == ["input", "countedQuantity"]
    too_much = admin.mutate(
        "stockAdjust", ADJUST, {"input": {"sku": sku, "locationCode": code, "delta": -6, "reason": "broken"}}
    )
    assert too_much["userErrors"][0]["code"] == "INSUFFICIENT_STOCK"
    assert movements(admin, sku) == before
    assert level(admin, sku, code)["onHand"] == 5


def test_a_count_books_the_difference_as_a_count_movement(admin, uid):
    sku, code = stocked(admin, uid, units=10)
    counted = admin.mutate(
        "stockCount",
        COUNT,
        {"input": {"sku": sku, "locationCode": code, "countedQuantity": 7, "reason": "weekly count"}},
    )
    assert counted["userErrors"] == []
    assert counted["difference"] == -3
    assert counted["stockLevel"] == {"onHand": 7, "reserved": 0, "available": 7}
    [count] = movements(admin, sku, "COUNT")
    assert count["quantity"] == -3 and "weekly count" in count["reference"]
    adjusted = admin.mutate(
        "stockAdjust",
        ADJUST,
        {"input": {"sku": sku, "locationCode": code, "delta": 2, "reason": "found behind the shelf"}},
    )
    assert adjusted["stockLevel"]["onHand"] == 9
    assert [m["reason"] for m in movements(admin, sku)] == ["ADJUST", "COUNT", "RECEIPT"]


def test_a_count_below_what_is_reserved_is_refused(admin, uid):
    sku, code = stocked(admin, uid, units=5)
    order = place_order(admin, [(sku, 4, "10.00")], paid=True)
    wait_for_status(admin, order["id"], "ALLOCATED")
    refused = admin.mutate("stockCount", COUNT, {"input": {"sku": sku, "locationCode": code, "countedQuantity": 3}})
    assert refused["userErrors"][0]["code"] == "INSUFFICIENT_STOCK"
    assert refused["userErrors"][0]["field"] == ["input", "countedQuantity"]
    assert level(admin, sku, code)["onHand"] == 5


def test_a_viewer_may_read_stock_but_not_count_it(viewer, admin, uid):
    sku, code = stocked(admin, uid, units=1)
    body = viewer.raw(COUNT, {"input": {"sku": sku, "locationCode": code, "countedQuantity": 3}})
    assert "Not allowed" in body["errors"][0]["message"]
    assert viewer(ATP, {"sku": sku})["availableToPromise"]["total"] == 1


# --- available to promise -------------------------------------------------------


def test_available_to_promise_per_location_and_per_channel_share_and_buffer(admin, uid, database_url):
    sku, main = stocked(admin, uid, units=30)
    store = f"ST-{uid}"
    add_location(admin, store, priority=20, kind="STORE")
    receive(admin, sku, store, 12)
    policy = admin.mutate("reorderPolicySet", POLICY, {"input": {"sku": sku, "locationCode": store, "safetyStock": 2}})
    assert policy["stockLevel"]["available"] == 10
    order = place_order(admin, [(sku, 5, "10.00")], paid=True)
    wait_for_status(admin, order["id"], "ALLOCATED")
    atp = admin(ATP, {"sku": sku})["availableToPromise"]
    assert atp["total"] == 35 and atp["channelCode"] is None
    assert {e["location"]["code"]: e["available"] for e in atp["locations"]} == {main: 25, store: 10}
    add_channel(database_url, f"shop-{uid}", "testshop", share=60, buffer=3)
    for_channel = admin(ATP, {"sku": sku, "channel": f"shop-{uid}"})["availableToPromise"]
    assert for_channel["total"] == 18  # floor(35 × 60 / 100) − 3
    assert for_channel["locationsTotal"] == 35
    set_channel_active(database_url, f"shop-{uid}", False)
    assert admin(ATP, {"sku": "NOPE-" + uid})["availableToPromise"] is None


def test_the_channel_formula_never_goes_below_zero():
    from oms_graphql.domain.availability import channel_quantity

    assert channel_quantity(10, 100, 0) == 10
    assert channel_quantity(7, 50, 0) == 3
    assert channel_quantity(7, 50, 5) == 0
    assert channel_quantity(0, 100, 2) == 0


# --- reorder policy and low-stock alerts ----------------------------------------


def test_one_low_stock_alert_per_crossing_to_subscribers_and_notifier_plugins(admin, uid, server, recorder):
    sku, code = stocked(admin, uid, units=10)
    policy = admin.mutate(
        "reorderPolicySet",
        POLICY,
        {"input": {"sku": sku, "locationCode": code, "reorderPoint": 5, "reorderQuantity": 20, "leadTimeDays": 7}},
    )
    assert policy["userErrors"] == [] and policy["stockLevel"]["reorderPoint"] == 5
    query = "subscription { alerts { kind sku locationCode suggestedQuantity message } }"
    with subscription(server, admin.token, query, {}) as next_event:
        orders = [place_order(admin, [(sku, 2, "10.00")], paid=True) for _ in range(4)]
        for order in orders:
            wait_for_status(admin, order["id"], "ALLOCATED")
        event = next_event()["alerts"]
        while event["sku"] != sku:
            event = next_event()["alerts"]
    assert event["kind"] == "LOW_STOCK" and event["locationCode"] == code
    assert event["suggestedQuantity"] >= 20
    alerts = [e["node"] for e in admin(ALERTS, {"sku": sku})["alerts"]["edges"]]
    assert len(alerts) == 1, alerts  # four orders, one crossing
    eventually(lambda: [a for a in recorder.alerts if a.sku == sku])
    time.sleep(0.3)
    assert len([a for a in recorder.alerts if a.sku == sku]) == 1

    receive(admin, sku, code, 10)  # back above: the alert is resolved
    assert admin(ALERTS, {"sku": sku})["alerts"]["edges"][0]["node"]["resolvedAt"]
    admin.mutate("stockAdjust", ADJUST, {"input": {"sku": sku, "locationCode": code, "delta": -9, "reason": "damaged"}})
    alerts = [e["node"] for e in admin(ALERTS, {"sku": sku})["alerts"]["edges"]]
    assert len(alerts) == 2 and alerts[0]["resolvedAt"] is None
    eventually(lambda: len([a for a in recorder.alerts if a.sku == sku]) == 2)


def test_raising_the_reorder_point_above_available_raises_the_alert_at_once(admin, uid):
    sku, code = stocked(admin, uid, units=3)
    admin.mutate("reorderPolicySet", POLICY, {"input": {"sku": sku, "locationCode": code, "reorderPoint": 8}})
    [alert] = [e["node"] for e in admin(ALERTS, {"sku": sku})["alerts"]["edges"]]
    assert alert["suggestedQuantity"] == 5  # back to the reorder point; no sales, no minimum order
    refused = admin.mutate(
        "reorderPolicySet",
        POLICY,
        {"input": {"sku": sku, "locationCode": code, "reorderPoint": -1, "leadTimeDays": -2}},
    )
    assert {tuple(e["field"]) for e in refused["userErrors"]} == {("input", "reorderPoint"), ("input", "leadTimeDays")}


def test_the_purchase_suggestion_covers_lead_time_demand_and_the_minimum_order():
    from oms_graphql.domain.low_stock import suggest_purchase

    assert (
        suggest_purchase(
            available=2, in_transit=0, reorder_point=10, reorder_quantity=None, lead_time_days=5, daily_rate=2.0
        ).quantity
        == 18
    )
    assert (
        suggest_purchase(
            available=2, in_transit=0, reorder_point=10, reorder_quantity=50, lead_time_days=5, daily_rate=2.0
        ).quantity
        == 50
    )
    assert (
        suggest_purchase(
            available=2, in_transit=6, reorder_point=10, reorder_quantity=None, lead_time_days=None, daily_rate=0
        ).quantity
        == 2
    )


def test_the_webhook_notifier_posts_json_and_is_retried_by_its_job(admin, uid, monkeypatch):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.fakes.server import serve

    received: list[dict] = []
    attempts: list[int] = []

    async def hook(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("sku") != f"INV-{uid}":
            return JSONResponse({"ok": True})
        attempts.append(1)
        if len(attempts) == 1:
            return JSONResponse({"error": "try later"}, status_code=503)
        received.append(body)
        return JSONResponse({"ok": True})

    with serve(Starlette(routes=[Route("/alerts", hook, methods=["POST"])])) as base_url:
        monkeypatch.setenv("OMS_NOTIFY_WEBHOOK_URL", f"{base_url}/alerts")
        sku, code = stocked(admin, uid, units=2)
        admin.mutate(
            "reorderPolicySet",
            POLICY,
            {"input": {"sku": sku, "locationCode": code, "reorderPoint": 4, "reorderQuantity": 12}},
        )
        eventually(lambda: received, timeout=20)
    assert len(attempts) == 2
    assert received[0]["kind"] == "LOW_STOCK" and received[0]["locationCode"] == code
    assert received[0]["suggestedQuantity"] == 12


# --- transfers ---------------------------------------------------------------


def test_a_transfer_ships_into_transit_and_is_received_in_parts_with_the_discrepancy_recorded(admin, uid):
    sku, source = stocked(admin, uid, units=20)
    destination = f"ST-{uid}"
    add_location(admin, destination, kind="STORE")
    same = admin.mutate(
        "transferCreate",
        TRANSFER_CREATE,
        {"input": {"fromLocationCode": source, "toLocationCode": source, "lines": [{"sku": sku, "quantity": 1}]}},
    )
    assert same["transfer"] is None and same["userErrors"][0]["field"] == ["input", "toLocationCode"]
    created = admin.mutate(
        "transferCreate",
        TRANSFER_CREATE,
        {
            "input": {
                "fromLocationCode": source,
                "toLocationCode": destination,
                "lines": [{"sku": sku, "quantity": 8}],
                "reference": "restock the store",
            }
        },
    )
    transfer = created["transfer"]
    assert created["userErrors"] == [] and transfer["status"] == "DRAFT"

    shipped = admin.mutate("transferShip", TRANSFER_SHIP, {"id": transfer["id"]})["transfer"]
    assert shipped["status"] == "SHIPPED"
    assert level(admin, sku, source)["onHand"] == 12
    assert level(admin, sku, destination)["inTransit"] == 8
    again = admin.mutate("transferShip", TRANSFER_SHIP, {"id": transfer["id"]})
    assert again["userErrors"][0]["code"] == "INVALID_TRANSITION"

    over = admin.mutate(
        "transferReceive", TRANSFER_RECEIVE, {"input": {"id": transfer["id"], "lines": [{"sku": sku, "quantity": 9}]}}
    )
    assert over["userErrors"][0]["field"] == ["input", "lines", "0", "quantity"]
    part = admin.mutate(
        "transferReceive", TRANSFER_RECEIVE, {"input": {"id": transfer["id"], "lines": [{"sku": sku, "quantity": 5}]}}
    )["transfer"]
    assert part["status"] == "PARTIALLY_RECEIVED"
    assert part["lines"] == [
        {"sku": sku, "quantity": 8, "receivedQuantity": 5, "outstandingQuantity": 3, "discrepancy": None}
    ]
    assert (level(admin, sku, destination)["onHand"], level(admin, sku, destination)["inTransit"]) == (5, 3)

    closed = admin.mutate(
        "transferReceive",
        TRANSFER_RECEIVE,
        {"input": {"id": transfer["id"], "lines": [{"sku": sku, "quantity": 2}], "close": True}},
    )["transfer"]
    assert closed["status"] == "RECEIVED"
    assert closed["lines"][0]["discrepancy"] == "shipped 8, received 7: 1 missing"
    assert (level(admin, sku, destination)["onHand"], level(admin, sku, destination)["inTransit"]) == (7, 0)
    reasons = [m["reason"] for m in movements(admin, sku)]
    assert reasons.count("TRANSFER_OUT") == 2 and reasons.count("TRANSFER_IN") == 2 and "WRITE_OFF" in reasons

    listed = admin(
        """query($code: String!) { transfers(first: 5, filter: {toLocationCode: $code}) {
      totalCount edges { node { status reference lines { receivedQuantity } } } } }""",
        {"code": destination},
    )
    assert listed["transfers"]["totalCount"] == 1
    assert listed["transfers"]["edges"][0]["node"] == {
        "status": "RECEIVED",
        "reference": "restock the store",
        "lines": [{"receivedQuantity": 7}],
    }


def test_a_transfer_cannot_ship_stock_that_is_reserved_for_orders(admin, uid):
    sku, source = stocked(admin, uid, units=5)
    order = place_order(admin, [(sku, 4, "10.00")], paid=True)
    wait_for_status(admin, order["id"], "ALLOCATED")
    destination = f"ST-{uid}"
    add_location(admin, destination, kind="STORE")
    transfer = admin.mutate(
        "transferCreate",
        TRANSFER_CREATE,
        {"input": {"fromLocationCode": source, "toLocationCode": destination, "lines": [{"sku": sku, "quantity": 3}]}},
    )
    refused = admin.mutate("transferShip", TRANSFER_SHIP, {"id": transfer["transfer"]["id"]})
    assert refused["userErrors"][0]["code"] == "INSUFFICIENT_STOCK"
    assert level(admin, sku, source)["onHand"] == 5
    assert movements(admin, sku, "TRANSFER_OUT") == []


def test_transfer_suggestions_even_out_days_of_cover_without_taking_a_source_below_its_reorder_point(admin, uid):
    sku, busy = stocked(admin, uid, units=12)
    quiet = f"QUIET-{uid}"
    add_location(admin, quiet, priority=50)
    receive(admin, sku, quiet, 40)
    admin.mutate("reorderPolicySet", POLICY, {"input": {"sku": sku, "locationCode": quiet, "reorderPoint": 30}})
    # Recent sales happen at the busy location (it is preferred when allocating).
    for _ in range(5):
        wait_for_status(admin, place_order(admin, [(sku, 2, "10.00")], paid=True)["id"], "ALLOCATED")
    payload = admin.mutate("transferSuggest", SUGGEST, {"input": {"skus": [sku], "create": True}})
    assert payload["userErrors"] == []
    [move] = payload["suggestions"]
    assert (move["fromLocationCode"], move["toLocationCode"]) == (quiet, busy)
    assert move["quantity"] == 10  # the quiet store keeps its reorder point of 30
    assert move["toCoverDaysAfter"] > move["toCoverDaysBefore"]
    assert quiet in move["explanation"] and "reorder point 30" in move["explanation"]
    assert payload["transfers"] == [{"status": "DRAFT", "lines": [{"sku": sku, "quantity": 10}]}]


def test_the_move_plan_gives_to_the_location_with_the_least_cover():
    from oms_graphql.domain.transfers import Position, plan_moves

    moves = plan_moves(
        "A",
        [
            Position("EAST", available=100, in_transit=0, reorder_point=10, daily_sales=1.0),
            Position("WEST", available=10, in_transit=0, reorder_point=0, daily_sales=4.0),
            Position("IDLE", available=0, in_transit=0, reorder_point=0, daily_sales=0.0),
        ],
    )
    assert [(m.from_code, m.to_code, m.quantity) for m in moves] == [("EAST", "WEST", 78)]
    assert plan_moves("A", [Position("X", 5, 0, 0, 0.0), Position("Y", 0, 0, 0, 0.0)]) == []


# --- live stock and the stock-change hook ------------------------------------


def test_stock_events_stream_every_movement_of_one_sku_and_location(admin, uid, server):
    sku, code = stocked(admin, uid, units=0)
    query = """subscription($sku: String, $code: String) { stockEvents(sku: $sku, locationCode: $code) {
      sku locationCode reason onHandDelta onHand reserved available } }"""
    with subscription(server, admin.token, query, {"sku": sku, "code": code}) as next_event:
        receive(admin, sku, code, 3)
        admin.mutate(
            "stockAdjust", ADJUST, {"input": {"sku": sku, "locationCode": code, "delta": -1, "reason": "dropped"}}
        )
        first, second = next_event()["stockEvents"], next_event()["stockEvents"]
    assert first == {
        "sku": sku,
        "locationCode": code,
        "reason": "RECEIPT",
        "onHandDelta": 3,
        "onHand": 3,
        "reserved": 0,
        "available": 3,
    }
    assert (second["reason"], second["onHand"]) == ("ADJUST", 2)


def test_stock_changes_reach_channel_plugins_once_per_burst(admin, uid, database_url, recorder, monkeypatch):
    from oms_graphql.jobs import inventory as inventory_jobs

    monkeypatch.setattr(inventory_jobs, "DEBOUNCE_SECONDS", 0.5)
    channel = f"shop-{uid}"
    add_channel(database_url, channel, "testshop", share=50, buffer=1)
    try:
        sku, code = stocked(admin, uid, units=0)
        for _ in range(5):
            receive(admin, sku, code, 2)
        calls = eventually(lambda: [c for c in recorder.stock_changes if c["sku"] == sku and c["channel"] == channel])
        time.sleep(1.0)
        calls = [c for c in recorder.stock_changes if c["sku"] == sku and c["channel"] == channel]
        assert 1 <= len(calls) <= 2, calls  # five receipts, one (at most two) pushes
        assert calls[-1]["quantity"] == 4  # floor(10 × 50 / 100) − 1
        assert calls[-1]["locations"] == {code: 10}
    finally:
        set_channel_active(database_url, channel, False)


# --- shipping, returns and write-offs (called by the delivery and returns domains) ---


def test_shipping_moves_reserved_out_and_shipping_more_than_reserved_is_refused(admin, uid, database_url):
    from oms_graphql.db.engine import Database
    from oms_graphql.domain import inventory
    from oms_graphql.domain.errors import DomainError
    from oms_graphql.domain.inventory import MovementReason, Reference

    sku, code = stocked(admin, uid, units=6)
    order = place_order(admin, [(sku, 3, "10.00")], paid=True)
    wait_for_status(admin, order["id"], "ALLOCATED")

    async def act() -> tuple[list, Any]:
        database = Database(database_url)
        outcomes: list = []
        try:
            for quantity in (4, 2):
                try:
                    async with database.session() as session, session.begin():
                        await inventory.ship_reserved(
                            session,
                            sku=sku,
                            location_code=code,
                            quantity=quantity,
                            reference=Reference("SHIPMENT", "1", "parcel 1", "test"),
                        )
                    outcomes.append("shipped")
                except DomainError as error:
                    outcomes.append((error.code, error.field))
            async with database.session() as session, session.begin():
                await inventory.restock(
                    session,
                    sku=sku,
                    location_code=code,
                    quantity=1,
                    reason=MovementReason.RETURN,
                    reference=Reference("RETURN", "1", "rma 1"),
                )
                await inventory.restock(
                    session,
                    sku=sku,
                    location_code=code,
                    quantity=1,
                    reason=MovementReason.EXCHANGE,
                    reference=Reference("RETURN", "2", "rma 2"),
                )
                await inventory.write_off(
                    session,
                    sku=sku,
                    location_code=code,
                    quantity=1,
                    reference=Reference("RETURN", "3", "arrived broken"),
                )
        finally:
            await database.dispose()
        return outcomes, None

    outcomes, _ = run_async(act())
    assert outcomes == [("INSUFFICIENT_STOCK", ("quantity",)), "shipped"]
    assert level(admin, sku, code)["onHand"] == 6 - 2 + 1 + 1 - 1
    assert level(admin, sku, code)["reserved"] == 1
    reasons = [m["reason"] for m in movements(admin, sku)]
    assert reasons[:4] == ["WRITE_OFF", "EXCHANGE", "RETURN", "SHIP"]
    assert movements(admin, sku, "SHIP")[0]["quantity"] == -2


# --- the ledger adds up the way a client reads it ------------------------------

LEDGER_PAGE = """query($sku: String!, $code: String!, $after: String) {
  stockMovements(first: 100, after: $after, filter: {sku: $sku, locationCode: $code}) {
    pageInfo { hasNextPage endCursor } edges { node { reason quantity inTransitDelta } } } }"""
RESERVATION_REASONS = {"RESERVE", "RELEASE"}
CANCEL = """mutation($id: ID!) { orderCancel(input: {id: $id, reason: "customer asked"}) {
  order { status } userErrors { field message code } } }"""


def ledger_figures(client, sku: str, code: str) -> dict[str, int]:
    """On hand, reserved and in transit summed from stockMovements as API.md tells a client to.

    quantity is the signed change of on hand, or of reserved for RESERVE/RELEASE;
    inTransitDelta is the change of in transit.
    """
    figures = {"onHand": 0, "reserved": 0, "inTransit": 0}
    after = None
    while True:
        page = client(LEDGER_PAGE, {"sku": sku, "code": code, "after": after})["stockMovements"]
        for edge in page["edges"]:
            movement = edge["node"]
            figures["reserved" if movement["reason"] in RESERVATION_REASONS else "onHand"] += movement["quantity"]
            figures["inTransit"] += movement["inTransitDelta"]
        if not page["pageInfo"]["hasNextPage"]:
            return figures
        after = page["pageInfo"]["endCursor"]


def assert_ledger_adds_up(client, touched: set[tuple[str, str]]) -> None:
    """For every (SKU, location) a scenario touched, the ledger as a client sums it equals the level."""
    differences = {}
    for sku, code in sorted(touched):
        stock = level(client, sku, code)
        expected = {figure: stock[figure] for figure in ("onHand", "reserved", "inTransit")}
        summed = ledger_figures(client, sku, code)
        if summed != expected:
            differences[(sku, code)] = {"level": expected, "ledger": summed}
    assert differences == {}


def test_the_ledger_adds_up_to_every_level_through_transfers_orders_shipments_adjustments_and_counts(
    admin, uid, database_url
):
    from tests.channel_support import dispatch_order

    sku, source = stocked(admin, uid, units=20)
    other = f"INV2-{uid}"
    add_product(admin, other)
    receive(admin, other, source, 6)
    destination = f"ST-{uid}"
    add_location(admin, destination, kind="STORE")
    touched = {(sku, source), (sku, destination), (other, source), (other, destination)}

    shipped_order = place_order(admin, [(sku, 3, "10.00"), (other, 1, "10.00")], paid=True)
    cancelled_order = place_order(admin, [(sku, 2, "10.00")], paid=True)
    wait_for_status(admin, shipped_order["id"], "ALLOCATED")
    wait_for_status(admin, cancelled_order["id"], "ALLOCATED")
    assert admin.mutate("orderCancel", CANCEL, {"id": cancelled_order["id"]})["userErrors"] == []
    admin.mutate("stockAdjust", ADJUST, {"input": {"sku": sku, "locationCode": source, "delta": -1, "reason": "torn"}})
    admin.mutate("stockCount", COUNT, {"input": {"sku": sku, "locationCode": source, "countedQuantity": 18}})

    transfer = admin.mutate(
        "transferCreate",
        TRANSFER_CREATE,
        {
            "input": {
                "fromLocationCode": source,
                "toLocationCode": destination,
                "lines": [{"sku": sku, "quantity": 8}, {"sku": other, "quantity": 2}],
            }
        },
    )["transfer"]
    assert admin.mutate("transferShip", TRANSFER_SHIP, {"id": transfer["id"]})["userErrors"] == []
    part = {"id": transfer["id"], "lines": [{"sku": sku, "quantity": 5}]}
    assert admin.mutate("transferReceive", TRANSFER_RECEIVE, {"input": part})["userErrors"] == []
    rest = {"id": transfer["id"], "lines": [{"sku": sku, "quantity": 2}, {"sku": other, "quantity": 1}], "close": True}
    closed = admin.mutate("transferReceive", TRANSFER_RECEIVE, {"input": rest})["transfer"]
    assert closed["status"] == "RECEIVED"
    receive(admin, sku, destination, 4)
    admin.mutate("stockCount", COUNT, {"input": {"sku": sku, "locationCode": destination, "countedQuantity": 10}})
    assert dispatch_order(database_url, shipped_order["number"], "SF", f"SF{uid}") == 1

    assert (level(admin, sku, source)["onHand"], level(admin, sku, source)["reserved"]) == (7, 0)
    assert (level(admin, sku, destination)["onHand"], level(admin, sku, destination)["inTransit"]) == (10, 0)
    assert (level(admin, other, destination)["onHand"], level(admin, other, destination)["inTransit"]) == (1, 0)
    assert_ledger_adds_up(admin, touched)


def test_the_ledger_adds_up_while_a_transfer_is_still_in_transit_and_orders_are_reserved(admin, uid):
    sku, source = stocked(admin, uid, units=10)
    destination = f"ST-{uid}"
    add_location(admin, destination, kind="STORE")
    order = place_order(admin, [(sku, 4, "10.00")], paid=True)
    wait_for_status(admin, order["id"], "ALLOCATED")
    transfer = admin.mutate(
        "transferCreate",
        TRANSFER_CREATE,
        {"input": {"fromLocationCode": source, "toLocationCode": destination, "lines": [{"sku": sku, "quantity": 6}]}},
    )["transfer"]
    admin.mutate("transferShip", TRANSFER_SHIP, {"id": transfer["id"]})
    admin.mutate(
        "transferReceive", TRANSFER_RECEIVE, {"input": {"id": transfer["id"], "lines": [{"sku": sku, "quantity": 1}]}}
    )

    assert (level(admin, sku, destination)["onHand"], level(admin, sku, destination)["inTransit"]) == (1, 5)
    assert level(admin, sku, source)["reserved"] == 4
    assert_ledger_adds_up(admin, {(sku, source), (sku, destination)})


def test_a_transfer_shows_its_in_transit_units_in_their_own_field_not_in_quantity(admin, uid):
    sku, source = stocked(admin, uid, units=5)
    destination = f"ST-{uid}"
    add_location(admin, destination, kind="STORE")
    transfer = admin.mutate(
        "transferCreate",
        TRANSFER_CREATE,
        {"input": {"fromLocationCode": source, "toLocationCode": destination, "lines": [{"sku": sku, "quantity": 3}]}},
    )["transfer"]
    admin.mutate("transferShip", TRANSFER_SHIP, {"id": transfer["id"]})
    admin.mutate(
        "transferReceive",
        TRANSFER_RECEIVE,
        {"input": {"id": transfer["id"], "lines": [{"sku": sku, "quantity": 2}], "close": True}},
    )
    rows = admin(
        """query($sku: String!, $code: String!) { stockMovements(first: 10, filter: {sku: $sku, locationCode: $code}) {
      edges { node { reason quantity onHandDelta reservedDelta inTransitDelta } } } }""",
        {"sku": sku, "code": destination},
    )["stockMovements"]["edges"]
    assert [edge["node"] for edge in rows] == [  # newest first
        {"reason": "WRITE_OFF", "quantity": 0, "onHandDelta": 0, "reservedDelta": 0, "inTransitDelta": -1},
        {"reason": "TRANSFER_IN", "quantity": 2, "onHandDelta": 2, "reservedDelta": 0, "inTransitDelta": -2},
        {"reason": "TRANSFER_OUT", "quantity": 0, "onHandDelta": 0, "reservedDelta": 0, "inTransitDelta": 3},
    ]


def test_stock_events_add_up_to_the_level_the_way_the_ledger_does(admin, uid, server, database_url):
    from tests.channel_support import dispatch_order

    sku, source = stocked(admin, uid, units=0)
    destination = f"ST-{uid}"
    add_location(admin, destination, kind="STORE")
    query = """subscription($sku: String) { stockEvents(sku: $sku) {
      locationCode reason quantity onHandDelta reservedDelta inTransitDelta onHand reserved inTransit } }"""
    with subscription(server, admin.token, query, {"sku": sku}) as next_event:
        receive(admin, sku, source, 9)
        order = place_order(admin, [(sku, 2, "10.00")], paid=True)
        wait_for_status(admin, order["id"], "ALLOCATED")
        transfer = admin.mutate(
            "transferCreate",
            TRANSFER_CREATE,
            {
                "input": {
                    "fromLocationCode": source,
                    "toLocationCode": destination,
                    "lines": [{"sku": sku, "quantity": 4}],
                }
            },
        )["transfer"]
        admin.mutate("transferShip", TRANSFER_SHIP, {"id": transfer["id"]})
        dispatch_order(database_url, order["number"], "SF", f"SF{uid}")
        movement_count = admin(MOVEMENTS, {"sku": sku})["stockMovements"]["totalCount"]
        events = [next_event()["stockEvents"] for _ in range(movement_count)]

    summed: dict[str, dict[str, int]] = {}
    for event in events:
        figures = summed.setdefault(event["locationCode"], {"onHand": 0, "reserved": 0, "inTransit": 0})
        figures["reserved" if event["reason"] in RESERVATION_REASONS else "onHand"] += event["quantity"]
        figures["inTransit"] += event["inTransitDelta"]
        # Each event's figures are the level right after it.
        assert {name: event[name] for name in figures} == figures, event
    for code, figures in summed.items():
        stock = level(admin, sku, code)
        assert figures == {name: stock[name] for name in figures}
    assert summed[source] == {"onHand": 3, "reserved": 0, "inTransit": 0}
    assert summed[destination] == {"onHand": 0, "reserved": 0, "inTransit": 4}
