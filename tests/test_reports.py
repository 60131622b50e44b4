"""Reports through GraphQL on a small fixed data set, every figure worked out by hand.

The orders are placed in March 2020, a window no other test places orders in, so the
report over that window holds exactly these orders (report time zone: Asia/Shanghai,
UTC+8). The aggregates follow each change through the outbox job, hence ``eventually``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support import (
    GraphQLClient,
    add_location,
    add_product,
    eventually,
    place_order,
    receive,
    run_async,
    wait_for_status,
)

CARRIER = """mutation($input: CarrierCreateInput!) { carrierCreate(input: $input) { userErrors { message } } }"""
PAY = """mutation($id: ID!, $at: DateTime!) { orderConfirmPayment(input: {id: $id, paidAt: $at}) {
  userErrors { field message } } }"""
CANCEL = "mutation($id: ID!) { orderCancel(input: {id: $id}) { userErrors { field message } } }"
FULFILLMENT = "query($id: ID!) { order(id: $id) { status fulfillmentOrders { id } } }"
SHIP = """mutation($fo: ID!, $carrier: String!) { shipmentCreate(input: {fulfillmentOrderId: $fo, carrierCode: $carrier,
  serviceCode: "SAME_DAY"}) { shipment { id } userErrors { field message code } } }"""
DISPATCH = "mutation($id: ID!) { shipmentDispatch(input: {id: $id}) { userErrors { message } } }"
DELIVER = """mutation($id: ID!, $at: DateTime!) { shipmentMarkDelivered(input: {id: $id, deliveredAt: $at}) {
  userErrors { message } } }"""
RETURN_REQUEST = """mutation($input: ReturnRequestInput!) { returnRequest(input: $input) { return { id }
  userErrors { message } } }"""
RETURN_APPROVE = "mutation($id: ID!) { returnApprove(input: {id: $id}) { userErrors { message } } }"
RETURN_RECEIVE = "mutation($input: ReturnReceiveInput!) { returnReceive(input: $input) { userErrors { message } } }"
RETURN_REFUND = "mutation($id: ID!) { returnRefund(input: {id: $id}) { userErrors { message } } }"

SALES = """query($from: DateTime!, $to: DateTime!, $interval: ReportInterval!, $groupBy: SalesGroupBy,
  $filter: ReportFilter) { reports { salesTrend(from: $from, to: $to, interval: $interval, groupBy: $groupBy,
  filter: $filter) { period key units orders revenue { amount currency } averageOrderValue { amount } } } }"""
KPIS = """query($from: DateTime!, $to: DateTime!) { reports { fulfillmentKpis(from: $from, to: $to) {
  key orders completionRate cancellationRate returnRate lateShipmentRate splitShipmentRate
  hoursToShip { mean p50 p90 } hoursToDeliver { mean p50 p90 } } } }"""

# Shanghai midnights: 2020-03-02 00:00 +08:00 is 2020-03-01 16:00 UTC.
WINDOW = {"from": "2020-03-01T16:00:00Z", "to": "2020-03-15T16:00:00Z"}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ship_and_deliver(admin: GraphQLClient, order_id: str, carrier: str, delivered_at: datetime) -> str:
    wait_for_status(admin, order_id, "ALLOCATED")
    [fo] = admin(FULFILLMENT, {"id": order_id})["order"]["fulfillmentOrders"]
    created = admin.mutate("shipmentCreate", SHIP, {"fo": fo["id"], "carrier": carrier})
    assert created["userErrors"] == [], created
    shipment = created["shipment"]["id"]
    assert admin.mutate("shipmentDispatch", DISPATCH, {"id": shipment})["userErrors"] == []
    wait_for_status(admin, order_id, "SHIPPED")
    assert admin.mutate("shipmentMarkDelivered", DELIVER, {"id": shipment, "at": iso(delivered_at)})["userErrors"] == []
    return shipment


def return_and_refund_one(admin: GraphQLClient, order_id: str, condition: str) -> None:
    """Line 1 of the order: one unit returned, received in ``condition`` and refunded."""
    requested = admin.mutate(
        "returnRequest",
        RETURN_REQUEST,
        {"input": {"orderId": order_id, "lines": [{"lineNo": 1, "quantity": 1, "reason": "SIZE_FIT"}]}},
    )
    assert requested["userErrors"] == [], requested
    return_id = requested["return"]["id"]
    assert admin.mutate("returnApprove", RETURN_APPROVE, {"id": return_id})["userErrors"] == []
    received = admin.mutate(
        "returnReceive",
        RETURN_RECEIVE,
        {"input": {"id": return_id, "lines": [{"lineNo": 1, "quantity": 1, "condition": condition}]}},
    )
    assert received["userErrors"] == [], received
    assert admin.mutate("returnRefund", RETURN_REFUND, {"id": return_id})["userErrors"] == []


@pytest.fixture(scope="module")
def march(admin: GraphQLClient) -> dict[str, str]:
    """Four orders in the ISO week of Monday 2020-03-02 (and the next), CNY:

    - O1 placed 03-02 09:00 Shanghai: 2 × A at 10.00 + 1 × B at 25.00, shipping 5.00, total 50.00;
      paid 10 h before it is dispatched, delivered 30 h after payment.
    - O2 placed 03-03 20:00 UTC = 03-04 04:00 Shanghai (so it is a 03-04 sale): 1 × A, total 10.00;
      paid 20 h before dispatch, delivered 40 h after payment, then returned and refunded 10.00
      (COMPLETED: every shipped unit came back).
    - O3 placed 03-05: 3 × A, total 30.00, paid, then cancelled before shipping.
    - O4 placed 03-09: 2 × B, total 50.00, never paid.
    """
    tag = datetime.now(UTC).strftime("%H%M%S%f")
    where = f"RP-WH-{tag}"
    add_location(admin, where, priority=1000, autoDispatch=False)
    a, b = f"RP-A-{tag}", f"RP-B-{tag}"
    add_product(admin, a, "10.00")
    add_product(admin, b, "25.00")
    receive(admin, a, where, 20)
    receive(admin, b, where, 20)
    carrier = f"fleet-rp-{tag}"
    assert (
        admin(CARRIER, {"input": {"code": carrier, "name": "Own fleet", "kind": "fleet", "settings": {}}})[
            "carrierCreate"
        ]["userErrors"]
        == []
    )
    now = datetime.now(UTC)

    o1 = place_order(admin, [(a, 2, "10.00"), (b, 1, "25.00")], shippingFee="5.00", placedAt="2020-03-02T01:00:00Z")
    paid1 = now - timedelta(hours=10)
    assert admin.mutate("orderConfirmPayment", PAY, {"id": o1["id"], "at": iso(paid1)})["userErrors"] == []
    ship_and_deliver(admin, o1["id"], carrier, paid1 + timedelta(hours=30))

    o2 = place_order(admin, [(a, 1, "10.00")], placedAt="2020-03-03T20:00:00Z")
    paid2 = now - timedelta(hours=20)
    assert admin.mutate("orderConfirmPayment", PAY, {"id": o2["id"], "at": iso(paid2)})["userErrors"] == []
    ship_and_deliver(admin, o2["id"], carrier, paid2 + timedelta(hours=40))
    return_and_refund_one(admin, o2["id"], "RESELLABLE")
    wait_for_status(admin, o2["id"], "COMPLETED")

    o3 = place_order(admin, [(a, 3, "10.00")], paid=True, placedAt="2020-03-05T03:00:00Z")
    wait_for_status(admin, o3["id"], "ALLOCATED")
    assert admin.mutate("orderCancel", CANCEL, {"id": o3["id"]})["userErrors"] == []

    place_order(admin, [(b, 2, "25.00")], placedAt="2020-03-09T02:00:00Z")
    return {"a": a, "b": b, "where": where}


def sales(admin: GraphQLClient, interval: str, group_by: str | None = None, **filter_: list[str]) -> list[dict]:
    variables = {**WINDOW, "interval": interval, "groupBy": group_by, "filter": filter_ or None}
    return admin(SALES, variables)["reports"]["salesTrend"]


def row(period: str, key: str | None, units: int, orders: int, revenue: str, aov: str) -> dict:
    return {
        "period": period,
        "key": key,
        "units": units,
        "orders": orders,
        "revenue": {"amount": revenue, "currency": "CNY"},
        "averageOrderValue": {"amount": aov},
    }


def test_sales_trend_counts_paid_orders_by_shanghai_day_net_of_refunds(admin, march):
    # Per day: O1 on 03-02 (3 units, 50.00); O2 on 03-04 in Shanghai though 03-03 in UTC,
    # its one unit returned and its 10.00 refunded: 0 units, 0.00, still one order.
    # O3 (cancelled) and O4 (unpaid) are not sales.
    expected_days = [
        row("2020-03-02", None, 3, 1, "50.00", "50.00"),
        row("2020-03-04", None, 0, 1, "0.00", "0.00"),
    ]
    eventually(lambda: sales(admin, "DAY") == expected_days)
    # The ISO week of Monday 03-02: 2 orders, 3 units, 50.00; AOV 50.00 ÷ 2 = 25.00.
    assert sales(admin, "WEEK") == [row("2020-03-02", None, 3, 2, "50.00", "25.00")]
    assert sales(admin, "MONTH") == [row("2020-03-01", None, 3, 2, "50.00", "25.00")]


def test_sales_trend_per_sku_uses_line_values(admin, march):
    a, b = march["a"], march["b"]
    # A: O1's line 2 × 10.00 = 20.00 and O2's line, returned: 0 units, 0.00 → 2 orders, 2 units,
    # 20.00, AOV 10.00. B: O1's line 25.00 → 1 order, 1 unit. Shipping is in no line.
    expected = [row("2020-03-02", a, 2, 2, "20.00", "10.00"), row("2020-03-02", b, 1, 1, "25.00", "25.00")]
    eventually(lambda: sales(admin, "WEEK", "SKU", skus=[a, b]) == expected)
    assert sales(admin, "WEEK", "SKU", skus=[b]) == expected[1:]


def test_fulfillment_kpis_follow_the_definitions(admin, march):
    # All orders 4 (O1–O4), not cancelled 3 (O1, O2, O4).
    # completion = DELIVERED/COMPLETED (O1, O2) ÷ 3 = 2/3; cancellation = O3 ÷ 4 = 1/4.
    # return = 1 unit back ÷ 4 units shipped (O1 3, O2 1) = 1/4; no order has a promisedShipBy: 0 late
    # of 2 shipments; split = 0 of 2 orders with a shipment.
    # hours to ship ≈ 10 and 20 (paid that long before dispatch): mean 15, p50 15, p90 10 + 0.9 × 10 = 19.
    # hours to deliver 30 and 40: mean 35, p50 35, p90 30 + 0.9 × 10 = 39.
    def kpis() -> dict | None:
        [only] = admin(KPIS, WINDOW)["reports"]["fulfillmentKpis"] or [None]
        return only if only and only["completionRate"] and only["returnRate"] else None

    got = eventually(lambda: (k := kpis()) and k["cancellationRate"] == 0.25 and k)
    assert (got["key"], got["orders"]) == (None, 3)
    assert got["completionRate"] == pytest.approx(2 / 3)
    assert got["returnRate"] == 0.25
    assert (got["lateShipmentRate"], got["splitShipmentRate"]) == (0.0, 0.0)
    ship = got["hoursToShip"]
    assert ship == {
        "mean": pytest.approx(15, abs=0.1),
        "p50": pytest.approx(15, abs=0.1),
        "p90": pytest.approx(19, abs=0.1),
    }
    assert got["hoursToDeliver"] == {"mean": 35.0, "p50": 35.0, "p90": pytest.approx(39)}


def test_a_rate_over_nothing_is_null_and_bad_windows_are_refused(admin, march):
    empty = admin(KPIS, {"from": "2019-01-01T00:00:00Z", "to": "2019-01-02T00:00:00Z"})["reports"]["fulfillmentKpis"]
    assert empty == []
    body = admin.raw(KPIS, {"from": "2020-03-05T00:00:00Z", "to": "2020-03-01T00:00:00Z"})
    [error] = body["errors"]
    assert "to must be after from" in error["message"] and error["extensions"]["code"]


def test_reports_are_for_staff(admin, viewer, anonymous, march):
    assert viewer(KPIS, WINDOW)["reports"]["fulfillmentKpis"]
    body = anonymous.raw(KPIS, WINDOW)
    assert body["errors"][0]["extensions"]["code"] in ("UNAUTHENTICATED", "FORBIDDEN")


def test_every_report_as_csv_over_http_with_the_same_permission(admin, anonymous, march):
    eventually(lambda: len(sales(admin, "DAY")) == 2)
    params = {**WINDOW, "interval": "WEEK", "groupBy": "SKU", "skus": f"{march['a']},{march['b']}"}
    response = admin.http.get("/reports/salesTrend.csv", params=params)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0].split(",")[:6] == ["period", "key", "units", "orders", "revenue.amount", "revenue.currency"]
    assert lines[1].startswith(f"2020-03-02,{march['a']},2,2,20.00,CNY,10.00")
    assert lines[2].startswith(f"2020-03-02,{march['b']},1,1,25.00,CNY,25.00")
    kpis = admin.http.get("/reports/fulfillmentKpis.csv", params=WINDOW)
    header, values = kpis.text.splitlines()
    assert dict(zip(header.split(","), values.split(","), strict=True))["cancellationRate"] == "0.25"
    assert anonymous.http.get("/reports/fulfillmentKpis.csv", params=WINDOW).status_code in (401, 403)
    missing = admin.http.get("/reports/fulfillmentKpis.csv", params={"to": WINDOW["to"]})
    assert missing.status_code == 400 and "from" in missing.json()["error"]
    assert admin.http.get("/reports/nothing.csv", params=WINDOW).status_code == 404


def test_rebuild_gives_the_same_figures_and_the_cli_prints_the_same_csv(admin, database_url, march):
    from tests.test_cli import oms

    expected = [row("2020-03-02", None, 3, 2, "50.00", "25.00")]
    eventually(lambda: sales(admin, "WEEK") == expected)
    rebuilt = oms("report", "rebuild", database_url=database_url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Rebuilt the report tables from" in rebuilt.stdout
    assert sales(admin, "WEEK") == expected
    printed = oms(
        "report",
        "salesTrend",
        "--from",
        WINDOW["from"],
        "--to",
        WINDOW["to"],
        "--interval",
        "week",
        "--csv",
        database_url=database_url,
    )
    assert printed.returncode == 0, printed.stderr
    over_http = admin.http.get("/reports/salesTrend.csv", params={**WINDOW, "interval": "WEEK"}).text
    assert printed.stdout == over_http
    assert printed.stdout.splitlines()[1].startswith("2020-03-02,,3,2,50.00,CNY,25.00")


FORECAST = """query($from: DateTime!, $to: DateTime!, $skus: [String!]) { reports {
  demandForecast(from: $from, to: $to, skus: $skus, horizonDays: 7, serviceLevel: 0.9) {
  sku method mase points { date quantity lower upper }
  reorder { locationCode leadTimeDays demand position quantity } } } }"""
INVENTORY = """query($from: DateTime!, $to: DateTime!, $skus: [String!]) { reports {
  inventoryKpis(from: $from, to: $to, filter: {skus: $skus}) {
  sku locationCode onHand unitsShipped turnover daysOfCover stockOutDays stockOutRate deadStock } } }"""


def test_a_sparse_history_is_forecast_by_croston_with_a_reorder_per_location(admin, march):
    a = march["a"]
    eventually(lambda: len(sales(admin, "DAY")) == 2)
    [got] = admin(FORECAST, {**WINDOW, "skus": [a]})["reports"]["demandForecast"]
    # A sold 2 on 03-02 and 0 (net of the return) on 03-04 in a 14-day window: too short and sparse
    # for Holt-Winters. Croston/SBA: the first demand (2, after 1 day) sets size 2 and interval 1,
    # so 0.95 × 2 / 1 = 1.9 a day; the window ends 03-16, so the points are 03-16 … 03-22.
    assert got["method"] == "CROSTON_SBA" and got["mase"] is None
    assert [p["date"] for p in got["points"]] == [f"2020-03-{day}" for day in range(16, 23)]
    assert [p["quantity"] for p in got["points"]] == pytest.approx([1.9] * 7)
    [reorder] = got["reorder"]
    # Lead time 7 (the level has none): demand 7 × 1.9 = 13.3; position 20 received − 2 − 1 + 1
    # returned (resellable) = 18 on hand, nothing reserved.
    assert reorder["locationCode"] == march["where"] and reorder["leadTimeDays"] == 7
    assert reorder["demand"] == pytest.approx(13.3) and reorder["position"] == 18


def test_inventory_kpis_come_from_the_ledger(admin, march):
    # B's stock moved today D (Shanghai): 20 received, 1 shipped (O1). Over the days D−1, D, D+1
    # the closing on hand is 0, 19, 19: stockOutDays 1, rate 1/3; turnover = 1 shipped ÷ average
    # on hand (0 + 19 + 19)/3 = 3/38; days of cover = 19 ÷ (1/3 a day) = 57.
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    today = datetime.now(shanghai).replace(hour=0, minute=0, second=0, microsecond=0)
    days = {"from": iso(today - timedelta(days=1)), "to": iso(today + timedelta(days=2))}
    [b] = admin(INVENTORY, {**days, "skus": [march["b"]]})["reports"]["inventoryKpis"]
    assert b == {
        "sku": march["b"],
        "locationCode": march["where"],
        "onHand": 19,
        "unitsShipped": 1,
        "turnover": pytest.approx(3 / 38),
        "daysOfCover": pytest.approx(57),
        "stockOutDays": 1,
        "stockOutRate": pytest.approx(1 / 3),
        "deadStock": False,
    }


SEGMENTS = """query($from: DateTime!, $to: DateTime!) { reports { customerSegments(from: $from, to: $to) {
  name customers revenue { amount currency } repeatRate } } }"""
COHORTS = """query($from: DateTime!, $to: DateTime!) { reports { customerCohorts(from: $from, to: $to) {
  month customers retention } } }"""
APRIL = {"from": "2020-03-31T16:00:00Z", "to": "2020-04-30T16:00:00Z"}  # Shanghai April


def test_rfm_segments_repeat_rate_and_cohorts(admin):
    tag = datetime.now(UTC).strftime("%M%S%f")
    sku = f"RP-RFM-{tag}"
    add_product(admin, sku, "10.00")
    # (customer, Shanghai day, amount): the April window ends 04-30.
    orders = {
        "C1": [("04-28", "10.00"), ("04-29", "10.00"), ("04-30", "10.00")],  # recency 0, 3 orders, 30.00
        "C2": [("04-29", "100.00")],  # recency 1, 1 order, 100.00
        "C3": [("04-02", "20.00"), ("04-03", "20.00"), ("05-15", "20.00")],  # in April: recency 27, 2, 40.00
        "C4": [("04-01", "10.00"), ("04-02", "10.00"), ("04-05", "10.00")],  # recency 25, 3 orders, 30.00
        "C5": [("04-10", "5.00")],  # recency 20, 1 order, 5.00
    }
    for number, (name, placed) in enumerate(orders.items()):
        customer = {"name": f"RFM {name}", "phone": f"+86 139{tag[-6:]}{number:02d}"}
        for day, price in placed:
            place_order(admin, [(sku, 1, price)], paid=True, customer=customer, placedAt=f"2020-{day}T04:00:00Z")
    # Recency scores (quintiles of −days, n = 5, the i-th smallest scores 1 + i): C3 1, C4 2, C5 3, C2 4,
    # C1 5. Frequency 3, 1, 2, 3, 1 sorted 1, 1, 2, 3, 3: C2 and C5 1, C3 3, C1 and C4 4.
    # C1 R5 F4 → CHAMPIONS; C2 R4 one order → NEW; C3 R1 F3 and C4 R2 F4 → AT_RISK; C5 R3 → POTENTIAL.
    expected = [
        {"name": "CHAMPIONS", "customers": 1, "revenue": [{"amount": "30.00", "currency": "CNY"}], "repeatRate": 1.0},
        {"name": "NEW", "customers": 1, "revenue": [{"amount": "100.00", "currency": "CNY"}], "repeatRate": 0.0},
        {"name": "POTENTIAL", "customers": 1, "revenue": [{"amount": "5.00", "currency": "CNY"}], "repeatRate": 0.0},
        {"name": "AT_RISK", "customers": 2, "revenue": [{"amount": "70.00", "currency": "CNY"}], "repeatRate": 1.0},
    ]
    eventually(lambda: admin(SEGMENTS, APRIL)["reports"]["customerSegments"] == expected)
    # All five first ordered in April; in May only C3 came back: retention [1, 1/5].
    april_and_may = {"from": APRIL["from"], "to": "2020-05-31T16:00:00Z"}
    cohorts = eventually(lambda: (c := admin(COHORTS, april_and_may)["reports"]["customerCohorts"]) and c)
    assert cohorts == [{"month": "2020-04-01", "customers": 5, "retention": [1.0, 0.2]}]


TOP = """query($from: DateTime!, $to: DateTime!, $by: ProductMeasure!, $filter: ReportFilter) { reports {
  topProducts(from: $from, to: $to, by: $by, limit: 3, minUnits: 10, filter: $filter) { previousFrom
  top { sku units orders revenue { amount } previousUnits previousRevenue { amount } figure previousFigure change }
  rising { sku figure change } } } }"""
JUNE_WEEK = {"from": "2019-06-07T16:00:00Z", "to": "2019-06-14T16:00:00Z"}  # Shanghai 06-08 … 06-14


def test_top_and_rising_products_against_the_week_before(admin, database_url):
    from tests.test_cli import oms

    tag = datetime.now(UTC).strftime("%M%S%f")
    x, y, z, w = (f"RP-TOP-{name}-{tag}" for name in "XYZW")
    for sku in (x, y, z, w):
        add_product(admin, sku, "1.00")
    # (SKU, Shanghai day, units, unit price), one paid order each; the window is 06-08 … 06-14 and
    # the previous period the 7 days before it, 06-01 … 06-07.
    placed = [
        (x, "06-02", 10, "1.00"),
        (x, "06-09", 12, "1.00"),  # 10 → 12 units: +20%
        (y, "06-03", 1, "5.00"),
        (y, "06-10", 3, "5.00"),  # 1 → 3: +200%, but 3 < minUnits 10
        (z, "06-04", 5, "2.00"),
        (z, "06-11", 10, "2.00"),
        (z, "06-14", 5, "2.00"),  # 5 → 15: +200%
        (w, "06-12", 20, "0.50"),  # new: nothing before, so never rising
        (w, "06-15", 99, "0.50"),  # after the window: not counted
    ]
    for sku, day, units, price in placed:
        place_order(admin, [(sku, units, price)], paid=True, placedAt=f"2019-{day}T04:00:00Z")
    mine = {"skus": [x, y, z, w]}

    def top(by: str) -> dict:
        return admin(TOP, {**JUNE_WEEK, "by": by, "filter": mine})["reports"]["topProducts"]

    # By units: W 20, Z 15, X 12 (Y's 3 is fourth, past limit 3). Rising: Z (15 − 5) ÷ 5 = 2.0,
    # then X (12 − 10) ÷ 10 = 0.2; Y (+200%) sold under 10 units, W nothing before.
    def refreshed() -> dict | None:
        found = top("UNITS")
        return found if [p["units"] for p in found["top"]] == [20, 15, 12] else None

    found = eventually(refreshed)
    assert found["previousFrom"] == "2019-06-01"
    assert found["top"] == [
        {
            "sku": w,
            "units": 20,
            "orders": 1,
            "revenue": [{"amount": "10.00"}],
            "previousUnits": 0,
            "previousRevenue": [],
            "figure": 20.0,
            "previousFigure": 0.0,
            "change": None,
        },
        {
            "sku": z,
            "units": 15,
            "orders": 2,
            "revenue": [{"amount": "30.00"}],
            "previousUnits": 5,
            "previousRevenue": [{"amount": "10.00"}],
            "figure": 15.0,
            "previousFigure": 5.0,
            "change": 2.0,
        },
        {
            "sku": x,
            "units": 12,
            "orders": 1,
            "revenue": [{"amount": "12.00"}],
            "previousUnits": 10,
            "previousRevenue": [{"amount": "10.00"}],
            "figure": 12.0,
            "previousFigure": 10.0,
            "change": 0.2,
        },
    ]
    assert found["rising"] == [{"sku": z, "figure": 15.0, "change": 2.0}, {"sku": x, "figure": 12.0, "change": 0.2}]
    # By revenue: Z 15 × 2.00 = 30.00, Y 3 × 5.00 = 15.00, X 12.00 (W's 10.00 is fourth). Rising: Z
    # (30 − 10) ÷ 10 = 2.0, X (12 − 10) ÷ 10 = 0.2; Y's 5.00 → 15.00 is +200% but only 3 units.
    by_revenue = top("REVENUE")
    assert [(p["sku"], p["figure"], p["change"]) for p in by_revenue["top"]] == [
        (z, 30.0, 2.0),
        (y, 15.0, 2.0),
        (x, 12.0, 0.2),
    ]
    assert by_revenue["rising"] == [
        {"sku": z, "figure": 30.0, "change": 2.0},
        {"sku": x, "figure": 12.0, "change": 0.2},
    ]
    # A channel filter narrows both periods: the orders' own channel keeps everything, another none.
    by_channel = {**JUNE_WEEK, "interval": "WEEK", "groupBy": "CHANNEL", "filter": mine}
    [channel] = {p["key"] for p in admin(SALES, by_channel)["reports"]["salesTrend"]}
    on_channel = {**JUNE_WEEK, "by": "UNITS", "filter": {**mine, "channelCodes": [channel]}}
    assert admin(TOP, on_channel)["reports"]["topProducts"] == found
    elsewhere = {**JUNE_WEEK, "by": "UNITS", "filter": {**mine, "channelCodes": ["no-such-channel"]}}
    assert admin(TOP, elsewhere)["reports"]["topProducts"]["top"] == []
    # As CSV: a row per listed product, its list named, the previous period's start on every row.
    params = {**JUNE_WEEK, "by": "UNITS", "limit": "3", "minUnits": "10", "skus": ",".join(mine["skus"])}
    text = admin.http.get("/reports/topProducts.csv", params=params).text
    lines = text.splitlines()
    assert lines[0].startswith("previousFrom,list,sku,category,units,orders,revenue.amount,revenue.currency,")
    assert [line.split(",")[:5] for line in lines[1:]] == [
        ["2019-06-01", "top", w, "", "20"],
        ["2019-06-01", "top", z, "", "15"],
        ["2019-06-01", "top", x, "", "12"],
        ["2019-06-01", "rising", z, "", "15"],
        ["2019-06-01", "rising", x, "", "12"],
    ]
    skus = [part for sku in mine["skus"] for part in ("--sku", sku)]
    window = ["--from", JUNE_WEEK["from"], "--to", JUNE_WEEK["to"]]
    printed = oms(
        "report", "topProducts", *window, *skus, "--by", "units", "--limit", "3", "--csv", database_url=database_url
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == text
    body = admin.raw(TOP.replace("limit: 3", "limit: 0"), {**JUNE_WEEK, "by": "UNITS", "filter": mine})
    assert body["errors"][0]["extensions"]["code"] and "limit" in body["errors"][0]["message"]


MERGE = """mutation($id: ID!, $dup: ID!) { customerMerge(input: {id: $id, duplicateId: $dup}) {
  userErrors { field message code } } }"""
ORDER_CUSTOMER = "query($id: ID!) { order(id: $id) { customer { id } } }"
AUGUST = {"from": "2020-07-31T16:00:00Z", "to": "2020-08-31T16:00:00Z"}  # Shanghai August


def test_a_customer_merge_moves_the_duplicate_s_orders_in_the_segments(admin):
    tag = datetime.now(UTC).strftime("%M%S%f")
    sku = f"RP-MERGE-{tag}"
    add_product(admin, sku, "10.00")
    person = {"name": "Merge P", "phone": f"+86 136{tag[-8:]}"}
    duplicate = {"name": "Merge D", "phone": f"+86 135{tag[-8:]}"}
    kept = place_order(admin, [(sku, 1, "10.00")], paid=True, customer=person, placedAt="2020-08-03T04:00:00Z")
    place_order(admin, [(sku, 1, "10.00")], paid=True, customer=person, placedAt="2020-08-10T04:00:00Z")
    moved = place_order(admin, [(sku, 1, "10.00")], paid=True, customer=duplicate, placedAt="2020-08-12T04:00:00Z")

    def segments() -> list[tuple[str, int, float]]:
        found = admin(SEGMENTS, AUGUST)["reports"]["customerSegments"]
        return [(s["name"], s["customers"], s["repeatRate"]) for s in found]

    # Two customers: P last ordered 08-10 and twice, D 08-12 once. Recency: P 1, D 1 + ⌊1 × 5 ÷ 2⌋ = 3;
    # frequency: D 1, P 3. P (R1, F3) is AT_RISK; D (R3, one order) is POTENTIAL.
    eventually(lambda: segments() == [("POTENTIAL", 1, 0.0), ("AT_RISK", 1, 1.0)])
    ids = [admin(ORDER_CUSTOMER, {"id": o["id"]})["order"]["customer"]["id"] for o in (kept, moved)]
    assert admin.mutate("customerMerge", MERGE, {"id": ids[0], "dup": ids[1]})["userErrors"] == []
    # One customer with three orders: alone, every score is 1 + 0 = 1, so LOST; it ordered twice or more.
    eventually(lambda: segments() == [("LOST", 1, 1.0)])


PRODUCT = """mutation($input: ProductCreateInput!) { productCreate(input: $input) { userErrors { message } } }"""
SEPTEMBER = {"from": "2020-08-31T16:00:00Z", "to": "2020-09-30T16:00:00Z"}  # Shanghai September


def test_an_order_counts_once_per_category_however_many_of_its_skus_are_in_it(admin):
    tag = datetime.now(UTC).strftime("%M%S%f")
    shoes, hats = f"shoes-{tag}", f"hats-{tag}"
    a, b, c = f"RP-CAT-A-{tag}", f"RP-CAT-B-{tag}", f"RP-CAT-C-{tag}"
    for sku, category in ((a, shoes), (b, shoes), (c, hats)):
        product = {"sku": sku, "name": sku, "category": category, "price": {"amount": "10.00", "currency": "CNY"}}
        assert admin(PRODUCT, {"input": product})["productCreate"]["userErrors"] == []
    # O1: 1 × A + 2 × B (both shoes); O2: 1 × A (shoes) + 1 × C (hats); both on 09-07.
    place_order(admin, [(a, 1, "10.00"), (b, 2, "10.00")], paid=True, placedAt="2020-09-07T04:00:00Z")
    place_order(admin, [(a, 1, "10.00"), (c, 1, "10.00")], paid=True, placedAt="2020-09-07T04:00:00Z")

    def by_category() -> list[tuple[str, int, int, str]]:
        variables = {**SEPTEMBER, "interval": "MONTH", "groupBy": "CATEGORY", "filter": {"categories": [shoes, hats]}}
        found = admin(SALES, variables)["reports"]["salesTrend"]
        return sorted((p["key"], p["orders"], p["units"], p["revenue"]["amount"]) for p in found)

    # Shoes: 2 orders (O1 once, though it has two shoe SKUs), 1 + 2 + 1 = 4 units, 40.00; hats: O2, 1, 10.00.
    eventually(lambda: by_category() == [(hats, 1, 1, "10.00"), (shoes, 2, 4, "40.00")])
    # One category in the filter, no grouping: the same 2 orders containing shoes.
    only_shoes = {**SEPTEMBER, "interval": "MONTH", "filter": {"categories": [shoes]}}
    [point] = admin(SALES, only_shoes)["reports"]["salesTrend"]
    assert (point["orders"], point["units"]) == (2, 4)


PREFERENCES = """query($from: DateTime!, $to: DateTime!) { reports { customerSegments(from: $from, to: $to) {
  name customers preferences { topCategories { key orders share } topChannels { key orders share } } } } }"""
OCTOBER = {"from": "2020-09-30T16:00:00Z", "to": "2020-10-31T16:00:00Z"}  # Shanghai October


def test_each_segment_s_preferred_categories_and_channels(admin):
    tag = datetime.now(UTC).strftime("%M%S%f")
    kitchen, garden = f"kitchen-{tag}", f"garden-{tag}"
    k1, k2, g1 = f"RP-PREF-K1-{tag}", f"RP-PREF-K2-{tag}", f"RP-PREF-G1-{tag}"
    for sku, category in ((k1, kitchen), (k2, kitchen), (g1, garden)):
        product = {"sku": sku, "name": sku, "category": category, "price": {"amount": "10.00", "currency": "CNY"}}
        assert admin(PRODUCT, {"input": product})["productCreate"]["userErrors"] == []
    c1 = {"name": "Pref C1", "phone": f"+86 134{tag[-8:]}"}
    c2 = {"name": "Pref C2", "phone": f"+86 133{tag[-8:]}"}
    for customer, lines, day in (
        (c1, [(k1, 1, "10.00")], "05"),
        (c1, [(k1, 1, "10.00"), (g1, 1, "10.00")], "10"),
        (c1, [(k2, 2, "10.00")], "20"),
        (c2, [(g1, 1, "10.00")], "25"),
    ):
        place_order(admin, lines, paid=True, customer=customer, placedAt=f"2020-10-{day}T04:00:00Z")
    by_channel = {**OCTOBER, "interval": "MONTH", "groupBy": "CHANNEL"}
    [code] = eventually(lambda: {p["key"] for p in admin(SALES, by_channel)["reports"]["salesTrend"]})
    # Scores (two customers): C1 last ordered 10-20, three times; C2 10-25, once. Recency C1 1, C2 3;
    # frequency C2 1, C1 3: C1 AT_RISK, C2 POTENTIAL. C1's 3 orders: kitchen in all three (1.0),
    # garden in the second (1/3); C2's one order: garden (1.0). Every order on the one channel.
    expected = [
        {
            "name": "POTENTIAL",
            "customers": 1,
            "preferences": {
                "topCategories": [{"key": garden, "orders": 1, "share": 1.0}],
                "topChannels": [{"key": code, "orders": 1, "share": 1.0}],
            },
        },
        {
            "name": "AT_RISK",
            "customers": 1,
            "preferences": {
                "topCategories": [
                    {"key": kitchen, "orders": 3, "share": 1.0},
                    {"key": garden, "orders": 1, "share": pytest.approx(1 / 3)},
                ],
                "topChannels": [{"key": code, "orders": 3, "share": 1.0}],
            },
        },
    ]
    eventually(lambda: admin(PREFERENCES, OCTOBER)["reports"]["customerSegments"] == expected)


FEBRUARY_2018 = ("2018-02-01", "2018-03-01")  # Shanghai days no other test places orders in


def report_rows(database_url: str) -> dict[str, list[tuple]]:
    """Every report table's rows (and the orders' stored contributions) for February 2018, less
    the rows a subtraction left all zero (a rebuild never writes them; reports read them as none)."""
    from datetime import date

    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import ReportOrderFact
    from oms_graphql.domain.reports.facts import KEYS, TABLES

    first, end = (date.fromisoformat(day) for day in FEBRUARY_2018)

    async def read() -> dict[str, list[tuple]]:
        database = Database(database_url)
        try:
            async with database.session() as session:
                found: dict[str, list[tuple]] = {}
                for name, table in TABLES.items():
                    rows = await session.execute(
                        select(table).where(table.c.day >= first, table.c.day < end).order_by(*table.primary_key)
                    )
                    counters = len(table.columns) - len(KEYS[name])
                    found[name] = [tuple(r) for r in rows if any(r[-counters:])]
                facts = await session.scalars(
                    select(ReportOrderFact)
                    .where(ReportOrderFact.day >= first, ReportOrderFact.day < end)
                    .order_by(ReportOrderFact.order_id)
                )
                found["facts"] = [
                    (
                        f.order_id,
                        f.day,
                        f.channel_id,
                        f.location_id,
                        f.cancelled,
                        f.seconds_to_ship,
                        f.seconds_to_deliver,
                        f.contribution,
                    )
                    for f in facts
                ]
                return found
        finally:
            await database.dispose()

    return run_async(read())


def test_a_rebuild_leaves_the_tables_as_the_incremental_refreshes_left_them(admin, database_url):
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from oms_graphql.config import get_settings
    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Order
    from oms_graphql.domain.reports.facts import refresh_orders
    from oms_graphql.domain.reports.rebuild import rebuild_reports

    tag = datetime.now(UTC).strftime("%H%M%S%f")
    north, south = f"RB-N-{tag}", f"RB-S-{tag}"
    add_location(admin, north, priority=1001, autoDispatch=False)
    add_location(admin, south, priority=1000, autoDispatch=False)
    a, b, c = f"RB-A-{tag}", f"RB-B-{tag}", f"RB-C-{tag}"
    for sku, price in ((a, "10.00"), (b, "25.00"), (c, "7.50")):
        add_product(admin, sku, price)
    receive(admin, a, north, 50)
    receive(admin, b, south, 50)
    receive(admin, c, north, 50)
    carrier = f"fleet-rb-{tag}"
    created = admin(CARRIER, {"input": {"code": carrier, "name": "Own fleet", "kind": "fleet", "settings": {}}})
    assert created["carrierCreate"]["userErrors"] == []
    now = datetime.now(UTC)

    # Delivered in CNY, one unit of A returned and refunded; a second customer's order in USD
    # split between the two locations (A ships from the north, B from the south); a EUR order
    # paid then cancelled; an unpaid one; a paid one still allocated; two SKUs of one order on a day.
    delivered = place_order(admin, [(a, 2, "10.00"), (c, 1, "7.50")], paid=True, placedAt="2018-02-03T02:00:00Z")
    ship_and_deliver(admin, delivered["id"], carrier, now)
    return_and_refund_one(admin, delivered["id"], "DAMAGED")

    other = {"name": "Li Lei", "phone": f"+86 137{tag[-8:]}"}
    split = place_order(
        admin,
        [(a, 1, "9.00"), (b, 2, "30.00")],
        paid=True,
        currency="USD",
        customer=other,
        placedAt="2018-02-10T23:30:00Z",
    )
    wait_for_status(admin, split["id"], "ALLOCATED")
    parcels = admin(FULFILLMENT, {"id": split["id"]})["order"]["fulfillmentOrders"]
    assert len(parcels) == 2
    for parcel in parcels:
        shipment = admin.mutate("shipmentCreate", SHIP, {"fo": parcel["id"], "carrier": carrier})
        assert shipment["userErrors"] == [], shipment
        assert admin.mutate("shipmentDispatch", DISPATCH, {"id": shipment["shipment"]["id"]})["userErrors"] == []
    wait_for_status(admin, split["id"], "SHIPPED")

    cancelled = place_order(admin, [(c, 4, "7.50")], paid=True, currency="EUR", placedAt="2018-02-11T05:00:00Z")
    wait_for_status(admin, cancelled["id"], "ALLOCATED")
    assert admin.mutate("orderCancel", CANCEL, {"id": cancelled["id"]})["userErrors"] == []
    place_order(admin, [(b, 1, "25.00")], placedAt="2018-02-12T05:00:00Z")
    waiting = place_order(
        admin, [(a, 3, "10.00"), (b, 1, "25.00")], paid=True, customer=other, placedAt="2018-02-12T06:00:00Z"
    )
    wait_for_status(admin, waiting["id"], "ALLOCATED")

    async def refresh_every_order() -> None:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                ids = list(await session.scalars(select(Order.id)))
                await refresh_orders(session, ids, ZoneInfo(get_settings().report_timezone))
        finally:
            await database.dispose()

    async def rebuild() -> int:
        database = Database(database_url)
        try:
            return await rebuild_reports(database, ZoneInfo(get_settings().report_timezone))
        finally:
            await database.dispose()

    run_async(refresh_every_order())
    incremental = report_rows(database_url)
    # Sales on 02-03 (CNY), 02-11 (USD, 07:30 in Shanghai) and 02-12 (CNY); the cancelled order's is all zero.
    assert len(incremental["facts"]) == 5 and len(incremental["sales"]) == 3

    assert run_async(rebuild()) >= 5

    assert report_rows(database_url) == incremental


NOVEMBER = {"from": "2020-10-31T16:00:00Z", "to": "2020-11-30T16:00:00Z"}  # Shanghai November


def test_an_order_counts_once_however_many_of_the_filtered_skus_or_categories_it_holds(admin):
    tag = datetime.now(UTC).strftime("%M%S%f")
    toys, books = f"toys-{tag}", f"books-{tag}"
    a, b, c = f"RP-ONCE-A-{tag}", f"RP-ONCE-B-{tag}", f"RP-ONCE-C-{tag}"
    for sku, category in ((a, toys), (b, toys), (c, books)):
        product = {"sku": sku, "name": sku, "category": category, "price": {"amount": "10.00", "currency": "CNY"}}
        assert admin(PRODUCT, {"input": product})["productCreate"]["userErrors"] == []
    # O1: 1 × A + 2 × B + 1 × C; O2: 1 × A; both on 11-09.
    place_order(admin, [(a, 1, "10.00"), (b, 2, "10.00"), (c, 1, "10.00")], paid=True, placedAt="2020-11-09T04:00:00Z")
    place_order(admin, [(a, 1, "10.00")], paid=True, placedAt="2020-11-09T04:00:00Z")

    def trend(group_by: str | None, **filter_: list[str]) -> list[tuple[str | None, int, int, str]]:
        variables = {**NOVEMBER, "interval": "MONTH", "groupBy": group_by, "filter": filter_}
        found = admin(SALES, variables)["reports"]["salesTrend"]
        return sorted((p["key"], p["orders"], p["units"], p["revenue"]["amount"]) for p in found)

    # A or B: O1 (A and B) once and O2: 2 orders; their units 1 + 2 + 1 = 4, the lines' 40.00.
    eventually(lambda: trend(None, skus=[a, b]) == [(None, 2, 4, "40.00")])
    [(channel, *_)] = trend("CHANNEL", skus=[a, b])
    assert trend("CHANNEL", skus=[a, b]) == [(channel, 2, 4, "40.00")]
    # By category, A or C: toys O1 and O2 (A), books O1 (C).
    assert trend("CATEGORY", skus=[a, b, c]) == [(books, 1, 1, "10.00"), (toys, 2, 4, "40.00")]
    # Toys or books, no grouping: O1 (both) once and O2.
    assert trend(None, categories=[toys, books]) == [(None, 2, 5, "50.00")]
    # Per SKU each order still counts under each of its SKUs.
    assert trend("SKU", skus=[a, b]) == sorted([(a, 2, 2, "20.00"), (b, 1, 2, "20.00")])
