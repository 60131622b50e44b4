"""The taobao channel plugin against the fake TOP gateway, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.metadata import entry_points

import pluggy
import pytest
from oms_plugin_taobao import plugin
from oms_plugin_taobao.client import sign

from oms_graphql.plugins import hookspecs
from oms_graphql.plugins.contract import (
    ChannelConfig,
    ChannelOrderStatus,
    PayloadError,
    PermanentError,
    RefundStatus,
    RetryableError,
    ShipmentConfirmation,
    ShipmentLine,
    StockPush,
)
from tests.fakes.server import serve
from tests.fakes.taobao import API_PATH, SHANGHAI, TaobaoState, make_app

TRADE_A = "3901234567890123456"  # paid, line 2 refunded
TRADE_B = "3901234567800000001"  # closed before payment
TRADE_C = "3901234567700000002"  # shipped, 济源 address
ALL_SAMPLES = {TRADE_A, TRADE_B, TRADE_C}
# The samples' window: everything modified on 2025-03-14 (GMT+8) up to 16:00.
WINDOW_START = datetime(2025, 3, 14, 0, 0, tzinfo=SHANGHAI).astimezone(UTC)
WINDOW_END = datetime(2025, 3, 14, 16, 0, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def fake() -> TaobaoState:
    return TaobaoState(now=datetime(2025, 3, 14, 16, 0, tzinfo=SHANGHAI))


@pytest.fixture
def channel(fake: TaobaoState) -> Iterator[ChannelConfig]:
    with serve(make_app(fake)) as base_url:
        settings = {"apiUrl": base_url + API_PATH, **fake.settings(), "timeoutSeconds": 1}
        yield ChannelConfig(code="tmall-flagship", kind="taobao", settings=settings)


def with_settings(channel: ChannelConfig, **changes: object) -> ChannelConfig:
    return ChannelConfig(code=channel.code, kind=channel.kind, settings={**channel.settings, **changes})


def list_all(channel: ChannelConfig, start: datetime = WINDOW_START, end: datetime = WINDOW_END) -> list:
    """Every payload the listing gives for the window, page by page."""
    orders, page = [], None
    while True:
        result = plugin.oms_channel_fetch_orders(channel=channel, updated_after=start, updated_before=end, page=page)
        orders.extend(result.orders)
        page = result.next_page
        if page is None:
            return orders


def pull_all(channel: ChannelConfig, start: datetime = WINDOW_START, end: datetime = WINDOW_END) -> list:
    """The window's orders as the OMS stores them: a partial listing row is fetched in full."""
    return [
        plugin.oms_channel_fetch_order(channel=channel, external_id=order.external_id) if order.partial else order
        for order in list_all(channel, start, end)
    ]


# --- signing --------------------------------------------------------------


def query(text: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in text.split("&"))


def test_signature_matches_the_official_top_vector():
    params = query(
        "method=taobao.item.seller.get&app_key=12345678&session=test&timestamp=2016-01-01 12:00:00"
        "&format=json&v=2.0&sign_method=md5&fields=num_iid,title,nick,price,num&num_iid=11223344"
    )
    assert sign(params, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"


@pytest.mark.parametrize(
    ("sign_method", "expected"),
    [
        ("md5", "09ED1808F5CCC4F42DB7491FA23FE6E8"),
        ("hmac", "2A6905AF662B5D8F3A954D2C3D0C7D42"),
        ("hmac-sha256", "6E988CCF1AE71E208B8972FC9889262512F491E11CF9F0FD2CA3196090B96F6B"),
    ],
)
def test_signature_matches_the_worked_examples(sign_method, expected):
    params = query(
        "method=taobao.trades.sold.increment.get&app_key=23456789&session=6100a1b2c3d4e5f6fakesession0000"
        "&timestamp=2025-03-14 16:00:00&format=json&v=2.0&fields=tid,status,payment,orders"
        "&start_modified=2025-03-14 15:30:00&end_modified=2025-03-14 16:00:00&page_no=1&page_size=50"
        f"&use_has_next=true&sign_method={sign_method}"
    )
    assert sign(params, "fakesecret0123456789abcdef01234567", sign_method) == expected


@pytest.mark.parametrize("sign_method", ["md5", "hmac", "hmac-sha256"])
def test_the_gateway_accepts_every_sign_method(channel, fake, sign_method):
    orders = pull_all(with_settings(channel, signMethod=sign_method))

    assert {order.external_id for order in orders} == ALL_SAMPLES
    call = fake.calls[0]
    assert call["error"] is None
    # System parameters travel in the query string, business parameters in the form body.
    assert call["query"]["sign_method"] == sign_method and "sign" in call["query"]
    assert "start_modified" in call["form"] and "start_modified" not in call["query"]


@pytest.mark.parametrize(
    ("setting", "value", "code", "match"),
    [
        ("appSecret", "not-the-secret", 25, "Invalid signature"),
        ("session", "expired", 27, "invalid-sessionkey"),
    ],
)
def test_bad_credentials_are_rejected_and_are_permanent(channel, fake, setting, value, code, match):
    with pytest.raises(PermanentError, match=match):
        pull_all(with_settings(channel, **{setting: value}))
    assert fake.calls[-1]["error"]["code"] == code


# --- pulling orders ---------------------------------------------------------


def test_the_window_is_sent_in_gmt8(channel, fake):
    start = datetime(2025, 3, 14, 7, 30, tzinfo=UTC)
    pull_all(channel, start, start + timedelta(minutes=30, microseconds=1))

    form = fake.calls[0]["form"]
    assert form["start_modified"] == "2025-03-14 15:30:00"
    assert form["end_modified"] == "2025-03-14 16:00:01"  # rounded outwards, never loses an edge


def test_a_small_window_is_one_page_of_partial_trades(channel, fake):
    result = plugin.oms_channel_fetch_orders(
        channel=channel, updated_after=WINDOW_START, updated_before=WINDOW_END, page=None
    )

    assert result.next_page is None
    assert [order.external_id for order in result.orders] == [TRADE_A, TRADE_B, TRADE_C]  # newest first
    assert all(order.partial for order in result.orders)  # the increment list holds part of each trade
    assert result.orders[0].updated_at == datetime(2025, 3, 14, 7, 40, 11, tzinfo=UTC)
    assert fake.calls_to("taobao.trade.fullinfo.get") == []  # fetching the detail is the OMS's call


def test_the_full_trade_comes_from_fullinfo_with_its_receiver(channel, fake):
    [listed] = [order for order in list_all(channel) if order.external_id == TRADE_A]
    assert "receiver_name" not in listed.body  # as the real increment answer

    full = plugin.oms_channel_fetch_order(channel=channel, external_id=TRADE_A)

    assert not full.partial and full.external_id == TRADE_A
    assert full.body["receiver_name"] and full.body["receiver_address"]
    assert full.body["orders"]["order"][1]["refund_status"] == "SUCCESS"
    assert full.updated_at == listed.updated_at
    assert [call["form"]["tid"] for call in fake.calls_to("taobao.trade.fullinfo.get")] == [TRADE_A]


def test_paging_returns_every_order_once_from_the_last_page_back(channel, fake):
    base = datetime(2025, 3, 14, 12, 0, tzinfo=SHANGHAI)
    added = {fake.add_trade(modified=base + timedelta(seconds=n)) for n in range(120)}

    orders = pull_all(channel, base, base + timedelta(minutes=30))

    ids = [order.external_id for order in orders]
    assert sorted(ids) == sorted(added)
    pages = [call["form"]["page_no"] for call in fake.calls_to("taobao.trades.sold.increment.get")]
    assert pages == ["1", "3", "2", "1"]


def test_a_trade_delivered_twice_on_a_page_is_returned_once(channel, fake):
    fake.inject("duplicate")

    orders = pull_all(channel)

    assert sorted(order.external_id for order in orders) == sorted(ALL_SAMPLES)


def test_trades_without_lines_are_completed_with_fullinfo(channel, fake):
    fake.listing_omits_lines = True

    orders = pull_all(channel)

    assert {order.external_id for order in orders} == ALL_SAMPLES
    assert all(order.body["orders"]["order"] for order in orders)
    assert {call["form"]["tid"] for call in fake.calls_to("taobao.trade.fullinfo.get")} == ALL_SAMPLES


def test_a_window_over_one_day_is_refused(channel, fake):
    assert plugin.oms_channel_max_window(channel=channel) == 86400
    with pytest.raises(PermanentError, match="41"):
        pull_all(channel, WINDOW_END - timedelta(days=2), WINDOW_END)


# --- failures ---------------------------------------------------------------


def test_a_long_ban_is_retryable_after_the_ban(channel, fake):
    fake.inject("throttle", ban_seconds=30)

    with pytest.raises(RetryableError) as caught:
        pull_all(channel)

    assert caught.value.retry_after == 31  # README: sleep N+1 seconds; too long to wait in the call
    assert len(pull_all(channel)) == 3  # the ban is over on the next call


def test_a_short_ban_is_waited_out_in_the_call(channel, fake):
    fake.inject("throttle", ban_seconds=1)

    assert len(pull_all(channel)) == 3
    assert fake.calls[0]["error"]["code"] == 7  # the first call was refused, its retry went through


@pytest.mark.parametrize(
    ("fault", "options", "match"),
    [
        ("http_500", {"status": 503}, "HTTP 503"),
        ("slow", {"delay": 3}, "timed out"),  # the channel's timeoutSeconds is 1
        ("malformed_json", {}, "not JSON"),
    ],
)
def test_gateway_faults_are_retried_then_retryable(channel, fake, fault, options, match):
    fake.inject(fault, times=4, method="taobao.trades.sold.increment.get", **options)  # every try of the call
    with pytest.raises(RetryableError, match=match):
        pull_all(channel)
    assert len(pull_all(channel)) == 3  # and the next try goes through


def test_an_html_502_from_the_gateway_is_retried_in_the_call(channel, fake):
    fake.gateway.fail_every = 2  # every other request: nginx's 502 page

    orders = pull_all(channel)

    assert {order.external_id for order in orders} == ALL_SAMPLES
    assert fake.gateway.failures >= 2


# --- mapping ----------------------------------------------------------------


def parse(channel: ChannelConfig, body: dict):
    return plugin.oms_channel_parse_order(channel=channel, body=body)


def test_a_paid_trade_maps_money_lines_and_times(channel, fake):
    order = parse(channel, fake.trades[TRADE_A])

    assert order.status is ChannelOrderStatus.PAID and order.raw_status == "WAIT_SELLER_SEND_GOODS"
    assert order.currency == "CNY"
    assert order.placed_at == datetime(2025, 3, 14, 1, 12, 45, tzinfo=UTC)
    assert order.paid_at == datetime(2025, 3, 14, 1, 13, 2, tzinfo=UTC)
    dress, _socks = order.lines
    assert dress.channel_line_id == "3901234567891123456"
    assert (dress.channel_item_id, dress.channel_sku_id) == ("712345678901", "5123456789012")
    assert dress.merchant_sku == "CX-DRESS-2025SS-RED-M"
    assert (dress.quantity, dress.unit_price, dress.discount) == (2, Decimal("129.00"), Decimal("20.00"))
    goods = sum(line.unit_price * line.quantity - line.discount for line in order.lines)
    assert goods - order.discount + order.shipping_fee == order.total == Decimal("251.65")
    assert order.note == "请发顺丰，周末家里没人，谢谢！"
    assert order.buyer.channel_buyer_id == "AAGh3kLxANsNnM5Qj8cWzP0Y"
    address = order.shipping_address
    assert (address.region, address.city, address.district) == ("浙江省", "杭州市", "西湖区")
    assert address.country == "CN"
    assert address.phone == "13800571234" and address.postal_code == "310012"


def test_a_refunded_line_counts_as_refunded(channel, fake):
    tid = fake.add_trade()
    first_line = fake.lines(tid)[0]["oid"]
    fake.refund_line(tid, first_line)

    order = parse(channel, fake.trades[tid])

    assert [line.refunded_quantity for line in order.lines] == [2, 1]
    assert order.status is ChannelOrderStatus.PAID


@pytest.mark.parametrize(
    ("refund_status", "expected"),
    [
        ("WAIT_SELLER_AGREE", RefundStatus.REQUESTED),
        ("WAIT_BUYER_RETURN_GOODS", RefundStatus.AGREED),
        ("WAIT_SELLER_CONFIRM_GOODS", RefundStatus.RETURNING),
        ("SELLER_REFUSE_BUYER", RefundStatus.REFUSED),
        ("CLOSED", RefundStatus.CLOSED),
        ("SUCCESS", RefundStatus.SUCCESS),
    ],
)
def test_a_refund_request_comes_as_the_lines_after_sale(channel, fake, refund_status, expected):
    tid = fake.add_trade()
    fake.refund_line(tid, fake.lines(tid)[0]["oid"], refund_status=refund_status)

    order = parse(channel, fake.trades[tid])

    refund = order.lines[0].refund
    assert refund is not None and refund.status is expected and refund.refund_id == fake.lines(tid)[0]["refund_id"]
    assert order.lines[1].refund.status is RefundStatus.SUCCESS  # the sample's line two, refunded already
    assert order.status is ChannelOrderStatus.PAID  # the OMS decides what a refund holds
    assert order.lines[0].refunded_quantity == (2 if expected is RefundStatus.SUCCESS else 0)


@pytest.mark.parametrize(
    ("raw_status", "expected"),
    [
        ("TRADE_NO_CREATE_PAY", ChannelOrderStatus.UNPAID),
        ("WAIT_BUYER_PAY", ChannelOrderStatus.UNPAID),
        ("PAY_PENDING", ChannelOrderStatus.UNPAID),
        ("WAIT_PRE_AUTH_CONFIRM", ChannelOrderStatus.UNPAID),
        ("WAIT_SELLER_SEND_GOODS", ChannelOrderStatus.PAID),
        ("PAID_FORBID_CONSIGN", ChannelOrderStatus.ON_HOLD),
        ("SELLER_CONSIGNED_PART", ChannelOrderStatus.SHIPPED),
        ("WAIT_BUYER_CONFIRM_GOODS", ChannelOrderStatus.SHIPPED),
        ("TRADE_BUYER_SIGNED", ChannelOrderStatus.SHIPPED),
        ("TRADE_FINISHED", ChannelOrderStatus.COMPLETED),
        ("TRADE_CLOSED", ChannelOrderStatus.CANCELLED),
        ("TRADE_CLOSED_BY_TAOBAO", ChannelOrderStatus.CANCELLED),
    ],
)
def test_every_taobao_status_maps(channel, fake, raw_status, expected):
    tid = fake.add_trade(modified="2025-03-14 15:59:00")
    fake.set_status(tid, raw_status, modified="2025-03-14 15:59:00")

    [pulled] = [o for o in pull_all(channel) if o.external_id == tid]
    order = parse(channel, pulled.body)

    assert (order.status, order.raw_status) == (expected, raw_status)
    assert (order.hold_reason is not None) == (expected is ChannelOrderStatus.ON_HOLD)


def test_a_cancelled_masked_trade_and_a_county_level_city(channel, fake):
    cancelled = parse(channel, fake.trades[TRADE_B])
    shipped = parse(channel, fake.trades[TRADE_C])

    assert cancelled.status is ChannelOrderStatus.CANCELLED and cancelled.paid_at is None
    assert cancelled.lines[0].discount == Decimal("20.00")  # adjust_fee −20 is a seller price cut
    assert cancelled.shipping_address.name == "王**"
    assert (shipped.shipping_address.city, shipped.shipping_address.district) == ("济源市", None)
    assert shipped.shipping_address.name == "欧阳䶮"


def test_an_item_without_skus_is_listed_by_its_item_id(channel, fake):
    trade = fake.trades[TRADE_C]
    line = trade["orders"]["order"][0]
    line.pop("sku_id")
    line.pop("outer_sku_id")

    [parsed] = parse(channel, trade).lines

    assert parsed.channel_sku_id == parsed.channel_item_id == "712345671111"
    assert parsed.merchant_sku == "CX-SCARF"


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        (lambda t: t.pop("created"), "created"),
        (lambda t: t.update(status="SOMETHING_NEW"), "status"),
        (lambda t: t.pop("orders"), "orders"),
        (lambda t: t["orders"]["order"][0].update(price="12,9"), "price"),
        (lambda t: t["orders"]["order"][0].update(num="two"), "num"),
        (lambda t: t.update(pay_time="14/03/2025"), "pay_time"),
        (lambda t: t.pop("tid") and t.pop("tid_str"), "tid"),
    ],
)
def test_a_malformed_trade_names_the_field(channel, fake, breakage, field):
    trade = fake.trades[TRADE_A]
    breakage(trade)
    with pytest.raises(PayloadError, match=field):
        parse(channel, trade)


# --- going back to Taobao ---------------------------------------------------


def test_stock_is_pushed_per_sku_or_per_item(channel, fake):
    dress = StockPush(sku="CX-DRESS", channel_sku_id="5123456789012", channel_item_id="712345678901", quantity=12)
    scarf = StockPush(sku="CX-SCARF", channel_sku_id="712345671111", channel_item_id="712345671111", quantity=3)
    pushes = [dress, scarf]

    results = plugin.oms_channel_push_stock(channel=channel, pushes=pushes)

    assert [(r.channel_sku_id, r.ok) for r in results] == [("5123456789012", True), ("712345671111", True)]
    sent = [
        {"num_iid": u["num_iid"], "quantity": u["quantity"], "type": u["type"], "sku": u.get("sku_id")}
        for u in fake.stock_updates
    ]
    assert sent == [
        {"num_iid": "712345678901", "quantity": "12", "type": "1", "sku": "5123456789012"},
        {"num_iid": "712345671111", "quantity": "3", "type": "1", "sku": None},
    ]


def test_a_listing_taobao_refuses_is_reported_and_the_rest_go_through(channel, fake):
    gone = StockPush(sku="OLD", channel_sku_id="1", channel_item_id="700000000000", quantity=5)
    scarf = StockPush(sku="CX-SCARF", channel_sku_id="712345671111", channel_item_id="712345671111", quantity=3)

    results = plugin.oms_channel_push_stock(channel=channel, pushes=[gone, scarf])

    assert [(r.channel_sku_id, r.ok) for r in results] == [("1", False), ("712345671111", True)]
    assert "isv.item-not-exist" in results[0].message
    assert [update["num_iid"] for update in fake.stock_updates] == ["712345671111"]


def test_a_throttled_stock_push_is_retried_as_a_whole(channel, fake):
    fake.inject("throttle", method="taobao.item.quantity.update", ban_seconds=60)
    push = StockPush(sku="X", channel_sku_id="1", channel_item_id="2", quantity=1)
    with pytest.raises(RetryableError):
        plugin.oms_channel_push_stock(channel=channel, pushes=[push])


def shipment(tid: str, **changes) -> ShipmentConfirmation:
    return ShipmentConfirmation(
        **{
            "external_order_id": tid,
            "carrier_code": "SF",
            "tracking_number": "SF1234567890123",
            "shipped_at": datetime(2025, 3, 14, 8, 0, tzinfo=UTC),
            **changes,
        }
    )


def test_a_shipment_is_confirmed_with_the_waybill(channel, fake):
    assert plugin.oms_channel_confirm_shipment(channel=channel, shipment=shipment(TRADE_A)) is True

    [sent] = fake.shipments
    assert (sent["tid"], sent["out_sid"], sent["company_code"]) == (TRADE_A, "SF1234567890123", "SF")
    assert "is_split" not in sent
    assert fake.trades[TRADE_A]["status"] == "WAIT_BUYER_CONFIRM_GOODS"


def test_a_partial_shipment_is_split_by_line(channel, fake):
    tid = fake.add_trade()
    dress, socks = fake.lines(tid)
    socks.update(status="WAIT_SELLER_SEND_GOODS", refund_status="NO_REFUND")  # both lines still to ship
    dress_oid = str(dress["oid"])
    partial = shipment(tid, partial=True, lines=[ShipmentLine(channel_line_id=dress_oid, quantity=2)])

    assert plugin.oms_channel_confirm_shipment(channel=channel, shipment=partial) is True

    [sent] = fake.shipments
    assert (sent["is_split"], sent["sub_tid"]) == ("1", dress_oid)
    assert fake.trades[tid]["status"] == "SELLER_CONSIGNED_PART"


def test_an_already_shipped_trade_counts_as_confirmed(channel, fake):
    assert plugin.oms_channel_confirm_shipment(channel=channel, shipment=shipment(TRADE_C)) is True

    assert fake.shipments == []
    assert fake.calls[-1]["error"]["sub_code"] == "isv.logistics-offline-service-error:B04"


# --- plugin manners ---------------------------------------------------------


def test_other_channel_kinds_are_left_alone(channel):
    other = ChannelConfig(code="jd-shop", kind="jd", settings={})
    assert plugin.oms_channel_max_window(channel=other) is None
    assert plugin.oms_channel_fetch_orders(other, WINDOW_START, WINDOW_END, None) is None
    assert plugin.oms_channel_parse_order(channel=other, body={}) is None
    assert plugin.oms_channel_push_stock(channel=other, pushes=[]) is None
    assert plugin.oms_channel_confirm_shipment(channel=other, shipment=shipment(TRADE_A)) is None
    assert plugin.oms_channel_check_settings(kind="jd", settings={}) is None


def test_settings_are_described_and_checked():
    [kind] = plugin.oms_channel_kinds()
    secrets = {setting.key for setting in kind.settings if setting.secret}
    assert kind.kind == "taobao" and secrets == {"appSecret", "session"}
    good = {"apiUrl": "https://eco.taobao.com/router/rest", "appKey": "1", "appSecret": "s", "session": "t"}
    assert plugin.oms_channel_check_settings(kind="taobao", settings=good) == []
    problems = plugin.oms_channel_check_settings(kind="taobao", settings={**good, "signMethod": "sha1"})
    assert [key for key, _ in problems] == ["signMethod"]


def test_the_plugin_registers_against_the_hookspecs():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()  # every hookimpl matches a spec by name and arguments
    [entry_point] = [ep for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP) if ep.name == "taobao"]
    assert entry_point.load() is plugin
