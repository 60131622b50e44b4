"""Marketplace after-sales (售后) in the returns flow: a Taobao refund request holds an unshipped
order until it is settled; on a shipped order it becomes a Return keyed by Taobao's refund id,
with an intercept alert while the parcel travels and the channel's refund recorded on it."""

from __future__ import annotations

from tests.channel_support import create_channel, dispatch_order, ensure_product, sync_until, taobao_settings
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
