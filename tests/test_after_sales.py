"""Marketplace after-sales (售后) in the returns flow: a Taobao refund request holds an unshipped
order until it is settled; on a shipped order it becomes a Return keyed by Taobao's refund id,
with an intercept alert while the parcel travels and the channel's refund recorded on it."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.channel_support import (
    SYNC,
    create_channel,
    dispatch_order,
    ensure_product,
    order_of,
    sync_until,
    taobao_settings,
)
from tests.fakes import taobao
from tests.fakes.server import serve
from tests.support import add_location, eventually, receive
from tests.test_ingestion import DRESS, SOCK, new_trade

ORDER = """query($id: ID!) { order(id: $id) { status total { amount } refundTotal { amount } holds { reason releasedAt }
  returns { id number status refundTotal { amount } lines { lineNo quantity receivedQuantity } } } }"""
ALERTS = "{ alerts(first: 50) { edges { node { kind message } } } }"
RECEIVE = """mutation($input: ReturnReceiveInput!) { returnReceive(input: $input) {
  return { status refundDue { amount } } userErrors { field message code } } }"""


def taobao_shop(admin, uid: str, tag: str):
    where = f"AS-{tag}-{uid}"
    # Behind every other scenario's warehouse for the shared sample SKUs (it never dispatches by itself,
    # so an order of another scenario allocated here would never ship).
    add_location(admin, where, priority=5000, autoDispatch=False)
    for sku in (DRESS, SOCK):
        ensure_product(admin, sku)
        receive(admin, sku, where, 10)
    return taobao.TaobaoState(load_samples=False)


def test_a_refund_asked_before_shipping_holds_the_order_until_taobao_settles_it(admin, uid):
    shop = taobao_shop(admin, uid, "H")
    with serve(taobao.make_app(shop)) as url:
        tid = new_trade(shop)
        code = f"tb-as-h-{uid}".lower()
        create_channel(admin, code, "taobao", taobao_settings(url, shop))
        sync_until(admin, code, tid, "ALLOCATED")

        dress_line = shop.lines(tid)[0]["oid"]
        shop.refund_line(tid, dress_line, refund_status="WAIT_SELLER_AGREE")
        held = sync_until(admin, code, tid, "ON_HOLD")
        [hold] = [h for h in held["holds"] if h["releasedAt"] is None]
        assert hold["reason"] == "REFUND_IN_PROGRESS"

        shop.refund_line(tid, dress_line, refund_status="SELLER_REFUSE_BUYER")
        released = sync_until(admin, code, tid, "ALLOCATED")
    assert all(h["releasedAt"] for h in released["holds"])  # settled: it ships again
    assert admin(ORDER, {"id": released["id"]})["order"]["returns"] == []


def test_a_refund_on_a_shipped_order_is_a_return_with_an_intercept_alert_and_the_channels_refund(
    admin, database_url, uid
):
    shop = taobao_shop(admin, uid, "S")
    with serve(taobao.make_app(shop)) as url:
        tid = new_trade(shop)
        code = f"tb-as-s-{uid}".lower()
        create_channel(admin, code, "taobao", taobao_settings(url, shop))
        order = sync_until(admin, code, tid, "ALLOCATED")
        tracking = f"SF{uid[:10]}".upper()
        assert dispatch_order(database_url, order["number"], "SF", tracking) >= 1
        sync_until(admin, code, tid, "SHIPPED")

        dress_line = shop.lines(tid)[0]["oid"]
        shop.refund_line(tid, dress_line, refund_status="WAIT_SELLER_AGREE")

        def returned(status: str) -> dict | None:
            sync_until(admin, code, tid)
            data = admin(ORDER, {"id": order["id"]})["order"]
            return data if data["returns"] and data["returns"][0]["status"] == status else None

        data = eventually(lambda: returned("REQUESTED"), timeout=30, interval=1)
        [requested] = data["returns"]
        assert requested["lines"] == [{"lineNo": 1, "quantity": 2, "receivedQuantity": 0}]
        assert data["status"] == "SHIPPED"  # a shipped order is not held: it comes back as a return
        alerts = [a["node"] for a in admin(ALERTS)["alerts"]["edges"] if a["node"]["kind"] == "INTERCEPT"]
        assert any(order["number"] in a["message"] and tracking in a["message"] for a in alerts)

        shop.refund_line(tid, dress_line, refund_status="WAIT_BUYER_RETURN_GOODS")
        eventually(lambda: returned("APPROVED"), timeout=30, interval=1)
        shop.refund_line(tid, dress_line, refund_status="SUCCESS")

        def refunded() -> dict | None:
            sync_until(admin, code, tid)
            data = admin(ORDER, {"id": order["id"]})["order"]
            return data if data["refundTotal"]["amount"] != "0.00" else None

        data = eventually(refunded, timeout=30, interval=1)
    [channel_return] = data["returns"]  # the same request all along: one return
    assert channel_return["refundTotal"] == data["refundTotal"]
    # The socks were refunded before we saw the trade, so the dresses are all the buyer paid for.
    assert data["refundTotal"] == data["total"]

    back = admin.mutate(
        "returnReceive",
        RECEIVE,
        {"input": {"id": channel_return["id"], "lines": [{"lineNo": 1, "quantity": 2, "condition": "RESELLABLE"}]}},
    )
    assert back["userErrors"] == [] and back["return"] == {"status": "REFUNDED", "refundDue": {"amount": "0.00"}}


SALES_OF = """query($from: DateTime!, $to: DateTime!, $codes: [String!]) { reports { salesTrend(from: $from,
  to: $to, interval: MONTH, filter: {channelCodes: $codes}) { units orders revenue { amount } } } }"""


def test_a_line_refunded_at_the_channel_before_shipping_leaves_the_sales_report(admin, uid):
    # A line refund that does not close the order changed its totals without asking for the
    # order's report refresh: salesTrend kept counting the refunded units and revenue.
    shop = taobao_shop(admin, uid, "R")
    with serve(taobao.make_app(shop)) as url:
        tid = new_trade(shop)
        kept = shop.lines(tid)[1]  # sample trade A's second line arrives refunded: open it again
        kept.update(status="WAIT_SELLER_SEND_GOODS", refund_status="NO_REFUND")
        kept.pop("refund_id", None)
        shop.touch(tid)
        code = f"tb-as-r-{uid}".lower()
        create_channel(admin, code, "taobao", taobao_settings(url, shop))
        order = sync_until(admin, code, tid, "ALLOCATED")
        placed = admin("query($id: ID!) { order(id: $id) { placedAt } }", {"id": order["id"]})["order"]["placedAt"]
        day = datetime.fromisoformat(placed.replace("Z", "+00:00"))
        window = {"from": (day - timedelta(days=40)).isoformat(), "to": (day + timedelta(days=40)).isoformat()}
        window["codes"] = [code]

        def sales() -> dict | None:
            """The month's figures, or None until the order's report refresh (a job) has run."""
            months = admin(SALES_OF, window)["reports"]["salesTrend"]
            assert len(months) <= 1, months
            return months[0] if months else None

        before = eventually(sales)
        assert before is not None
        refunded = shop.lines(tid)[0]
        shop.refund_line(tid, refunded["oid"], refund_status="SUCCESS")
        units = int(refunded["num"])

        def refund_counted() -> dict | None:
            admin.mutate("channelSyncOrders", SYNC, {"code": code})  # pull the refund in
            month = sales()
            return month if month and month["units"] == before["units"] - units else None

        after = eventually(refund_counted, timeout=30, interval=1)
        assert order_of(admin, code, tid)["status"] == "ALLOCATED"  # still open: one line is left
    assert after["orders"] == before["orders"] == 1
    assert float(after["revenue"]["amount"]) < float(before["revenue"]["amount"])
