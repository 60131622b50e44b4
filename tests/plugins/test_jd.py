"""The jd channel plugin against the fake JOS gateway, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.metadata import entry_points

import pluggy
import pytest
from oms_plugin_jd import plugin
from oms_plugin_jd.client import sign

from oms_graphql.plugins import hookspecs
from oms_graphql.plugins.contract import (
    ChannelConfig,
    ChannelOrderStatus,
    PayloadError,
    PermanentError,
    RetryableError,
    ShipmentConfirmation,
    ShipmentLine,
    StockPush,
)
from tests.fakes.jd import API_PATH, SHANGHAI, JdState, make_app
from tests.fakes.server import serve

PAID = "301234567890"  # two lines, three coupon types
CANCELLED = "301234567123"  # cash on delivery, never paid
SHIPPED = "301234560456"  # waybill set
ALL_SAMPLES = {PAID, CANCELLED, SHIPPED}
WINDOW_START = datetime(2025, 3, 13, 0, 0, tzinfo=SHANGHAI).astimezone(UTC)
WINDOW_END = datetime(2025, 3, 14, 16, 0, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def fake() -> JdState:
    return JdState(now=datetime(2025, 3, 14, 16, 0, tzinfo=SHANGHAI))


@pytest.fixture
def channel(fake: JdState) -> Iterator[ChannelConfig]:
    with serve(make_app(fake)) as base_url:
        settings = {"apiUrl": base_url + API_PATH, **fake.settings(), "timeoutSeconds": 1}
        yield ChannelConfig(code="jd-flagship", kind="jd", settings=settings)


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


def test_signature_matches_the_official_jos_vector():
    params = {
        "360buy_param_json": '{"end_date":null,"optional_fields":null,"order_state":"WAIT_SELLER_STOCK_OUT",'
        '"page":"1","page_size":"200","start_date":null}',
        "access_token": "yourtoken",
        "app_key": "yourappkey",
        "method": "jingdong.pop.order.search",
        "timestamp": "2021-05-07 09:20:39.683+0800",
        "v": "2.0",
    }
    assert sign(params, "yourappSecret") == "D70825340F4084360B9362B60DFD7930"


def test_signature_matches_the_worked_example():
    params = {
        "app_key": "FAKEAPPKEY0001",
        "access_token": "fake-access-token-0001",
        "method": "jingdong.pop.order.search",
        "timestamp": "2025-03-14 16:00:00.000+0800",
        "v": "2.0",
        "360buy_param_json": '{"start_date":"2025-03-14 15:30:00","end_date":"2025-03-14 16:00:00",'
        '"order_state":"WAIT_SELLER_STOCK_OUT,TRADE_CANCELED","optional_fields":"orderId,orderState,'
        "orderTotalPrice,orderPayment,freightPrice,consigneeInfo,itemInfoList,couponDetailList,modified"
        '","page":"1","page_size":"100","dateType":"0","sortType":"1"}',
        "sign": "ignored",
    }
    assert sign(params, "FAKESECRET0001") == "A3EF947C63EFC8D1698ACB850309D122"


def test_the_gateway_accepts_our_signed_calls(channel, fake):
    orders = pull_all(channel)

    assert {order.external_id for order in orders} == ALL_SAMPLES
    [call] = fake.calls
    assert call["error"] is None
    assert call["params"]["timestamp"].endswith("+0800")
    assert call["business"]["dateType"] == "0"  # filter on modification time


@pytest.mark.parametrize(
    ("setting", "value", "code", "match"),
    [
        ("appSecret", "not-the-secret", "12", "Invalid Signature"),
        ("accessToken", "revoked", "19", "access_token"),
    ],
)
def test_bad_credentials_are_rejected_and_are_permanent(channel, fake, setting, value, code, match):
    with pytest.raises(PermanentError, match=match):
        pull_all(with_settings(channel, **{setting: value}))
    assert fake.calls[-1]["error"]["code"] == code


# --- pulling orders ---------------------------------------------------------


def test_the_window_is_sent_in_gmt8(channel, fake):
    start = datetime(2025, 3, 14, 7, 30, tzinfo=UTC)
    pull_all(channel, start, start + timedelta(minutes=30))

    business = fake.calls[0]["business"]
    assert (business["start_date"], business["end_date"]) == ("2025-03-14 15:30:00", "2025-03-14 16:00:00")


def test_paging_returns_every_order_once(channel, fake):
    base = datetime(2025, 3, 14, 12, 0, tzinfo=SHANGHAI)
    added = {fake.add_order(modified=base + timedelta(seconds=n)) for n in range(250)}

    orders = pull_all(channel, base, base + timedelta(minutes=30))

    assert sorted(order.external_id for order in orders) == sorted(added)
    # Page 1 for the total, then from the last page back to the first.
    assert [call["business"]["page"] for call in fake.calls] == ["1", "3", "2", "1"]


def test_an_order_delivered_twice_on_a_page_is_returned_once(channel, fake):
    fake.inject("duplicate")
    assert sorted(order.external_id for order in pull_all(channel)) == sorted(ALL_SAMPLES)


def test_search_rows_without_lines_are_completed_with_order_get(channel, fake):
    fake.listing_omits_lines = True

    orders = pull_all(channel)

    assert all(order.body["itemInfoList"] for order in orders)
    assert {c["business"]["order_id"] for c in fake.calls_to("jingdong.pop.order.get")} == ALL_SAMPLES


def test_a_refused_search_is_permanent(channel):
    with pytest.raises(PermanentError, match="one month"):
        pull_all(channel, WINDOW_END - timedelta(days=40), WINDOW_END)


# --- failures ---------------------------------------------------------------


def test_throttling_is_retried_then_retryable(channel, fake):
    fake.inject("throttle", times=4)  # every try of the first call
    with pytest.raises(RetryableError, match="throttled"):
        pull_all(channel)
    assert len(pull_all(channel)) == 3


def test_a_server_error_is_retryable_after_the_hint(channel, fake):
    fake.inject("http_500", status=502, retry_after=30)  # too long to wait in the call
    with pytest.raises(RetryableError) as caught:
        pull_all(channel)
    assert caught.value.retry_after == 30


@pytest.mark.parametrize(
    ("fault", "options", "match"),
    [("slow", {"delay": 3}, "timed out"), ("malformed_json", {}, "not JSON")],
)
def test_gateway_faults_are_retried_then_retryable(channel, fake, fault, options, match):
    fake.inject(fault, times=4, **options)
    with pytest.raises(RetryableError, match=match):
        pull_all(channel)
    assert len(pull_all(channel)) == 3  # and the next try goes through


def test_an_html_502_from_the_gateway_is_retried_in_the_call(channel, fake):
    fake.gateway.fail_every, fake.gateway.requests = 2, 1  # the very first request gets nginx's 502 page

    assert sorted(order.external_id for order in pull_all(channel)) == sorted(ALL_SAMPLES)
    assert fake.gateway.failures >= 1


def test_an_order_modified_while_paging_backwards_skips_nothing(channel, fake):
    base = datetime(2025, 3, 14, 12, 0, tzinfo=SHANGHAI)
    added = [fake.add_order(modified=base + timedelta(seconds=n)) for n in range(250)]
    first = plugin.oms_channel_fetch_orders(
        channel=channel, updated_after=base, updated_before=base + timedelta(minutes=30), page=None
    )
    # The buyer changes the newest order: it leaves the window, the rows behind it move up.
    fake.touch(added[-1], base + timedelta(hours=2))
    seen = {order.external_id for order in first.orders}
    page = first.next_page
    while page:
        result = plugin.oms_channel_fetch_orders(
            channel=channel, updated_after=base, updated_before=base + timedelta(minutes=30), page=page
        )
        seen |= {order.external_id for order in result.orders}
        page = result.next_page

    assert set(added[:-1]) <= seen


# --- mapping ----------------------------------------------------------------


def parse(channel: ChannelConfig, body: dict):
    return plugin.oms_channel_parse_order(channel=channel, body=body)


def test_a_paid_order_maps_money_lines_and_times(channel, fake):
    order = parse(channel, fake.orders[PAID])

    assert order.status is ChannelOrderStatus.PAID and order.currency == "CNY"
    assert order.placed_at == datetime(2025, 3, 14, 2, 21, 7, tzinfo=UTC)
    assert order.paid_at == datetime(2025, 3, 14, 2, 21, 30, tzinfo=UTC)
    earbuds, case = order.lines
    assert (earbuds.channel_sku_id, earbuds.channel_item_id) == ("100012345678", "10020012345")
    assert (earbuds.merchant_sku, earbuds.quantity, earbuds.unit_price) == (
        "HZ-EARBUD-PRO-WHT",
        2,
        Decimal("199.00"),
    )
    assert (earbuds.discount, case.discount) == (Decimal("30.00"), Decimal("0"))
    goods = sum(line.unit_price * line.quantity - line.discount for line in order.lines)
    assert goods - order.discount + order.shipping_fee == order.total == Decimal("402.90")
    address = order.shipping_address
    assert (address.country, address.region, address.city, address.district) == (
        "CN",
        "广东",
        "深圳市",
        "南山区",
    )
    assert address.phone == "13800138000" and address.name == "陈思远"
    assert order.buyer.channel_buyer_id == "o_jd_FAKE0a1b2c3d4e5f6g7h8i9j0"


def test_an_unpaid_cash_on_delivery_order_has_no_payment_time(channel, fake):
    order = parse(channel, fake.orders[CANCELLED])

    assert order.status is ChannelOrderStatus.CANCELLED and order.paid_at is None
    assert order.shipping_fee == Decimal("6.00") and order.total == Decimal("95.00")
    assert order.note == "不要了，买错颜色"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("WAIT_SELLER_STOCK_OUT", ChannelOrderStatus.PAID),
        ("WAIT_SELLER_DELIVERY", ChannelOrderStatus.PAID),
        ("WAIT_SEND_CODE", ChannelOrderStatus.PAID),
        ("PAUSE", ChannelOrderStatus.ON_HOLD),
        ("POP_ORDER_PAUSE", ChannelOrderStatus.ON_HOLD),
        ("LOCKED", ChannelOrderStatus.ON_HOLD),
        ("WAIT_GOODS_RECEIVE_CONFIRM", ChannelOrderStatus.SHIPPED),
        ("FINISHED_L", ChannelOrderStatus.COMPLETED),
        ("TRADE_CANCELED", ChannelOrderStatus.CANCELLED),
        ("SEND_TO_DISTRIBUTION_CENER", ChannelOrderStatus.SHIPPED),
        ("DISTRIBUTION_CENTER_RECEIVED", ChannelOrderStatus.SHIPPED),
        ("RECEIPTS_CONFIRM", ChannelOrderStatus.COMPLETED),
    ],
)
def test_every_jd_state_maps(channel, fake, state, expected):
    order_id = fake.add_order()
    fake.set_status(order_id, state, modified="2025-03-14 15:59:00")

    if state in plugin.ALL_STATES.split(","):
        [pulled] = [o for o in pull_all(channel) if o.external_id == order_id]
        body = pulled.body
    else:  # old LBP/SOPL states are not asked for, but still understood
        body = fake.orders[order_id]
    order = parse(channel, body)

    assert (order.status, order.raw_status) == (expected, state)
    assert (order.hold_reason is not None) == (expected is ChannelOrderStatus.ON_HOLD)


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        (lambda o: o.pop("orderStartTime"), "orderStartTime"),
        (lambda o: o.update(orderState="NEW_STATE"), "orderState"),
        (lambda o: o.update(itemInfoList=[]), "itemInfoList"),
        (lambda o: o["itemInfoList"][0].update(itemTotal="2.5"), "itemTotal"),
        (lambda o: o["itemInfoList"][0].update(jdPrice="¥199"), "jdPrice"),
        (lambda o: o.update(modified="14/03/2025"), "modified"),
        (lambda o: o.update(consigneeInfo="广东"), "consigneeInfo"),
    ],
)
def test_a_malformed_order_names_the_field(channel, fake, breakage, field):
    order = fake.orders[PAID]
    breakage(order)
    with pytest.raises(PayloadError, match=field):
        parse(channel, order)


# --- going back to JD -------------------------------------------------------


def test_stock_is_pushed_per_sku(channel, fake):
    pushes = [
        StockPush(sku="HZ-EARBUD-PRO-WHT", channel_sku_id="100012345678", quantity=40),
        StockPush(sku="GONE", channel_sku_id="999", quantity=1),
    ]

    results = plugin.oms_channel_push_stock(channel=channel, pushes=pushes)

    assert [(r.channel_sku_id, r.ok) for r in results] == [("100012345678", True), ("999", False)]
    assert fake.stock_updates[0] == {"skuId": "100012345678", "stockNum": 40}


def shipment(order_id: str, **changes) -> ShipmentConfirmation:
    return ShipmentConfirmation(
        **{
            "external_order_id": order_id,
            "carrier_code": "2087",
            "tracking_number": "JDX000999888777",
            "shipped_at": datetime(2025, 3, 14, 8, 0, tzinfo=UTC),
            **changes,
        }
    )


def test_a_shipment_is_confirmed_with_the_waybill(channel, fake):
    assert plugin.oms_channel_confirm_shipment(channel=channel, shipment=shipment(PAID)) is True

    assert fake.shipments == [{"orderId": PAID, "logiCoprId": "2087", "logiNo": "JDX000999888777"}]
    assert fake.orders[PAID]["orderState"] == "WAIT_GOODS_RECEIVE_CONFIRM"


def test_an_already_shipped_order_counts_as_confirmed(channel, fake):
    assert plugin.oms_channel_confirm_shipment(channel=channel, shipment=shipment(SHIPPED)) is True
    assert fake.shipments == []


def test_a_shipment_for_a_cancelled_order_is_refused(channel, fake):
    with pytest.raises(PermanentError, match="refused the shipment"):
        plugin.oms_channel_confirm_shipment(channel=channel, shipment=shipment(CANCELLED))


@pytest.mark.parametrize("carrier", ["sf-main", "SF", ""])
def test_a_carrier_without_a_jd_logistics_id_is_refused_before_calling_jd(channel, fake, carrier):
    with pytest.raises(PermanentError, match="logiCoprId"):
        plugin.oms_channel_confirm_shipment(channel=channel, shipment=shipment(PAID, carrier_code=carrier))
    assert fake.calls == [] and fake.shipments == []


def test_a_logistics_id_outside_the_shops_carrier_list_is_refused_by_jd(channel, fake):
    with pytest.raises(PermanentError, match="refused the shipment"):
        plugin.oms_channel_confirm_shipment(channel=channel, shipment=shipment(PAID, carrier_code="999999"))
    assert fake.shipments == [] and fake.orders[PAID]["orderState"] == "WAIT_SELLER_STOCK_OUT"


def test_a_partial_shipment_is_refused_before_calling_jd(channel, fake):
    partial = shipment(PAID, partial=True, lines=[ShipmentLine(channel_line_id="100012345678", quantity=2)])
    with pytest.raises(PermanentError, match="whole order"):
        plugin.oms_channel_confirm_shipment(channel=channel, shipment=partial)
    assert fake.calls == []


# --- plugin manners ---------------------------------------------------------


def test_other_channel_kinds_are_left_alone(channel):
    other = ChannelConfig(code="tmall", kind="taobao", settings={})
    assert plugin.oms_channel_max_window(channel=other) is None
    assert plugin.oms_channel_fetch_orders(other, WINDOW_START, WINDOW_END, None) is None
    assert plugin.oms_channel_parse_order(channel=other, body={}) is None
    assert plugin.oms_channel_push_stock(channel=other, pushes=[]) is None
    assert plugin.oms_channel_confirm_shipment(channel=other, shipment=shipment(PAID)) is None
    assert plugin.oms_channel_check_settings(kind="taobao", settings={}) is None


def test_settings_are_described_and_checked(channel):
    [kind] = plugin.oms_channel_kinds()
    assert kind.kind == "jd"
    assert {setting.key for setting in kind.settings if setting.secret} == {"appSecret", "accessToken"}
    assert plugin.oms_channel_check_settings(kind="jd", settings=dict(channel.settings)) == []
    problems = plugin.oms_channel_check_settings(kind="jd", settings={"apiUrl": "api.jd.com"})
    assert [key for key, _ in problems] == ["apiUrl"]
    assert plugin.oms_channel_max_window(channel=channel) == 28 * 86400


def test_the_plugin_registers_against_the_hookspecs():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin)
    manager.check_pending()  # every hookimpl matches a spec by name and arguments
    [entry_point] = [ep for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP) if ep.name == "jd"]
    assert entry_point.load() is plugin
