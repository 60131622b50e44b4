"""Channel orders in, end to end: the real plugins pull from (or are pushed by) the fake
marketplaces over HTTP, the app ingests through its jobs, and we look through GraphQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from tests.channel_support import (
    LISTING_SET,
    PUSH,
    REPLAY,
    SYNC,
    amazon_order,
    amazon_settings,
    create_channel,
    ensure_product,
    jd_settings,
    messages,
    order_count,
    order_of,
    pos_settings,
    sync_until,
    taobao_settings,
    wait_order,
)
from tests.fakes import amazon, jd, pos, taobao
from tests.fakes.server import serve
from tests.support import add_location, eventually, receive, run_async

DRESS, SOCK = "CX-DRESS-2025SS-RED-M", "CX-SOCK-001-WHT"
EARBUD, CASE = "HZ-EARBUD-PRO-WHT", "HZ-CASE-SIL-BLU"
MUG = "MUG-CER-11OZ-BLU"
LEVEL = """query($sku: String!, $code: String!) { stockLevels(filter: {sku: $sku, locationCode: $code}) {
  edges { node { onHand reserved available } } } }"""


def level(client, sku: str, code: str) -> dict:
    edges = client(LEVEL, {"sku": sku, "code": code})["stockLevels"]["edges"]
    return edges[0]["node"] if edges else {"onHand": 0, "reserved": 0, "available": 0}


@pytest.fixture(scope="module")
def warehouse(admin) -> str:
    """One warehouse holding every SKU of the channel samples."""
    code = f"WH-CH-{datetime.now(UTC):%H%M%S%f}"
    add_location(admin, code, priority=1)
    for sku in (DRESS, SOCK, EARBUD, CASE, MUG, "TEE-ORG-M-BLK"):
        ensure_product(admin, sku)
        receive(admin, sku, code, 500)
    return code


@pytest.fixture
def taobao_fake() -> Iterator[tuple[str, taobao.TaobaoState]]:
    state = taobao.TaobaoState(load_samples=False)
    with serve(taobao.make_app(state)) as url:
        yield url, state


@pytest.fixture
def jd_fake() -> Iterator[tuple[str, jd.JdState]]:
    state = jd.JdState(load_samples=False)
    with serve(jd.make_app(state)) as url:
        yield url, state


@pytest.fixture
def amazon_fake() -> Iterator[tuple[str, amazon.AmazonState]]:
    state = amazon.AmazonState()
    with serve(amazon.make_app(state)) as url:
        yield url, state


@pytest.fixture
def pos_fake() -> Iterator[tuple[str, pos.PosState]]:
    state = pos.PosState()
    with serve(pos.make_app(state)) as url:
        yield url, state


def new_trade(state: taobao.TaobaoState, **changes) -> str:
    """A fresh copy of sample trade A (paid, two lines, the second refunded), modified just now."""
    tid = state.add_order()
    for key, value in changes.items():
        state.trades[tid][key] = value
    state.touch(tid, datetime.now(UTC) - timedelta(seconds=5))
    return tid


# --- Taobao -----------------------------------------------------------------


def test_a_taobao_trade_arrives_with_lines_totals_customer_and_address(admin, uid, warehouse, taobao_fake):
    url, state = taobao_fake
    tid = new_trade(state)
    code = f"tmall-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings(url, state))

    order = sync_until(admin, code, tid, "ALLOCATED")

    assert order["currency"] == "CNY" and order["channel"] == {"code": code}
    lines = {line["sku"]: line for line in order["lines"]}
    assert lines[DRESS]["quantity"] == 2 and lines[DRESS]["unitPrice"]["currency"] == "CNY"
    assert lines[DRESS]["unitPrice"]["amount"].rstrip("0").rstrip(".") == "129"
    assert lines[SOCK]["refundedQuantity"] == 1  # refunded at Taobao before we saw it
    # Taobao's payment (251.65) less the refunded 19.90 line: what the buyer is owed goods for.
    assert Decimal(order["total"]["amount"]) == Decimal("231.75") and order["total"]["currency"] == "CNY"
    assert order["customer"]["name"] == "小鹿乱撞_2019"
    assert order["shippingAddress"]["city"] == "杭州市" and order["shippingAddress"]["country"] == "CN"
    # Only the units not refunded are reserved.
    assert [(a["sku"], a["quantity"]) for a in order["allocations"]] == [(DRESS, 2)]


def test_a_trade_listed_without_its_receiver_is_built_from_the_full_trade(admin, uid, warehouse, taobao_fake):
    # The increment answer holds only part of each trade (channel-samples README): here the
    # lines, but no receiver fields, as a real gateway answered.
    url, state = taobao_fake
    assert state.listing_omits_receiver
    tid = new_trade(state)
    code = f"tb-part-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings(url, state))

    order = sync_until(admin, code, tid, "ALLOCATED")

    assert order["shippingAddress"]["name"] == "林晓雯" and order["shippingAddress"]["city"] == "杭州市"
    assert order["holds"] == []
    assert [call["form"]["tid"] for call in state.calls_to(taobao.FULLINFO_METHOD)] == [tid]

    # Listed again unchanged (the next pull's overlap): no second detail call. Changed: one more.
    for _ in range(2):
        sync_until(admin, code, tid, "ALLOCATED")
    assert len(state.calls_to(taobao.FULLINFO_METHOD)) == 1
    state.set_status(tid, "TRADE_CLOSED_BY_TAOBAO", datetime.now(UTC) - timedelta(seconds=3))
    sync_until(admin, code, tid, "CANCELLED")
    assert len(state.calls_to(taobao.FULLINFO_METHOD)) == 2


def test_duplicate_deliveries_and_re_pulls_give_one_order_and_later_changes_update_it(
    admin, uid, warehouse, taobao_fake
):
    url, state = taobao_fake
    tid = new_trade(state, status="WAIT_BUYER_PAY", pay_time=None)
    code = f"tb-dup-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings(url, state))
    state.inject("duplicate", times=5)

    pending = sync_until(admin, code, tid)
    assert pending["status"] == "PENDING"

    # Paid later: the same trade again, now paid → confirmed and allocated, still one order.
    state.set_status(tid, "WAIT_SELLER_SEND_GOODS", datetime.now(UTC) - timedelta(seconds=2))
    state.trades[tid]["pay_time"] = taobao.top_time(datetime.now(UTC))
    allocated = sync_until(admin, code, tid, "ALLOCATED")
    assert allocated["id"] == pending["id"] and allocated["paidAt"]
    reserved_before = level(admin, DRESS, warehouse)["reserved"]

    # Closed at Taobao → cancelled here, the reservation released.
    state.set_status(tid, "TRADE_CLOSED_BY_TAOBAO", datetime.now(UTC) - timedelta(seconds=1))
    sync_until(admin, code, tid, "CANCELLED")
    assert level(admin, DRESS, warehouse)["reserved"] == reserved_before - 2
    assert order_count(admin, code) == 1


def test_a_trade_that_cannot_be_parsed_is_kept_as_failed_and_replays_after_a_fix(
    admin, uid, warehouse, taobao_fake, monkeypatch
):
    from oms_plugin_taobao import mapping

    url, state = taobao_fake
    tid = new_trade(state, status="TRADE_FROZEN_FOR_AUDIT")  # a status the plugin does not know
    good = new_trade(state)
    code = f"tb-bad-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings(url, state))
    sync_until(admin, code, good)

    failed = eventually(lambda: messages(admin, code, "FAILED"))
    assert failed[0]["externalId"] == tid and "TRADE_FROZEN_FOR_AUDIT" in failed[0]["error"]
    assert order_of(admin, code, tid) is None

    monkeypatch.setitem(mapping.TRADE_STATUSES, "TRADE_FROZEN_FOR_AUDIT", mapping.ChannelOrderStatus.ON_HOLD)
    replay = admin.mutate("inboundMessageReplay", REPLAY, {"id": failed[0]["id"]})
    assert replay["userErrors"] == [] and replay["inboundMessage"]["status"] == "RECEIVED"

    held = wait_order(admin, code, tid, "ON_HOLD")
    assert [hold["reason"] for hold in held["holds"]] == ["CHANNEL_HOLD"]


def test_an_unmapped_channel_sku_holds_the_order_until_it_is_mapped(admin, uid, warehouse, taobao_fake):
    url, state = taobao_fake
    tid = new_trade(state)
    unknown = f"NEW-{uid}"
    for line in state.lines(tid):
        line["outer_sku_id"] = unknown if str(line.get("outer_sku_id")) == DRESS else line.get("outer_sku_id")
    sku_id = str(state.lines(tid)[0]["sku_id"])
    code = f"tb-map-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings(url, state))

    held = sync_until(admin, code, tid, "ON_HOLD")
    assert held["holds"][0]["reason"] == "UNMAPPED_SKU" and sku_id in held["holds"][0]["note"]
    assert held["lines"][0]["sku"] is None

    mapped = admin.mutate(
        "channelListingSet", LISTING_SET, {"input": {"channelCode": code, "channelSkuId": sku_id, "sku": DRESS}}
    )
    assert mapped["userErrors"] == [] and mapped["releasedOrders"][0]["number"] == held["number"]
    allocated = wait_order(admin, code, tid, "ALLOCATED")
    assert allocated["lines"][0]["sku"] == DRESS


def test_a_line_refunded_before_we_saw_it_needs_no_mapping(admin, uid, warehouse, taobao_fake):
    url, state = taobao_fake
    tid = new_trade(state)  # its second line (the socks) is refunded in full
    for line in state.lines(tid):
        if str(line.get("outer_sku_id")) == SOCK:
            line["outer_sku_id"] = f"GONE-{uid}"
    code = f"tb-refunded-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings(url, state))

    order = sync_until(admin, code, tid, "ALLOCATED")
    assert order["holds"] == []
    assert [line["sku"] for line in order["lines"]] == [DRESS, None]


def test_stock_pushes_reach_taobao_after_share_and_buffer(admin, uid, warehouse, taobao_fake):
    url, state = taobao_fake
    tid = new_trade(state)  # so the fake knows the item
    num_iid = str(state.lines(tid)[0]["num_iid"])
    sku_id = f"59{uid[:6].encode().hex()[:11]}"  # another SKU of that item, not on the trade
    sku = f"PUSH-{uid}"
    ensure_product(admin, sku)
    receive(admin, sku, warehouse, 11)
    code = f"tb-push-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings(url, state), stockSharePercent=50, stockBuffer=1)
    admin.mutate(
        "channelListingSet",
        LISTING_SET,
        {"input": {"channelCode": code, "channelSkuId": sku_id, "sku": sku, "channelItemId": num_iid}},
    )

    assert admin.mutate("channelPushStock", PUSH, {"code": code})["listings"] == 1
    update = eventually(lambda: [u for u in state.stock_updates if u.get("sku_id") == sku_id])
    assert update[-1]["quantity"] == "4" and update[-1]["num_iid"] == num_iid  # floor(11 × 50%) − 1

    # A stock change is pushed by itself, debounced.
    receive(admin, sku, warehouse, 10)
    eventually(lambda: any(u["quantity"] == "9" for u in state.stock_updates if u.get("sku_id") == sku_id), timeout=20)


def test_a_dispatched_shipment_is_confirmed_to_taobao(admin, uid, warehouse, taobao_fake, database_url):
    url, state = taobao_fake
    tid = new_trade(state)
    code = f"tb-ship-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings(url, state))
    order = sync_until(admin, code, tid, "ALLOCATED")

    dispatch_order(database_url, order["number"], "YTO", f"YT{uid}")

    sent = eventually(lambda: [s for s in state.shipments if s["tid"] == tid])
    assert sent[0]["out_sid"] == f"YT{uid}" and sent[0]["company_code"] == "YTO"
    assert wait_order(admin, code, tid, "SHIPPED")["shipments"][0]["trackingNumber"] == f"YT{uid}"


def dispatch_order(database_url: str, number: str, carrier: str, tracking: str) -> None:
    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import FulfillmentOrder, Order
    from oms_graphql.domain.shipments import dispatch

    async def run() -> None:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                order_id = await session.scalar(select(Order.id).where(Order.number == number))
                for fulfillment_id in (
                    await session.scalars(select(FulfillmentOrder.id).where(FulfillmentOrder.order_id == order_id))
                ).all():
                    await dispatch(session, fulfillment_id, carrier=carrier, tracking_number=tracking)
        finally:
            await database.dispose()

    run_async(run())


# --- JD ---------------------------------------------------------------------


def test_jd_orders_arrive_through_throttling_and_server_errors(admin, uid, warehouse, jd_fake):
    url, state = jd_fake
    order_id = state.add_order()
    state.touch(order_id, datetime.now(UTC) - timedelta(seconds=5))
    code = f"jd-{uid}".lower()
    create_channel(admin, code, "jd", jd_settings(url, state))
    state.inject("throttle", times=1)
    state.inject("http_500", times=1)

    order = sync_until(admin, code, order_id, "ALLOCATED", timeout=40)

    assert order["currency"] == "CNY" and order["shippingAddress"]["city"] == "深圳市"
    assert {(line["sku"], line["quantity"]) for line in order["lines"]} == {(EARBUD, 2), (CASE, 1)}
    assert order["total"]["amount"].startswith("402.9")
    assert order_count(admin, code) == 1


# --- Amazon -----------------------------------------------------------------


def test_amazon_orders_arrive_and_fba_orders_never_take_our_stock(admin, uid, warehouse, amazon_fake):
    url, state = amazon_fake
    mfn, afn = f"111-{uid[:7]}-0000001", f"111-{uid[:7]}-0000002"
    state.add_order(*amazon_order(mfn))
    state.add_order(*amazon_order(afn, afn=True, sku=f"AFN-ONLY-{uid}"))
    state.inject("throttle", times=1, retry_after=1)
    code = f"amz-{uid}".lower()
    create_channel(admin, code, "amazon", amazon_settings(url, state))

    order = sync_until(admin, code, mfn, "ALLOCATED", timeout=40)
    assert order["currency"] == "USD" and order["total"] == {"amount": "14.99", "currency": "USD"}
    assert order["shippingAddress"]["city"] == "Austin" and order["customer"]["name"] == "José Ñúñez"

    fba = wait_order(admin, code, afn, "SHIPPED")
    assert fba["allocations"] == [] and fba["holds"] == []  # fulfilled by Amazon from its own stock


PULLED = """{ channels { code lastPulledAt } }"""


def pull_again(client, code: str) -> None:
    """Ask for a pull and wait until a pull has finished since (the orders are stored already)."""
    asked = datetime.now(UTC)

    def pulled() -> bool:
        client.mutate("channelSyncOrders", SYNC, {"code": code})
        at = next(channel["lastPulledAt"] for channel in client(PULLED)["channels"] if channel["code"] == code)
        return at is not None and datetime.fromisoformat(at) > asked

    eventually(pulled, timeout=30, interval=1)


def test_an_amazon_order_listed_again_unchanged_costs_no_order_items_call(admin, uid, warehouse, amazon_fake):
    # getOrderItems allows 0.5 requests/s (channel-samples README 3); every pull lists its
    # overlap with the last one again, and an order stored at that version needs no detail.
    url, state = amazon_fake
    order_id = f"112-{uid[:7]}-0000001"
    state.add_order(*amazon_order(order_id, minutes_ago=3))  # inside the next pulls' overlap
    code = f"amz-again-{uid}".lower()
    create_channel(admin, code, "amazon", amazon_settings(url, state))
    sync_until(admin, code, order_id, "ALLOCATED", timeout=40)

    pull_again(admin, code)
    pull_again(admin, code)

    listings = [query for _, path, query in state.requests if path == "/orders/v0/orders"]
    stamp = state.orders[order_id]["LastUpdateDate"]
    assert listings[-1]["LastUpdatedAfter"] <= stamp <= listings[-1]["LastUpdatedBefore"]  # listed again
    assert (state.calls_of("getOrder", order_id), state.calls_of("getOrderItems", order_id)) == (1, 1)
    assert order_count(admin, code) == 1


def test_an_amazon_order_changed_at_amazon_is_fetched_again_and_updated(admin, uid, warehouse, amazon_fake):
    url, state = amazon_fake
    order_id = f"112-{uid[:7]}-0000002"
    state.add_order(*amazon_order(order_id, minutes_ago=3))
    code = f"amz-change-{uid}".lower()
    create_channel(admin, code, "amazon", amazon_settings(url, state))
    sync_until(admin, code, order_id, "ALLOCATED", timeout=40)

    # Listed only two minutes after a change (README 3), so the change is stamped 150 s ago.
    state.update_order(order_id, OrderStatus="Canceled", touched_at=datetime.now(UTC) - timedelta(seconds=150))
    sync_until(admin, code, order_id, "CANCELLED", timeout=40)

    assert (state.calls_of("getOrder", order_id), state.calls_of("getOrderItems", order_id)) == (2, 2)


# --- POS ----------------------------------------------------------------------


def test_a_pos_sale_pushed_by_webhook_takes_stock_from_the_store_at_once(admin, server, uid, pos_fake):
    url, state = pos_fake
    store, sku = f"STORE-{uid}", f"LATTE-{uid}"
    add_location(admin, store, kind="STORE")
    ensure_product(admin, sku)
    receive(admin, sku, store, 10)
    order_id = state.add_sample_order()
    # Handed over in the store: pickup instead of the sample's shipment (see the next scenario).
    [fulfillment] = state.orders[order_id]["fulfillments"]
    fulfillment.update(type="PICKUP", pickup_details=fulfillment.pop("shipment_details"))
    code = f"pos-{uid}".lower()
    create_channel(admin, code, "pos", pos_settings(url, state, store))
    variation = state.orders[order_id]["line_items"][0]["catalog_object_id"]

    hook = state.signed_webhook(order_id)
    response = httpx.post(f"{server}/webhooks/channels/{code}", content=hook.body, headers=hook.headers)
    assert response.status_code == 200

    held = wait_order(admin, code, order_id, "ON_HOLD")  # the variation is not mapped yet
    assert held["holds"][0]["reason"] == "UNMAPPED_SKU"
    admin.mutate(
        "channelListingSet", LISTING_SET, {"input": {"channelCode": code, "channelSkuId": variation, "sku": sku}}
    )
    sold = wait_order(admin, code, order_id, "SHIPPED", "COMPLETED")
    assert sold["currency"] == "USD" and sold["customer"]["name"] == "Zoë Ramírez"
    assert level(admin, sku, store) == {"onHand": 8, "reserved": 0, "available": 8}

    # The same signed webhook again (a replay of its event_id): refused, nothing stored, stock taken once.
    replay = httpx.post(f"{server}/webhooks/channels/{code}", content=hook.body, headers=hook.headers)
    assert replay.status_code == 409 and "received already" in replay.json()["reason"]
    assert len([m for m in messages(admin, code) if m["kind"] == "WEBHOOK"]) == 1
    assert order_count(admin, code) == 1 and level(admin, sku, store)["onHand"] == 8


def test_a_pos_sale_to_be_shipped_waits_for_its_listing_is_allocated_and_shipped_when_the_store_sends_it(
    admin, server, uid, pos_fake
):
    url, state = pos_fake
    store, sku = f"STORE-SHIP-{uid}", f"LATTE-SHIP-{uid}"
    add_location(admin, store, kind="STORE")
    ensure_product(admin, sku)
    receive(admin, sku, store, 10)
    order_id = state.add_sample_order()  # an open SHIPMENT fulfilment: to be sent to New York
    code = f"pos-ship-{uid}".lower()
    create_channel(admin, code, "pos", pos_settings(url, state, store))
    variation = state.orders[order_id]["line_items"][0]["catalog_object_id"]
    hook = state.signed_webhook(order_id)
    assert httpx.post(f"{server}/webhooks/channels/{code}", content=hook.body, headers=hook.headers).status_code == 200
    assert wait_order(admin, code, order_id, "ON_HOLD")["holds"][0]["reason"] == "UNMAPPED_SKU"

    admin.mutate(
        "channelListingSet", LISTING_SET, {"input": {"channelCode": code, "channelSkuId": variation, "sku": sku}}
    )

    order = wait_order(admin, code, order_id, "ALLOCATED")
    assert order["shippingAddress"]["city"] == "New York" and order["shipments"] == []
    assert level(admin, sku, store) == {"onHand": 10, "reserved": 2, "available": 8}  # reserved, not handed over

    # The store sends it itself and completes the fulfilment at the POS: shipped, the reservation used.
    [fulfillment] = state.orders[order_id]["fulfillments"]
    state.update_order(order_id, fulfillments=[{**fulfillment, "state": "COMPLETED"}])
    hook = state.signed_webhook(order_id, "order.updated")
    assert httpx.post(f"{server}/webhooks/channels/{code}", content=hook.body, headers=hook.headers).status_code == 200
    assert wait_order(admin, code, order_id, "SHIPPED")["id"] == order["id"]
    assert level(admin, sku, store) == {"onHand": 8, "reserved": 0, "available": 8}


def test_a_signed_webhook_older_than_the_tolerance_is_refused(admin, server, uid, pos_fake):
    url, state = pos_fake
    store = f"STORE-{uid}"
    add_location(admin, store, kind="STORE")
    order_id = state.add_sample_order()
    code = f"pos-old-{uid}".lower()
    create_channel(admin, code, "pos", pos_settings(url, state, store))
    stale = state.signed_webhook(order_id, created_at=datetime.now(UTC) - timedelta(days=2))

    response = httpx.post(f"{server}/webhooks/channels/{code}", content=stale.body, headers=stale.headers)

    assert response.status_code == 401 and "old" in response.json()["reason"]
    [rejected] = messages(admin, code, "REJECTED")
    assert "tolerance" in rejected["error"]
    assert order_of(admin, code, order_id) is None


def test_refused_webhooks_kept_are_capped_per_channel_and_hour(admin, settings, uid, pos_fake):
    from tests.support import serve_variant

    url, state = pos_fake
    store = f"STORE-{uid}"
    add_location(admin, store, kind="STORE")
    order_id = state.add_sample_order()
    code = f"pos-flood-{uid}".lower()
    create_channel(admin, code, "pos", pos_settings(url, state, store))
    forged = state.signed_webhook(order_id, key="not-the-key")
    padded = forged.body[:-1] + b',"padding":"' + b"p" * 5000 + b'"}'

    with serve_variant(settings, webhook_rejected_per_hour=3, webhook_rejected_body_bytes=1000) as app:
        answers = [
            httpx.post(f"{app}/webhooks/channels/{code}", content=padded, headers=forged.headers).status_code
            for _ in range(5)
        ]

    assert answers == [401] * 5
    kept = messages(admin, code, "REJECTED")
    assert len(kept) == 3
    assert all(len(m["body"]) == 1000 and "truncated" in m["error"] for m in kept)


def test_a_webhook_with_a_bad_signature_is_refused_and_kept(admin, server, uid, pos_fake):
    url, state = pos_fake
    store = f"STORE-{uid}"
    add_location(admin, store, kind="STORE")
    order_id = state.add_sample_order()
    code = f"pos-bad-{uid}".lower()
    create_channel(admin, code, "pos", pos_settings(url, state, store))
    forged = state.signed_webhook(order_id, key="not-the-key")

    response = httpx.post(f"{server}/webhooks/channels/{code}", content=forged.body, headers=forged.headers)

    assert response.status_code == 401
    rejected = messages(admin, code, "REJECTED")
    assert len(rejected) == 1 and "signature" in rejected[0]["error"] and rejected[0]["body"] == forged.body.decode()
    assert order_of(admin, code, order_id) is None


# --- crashes and retries ----------------------------------------------------


def test_a_worker_killed_mid_ingestion_loses_nothing(admin, uid, warehouse, taobao_fake, database_url, monkeypatch):
    """The upsert dies with the connection: nothing half-written stays, and the retry finishes the job."""
    from sqlalchemy.exc import OperationalError

    from oms_graphql.domain import inbound

    url, state = taobao_fake
    tid = new_trade(state)
    code = f"tb-kill-{uid}".lower()
    calls = {"n": 0}

    def dying(real):  # the first write of the order, on either path (a page's set insert, the upsert)
        async def write(*args):
            calls["n"] += 1
            if calls["n"] == 1:
                raise OperationalError("INSERT INTO orders", {}, ConnectionResetError("worker killed"))
            return await real(*args)

        return write

    monkeypatch.setattr(inbound, "upsert_order", dying(inbound.upsert_order))
    monkeypatch.setattr(inbound, "create_plain_orders", dying(inbound.create_plain_orders))
    create_channel(admin, code, "taobao", taobao_settings(url, state))

    order = sync_until(admin, code, tid, "ALLOCATED", timeout=40)

    assert calls["n"] >= 2 and order_count(admin, code) == 1 and len(order["lines"]) == 2
    assert len(messages(admin, code, "PROCESSED")) == 1 and messages(admin, code, "FAILED") == []
    # Re-running the job on a message left RECEIVED (a crash after storing it) reaches the same end state.
    rerun_message(database_url, code)
    assert order_count(admin, code) == 1 and order_of(admin, code, tid)["status"] == "ALLOCATED"


def rerun_message(database_url: str, code: str) -> None:
    from sqlalchemy import select, update

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import InboundMessage
    from oms_graphql.jobs.channels import ingest_inbound_message

    async def reset() -> int:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                message_id = await session.scalar(select(InboundMessage.id).where(InboundMessage.source == code))
                await session.execute(
                    update(InboundMessage).where(InboundMessage.id == message_id).values(status="RECEIVED")
                )
                return int(message_id)
        finally:
            await database.dispose()

    message_id = run_async(reset())
    ingest_inbound_message.fn(message_id=message_id)
    ingest_inbound_message.fn(message_id=message_id)  # and a duplicated job changes nothing


def test_a_stored_order_whose_job_was_lost_is_picked_up_by_the_sweeper(admin, uid, warehouse, database_url):
    """A worker died after storing the raw order and before ingesting it: nothing is lost."""
    from sqlalchemy import delete

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import InboundMessage, Lease, utcnow
    from oms_graphql.domain.inbound import encode_body

    state = taobao.TaobaoState(load_samples=False)
    tid = new_trade(state)
    code = f"tb-lost-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings("http://127.0.0.1:9", state), pollIntervalSeconds=3600)

    async def crash_after_storing() -> None:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                long_ago = utcnow() - timedelta(hours=1)
                session.add(
                    InboundMessage(
                        source=code,
                        kind="ORDER",
                        external_id=tid,
                        status="RECEIVED",
                        body=encode_body(state.trades[tid]),
                        received_at=long_ago,
                        queued_at=long_ago,
                    )
                )
                await session.execute(delete(Lease))  # the next scheduler tick sweeps at once
        finally:
            await database.dispose()

    run_async(crash_after_storing())

    assert wait_order(admin, code, tid, "ALLOCATED", timeout=30)
    assert [m["status"] for m in messages(admin, code)] == ["PROCESSED"]
