"""The Amazon plugin's hooks against a fake SP-API over real HTTP."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from oms_plugin_amazon import plugin
from oms_plugin_amazon.client import forget_cached_tokens

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
from tests.fakes.amazon import AmazonState, load_sample, make_app
from tests.fakes.server import serve

SAMPLES = Path(__file__).resolve().parent.parent / "fakes" / "channel-samples" / "amazon"
WINDOW = (datetime(2025, 3, 14, 0, 0, tzinfo=UTC), datetime(2025, 3, 14, 18, 0, tzinfo=UTC))
PARTIALLY_SHIPPED = "113-4820193-7365021"
AFN_ORDER = "111-2049981-5573019"


@pytest.fixture
def state() -> AmazonState:
    forget_cached_tokens()
    fake = AmazonState()
    fake.add_sample_orders()
    return fake


@pytest.fixture
def base_url(state: AmazonState) -> Iterator[str]:
    with serve(make_app(state)) as url:
        yield url


def amazon_channel(base_url: str, **overrides: object) -> ChannelConfig:
    settings = {
        "endpoint": base_url,
        "tokenUrl": base_url + "/auth/o2/token",
        "clientId": "amzn1.application-oa2-client.FAKE",
        "clientSecret": "FAKE-SECRET",
        "refreshToken": "Atzr|FAKE-REFRESH",
        "marketplaceIds": ["ATVPDKIKX0DER"],
        "sellerId": "A1FAKESELLER",
        "timeoutSeconds": 5,
    }
    settings.update(overrides)
    return ChannelConfig(code="amazon-us", kind="amazon", settings=settings)


def fetch_all(channel: ChannelConfig) -> list:
    payloads, page = [], None
    while True:
        result = plugin.oms_channel_fetch_orders(
            channel=channel, updated_after=WINDOW[0], updated_before=WINDOW[1], page=page
        )
        payloads.extend(result.orders)
        page = result.next_page
        if page is None:
            return payloads


def full_order(channel: ChannelConfig, order_id: str):
    """The order as the OMS builds it from a partial listing: fetched in full, then parsed."""
    payload = plugin.oms_channel_fetch_order(channel=channel, external_id=order_id)
    return plugin.oms_channel_parse_order(channel=channel, body=payload.body)


# --- login with Amazon -----------------------------------------------------


def test_access_token_is_exchanged_once_and_shared_by_later_calls(state, base_url):
    channel = amazon_channel(base_url)

    fetch_all(channel)
    plugin.oms_channel_push_stock(channel=channel, pushes=[StockPush("MUG", "MUG-CER-11OZ-BLU", 5)])

    assert len(state.token_exchanges) == 1
    assert state.token_exchanges[0] == {
        "grant_type": "refresh_token",
        "refresh_token": "Atzr|FAKE-REFRESH",
        "client_id": "amzn1.application-oa2-client.FAKE",
        "client_secret": "FAKE-SECRET",
    }


def test_access_token_is_exchanged_again_once_it_is_about_to_expire(state, base_url):
    state.token_lifetime = 31  # the client renews 30 s early: usable for one second
    channel = amazon_channel(base_url)

    fetch_all(channel)
    exchanges_in_first_second = len(state.token_exchanges)
    time.sleep(1.2)
    fetch_all(channel)

    assert exchanges_in_first_second == 1
    assert len(state.token_exchanges) == 2


def test_a_token_amazon_expired_early_is_replaced_without_failing_the_call(state, base_url):
    channel = amazon_channel(base_url)
    fetch_all(channel)
    state.expire_access_tokens()

    orders = fetch_all(channel)

    assert len(orders) == 4
    assert len(state.token_exchanges) == 2


def test_a_revoked_refresh_token_is_a_permanent_error(state, base_url):
    with pytest.raises(PermanentError, match="refreshToken"):
        fetch_all(amazon_channel(base_url, refreshToken="Atzr|REVOKED"))


# --- pulling orders --------------------------------------------------------


def test_next_token_paging_returns_every_order_once(state, base_url):
    state.orders_page_size = 2

    payloads = fetch_all(amazon_channel(base_url))

    ids = [p.external_id for p in payloads]
    assert sorted(ids) == sorted(state.orders)
    assert len(ids) == len(set(ids)) == 4
    assert len([path for _, path, _ in state.requests if path == "/orders/v0/orders"]) == 2


def test_many_orders_page_with_next_token_and_the_same_filters(state, base_url):
    state.orders_page_size = 3
    template = load_sample("getOrders_page2_last.json")["payload"]["Orders"][0]
    for n in range(6):
        order = copy.deepcopy(template) | {"AmazonOrderId": f"111-0000000-{n:07d}"}
        state.add_order(order, [{"OrderItemId": f"9{n:013d}", "SellerSKU": "S", "QuantityOrdered": 1}])

    payloads = fetch_all(amazon_channel(base_url))

    assert len({p.external_id for p in payloads}) == len(payloads) == 10
    pages = [q for _, path, q in state.requests if path == "/orders/v0/orders"]
    assert len(pages) == 4  # 3 + 3 + 3 + 1
    assert pages[0]["MaxResultsPerPage"] == "20"  # a page's getOrderItems calls fit one burst
    assert all(page.pop("NextToken") for page in pages[1:])
    assert all(page == pages[0] for page in pages)  # NextToken goes with the same filters


def test_a_page_that_repeats_an_order_yields_it_once(state, base_url):
    state.inject("duplicate", path="/orders/v0/orders")

    payloads = fetch_all(amazon_channel(base_url))

    assert len(payloads) == len({p.external_id for p in payloads}) == 4


def test_orders_outside_the_window_are_not_fetched(state, base_url):
    state.update_order(PARTIALLY_SHIPPED, touched_at=datetime(2025, 3, 14, 19, 0, tzinfo=UTC))

    payloads = fetch_all(amazon_channel(base_url))

    assert PARTIALLY_SHIPPED not in {p.external_id for p in payloads}
    query = next(q for _, path, q in state.requests if path == "/orders/v0/orders")
    assert query["LastUpdatedAfter"] == "2025-03-14T00:00:00Z"
    assert query["LastUpdatedBefore"] == "2025-03-14T18:00:00Z"
    assert query["MarketplaceIds"] == "ATVPDKIKX0DER"


def test_a_listing_gives_partial_orders_and_asks_for_no_items(state, base_url):
    # getOrderItems allows 0.5 requests/s (README 3): the OMS asks for an order's items
    # only for a version it has not stored (oms_channel_fetch_order).
    payloads = fetch_all(amazon_channel(base_url))

    assert all(p.partial for p in payloads) and len(payloads) == 4
    listed = next(p for p in payloads if p.external_id == PARTIALLY_SHIPPED)
    assert listed.body["order"]["OrderStatus"] == "PartiallyShipped"
    assert listed.updated_at == datetime(2025, 3, 14, 17, 5, 44, tzinfo=UTC)  # its LastUpdateDate
    assert state.calls_of("getOrderItems") == state.calls_of("getOrder") == 0


def test_fetching_one_order_gives_it_in_full_at_its_version(state, base_url):
    payload = plugin.oms_channel_fetch_order(channel=amazon_channel(base_url), external_id=PARTIALLY_SHIPPED)

    assert (payload.external_id, payload.partial) == (PARTIALLY_SHIPPED, False)
    assert payload.updated_at == datetime(2025, 3, 14, 17, 5, 44, tzinfo=UTC)
    assert payload.body["order"]["AmazonOrderId"] == PARTIALLY_SHIPPED
    assert [item["OrderItemId"] for item in payload.body["items"]] == ["14826537102345", "14826537109876"]
    assert (state.calls_of("getOrder"), state.calls_of("getOrderItems")) == (1, 1)


def test_items_are_fetched_with_their_own_next_token(state, base_url):
    state.items_page_size = 1

    payload = plugin.oms_channel_fetch_order(channel=amazon_channel(base_url), external_id=PARTIALLY_SHIPPED)

    assert [item["OrderItemId"] for item in payload.body["items"]] == ["14826537102345", "14826537109876"]
    assert state.calls_of("getOrderItems", PARTIALLY_SHIPPED) == 2


def test_order_lines_carry_unit_price_promotion_and_currency(state, base_url):
    channel = amazon_channel(base_url)

    order = full_order(channel, PARTIALLY_SHIPPED)

    assert order.status is ChannelOrderStatus.PAID  # partially shipped: a line is left
    assert order.raw_status == "PartiallyShipped"
    assert order.currency == "USD"
    assert order.total == Decimal("68.39")
    assert order.shipping_fee == Decimal("4.99")
    mug, tee = order.lines
    assert (mug.merchant_sku, mug.channel_sku_id, mug.channel_item_id) == (
        "MUG-CER-11OZ-BLU",
        "MUG-CER-11OZ-BLU",
        "B0CFAKE001",
    )
    assert (mug.quantity, mug.unit_price, mug.discount) == (1, Decimal("14.99"), Decimal("0.00"))
    # ItemPrice 48.00 is for both shirts
    assert (tee.quantity, tee.unit_price, tee.discount) == (2, Decimal("24.00"), Decimal("4.80"))
    assert order.placed_at == datetime(2025, 3, 13, 22, 41, 9, tzinfo=UTC)
    assert order.updated_at == datetime(2025, 3, 14, 17, 5, 44, tzinfo=UTC)
    assert order.buyer.name == "José Ñúñez"
    assert order.shipping_address.name == "José Ñúñez-O’Brien"
    assert (order.shipping_address.line1, order.shipping_address.line2) == ("1100 Congress Ave", "Apt 4B")
    assert order.shipping_address.phone == "+1 512-555-0147 ext. 51234"
    assert "Buyer asked to cancel TEE-ORG-M-BLK: Ordered wrong size" in order.note
    assert "Feliz cumpleaños, mi amor ❤️" in order.note


def test_pending_order_without_prices_parses_in_the_marketplace_currency(state, base_url):
    channel = amazon_channel(base_url)

    order = full_order(channel, "112-3366554-0092817")

    assert order.status is ChannelOrderStatus.UNPAID
    assert order.currency == "USD"
    assert order.total is None and order.shipping_address is None
    assert order.lines[0].unit_price == Decimal("0")


def test_fulfilled_by_amazon_order_without_restricted_data_parses(state, base_url):
    channel = amazon_channel(base_url)

    order = full_order(channel, AFN_ORDER)

    assert order.status is ChannelOrderStatus.SHIPPED
    assert order.buyer.name is None
    address = order.shipping_address
    assert (address.country, address.region, address.city, address.postal_code) == (
        "US",
        "OR",
        "PORTLAND",
        "97201-1234",
    )
    assert address.name is None and address.line1 == ""
    assert "Fulfilled by Amazon" in order.note


def test_fulfilled_by_amazon_order_waiting_to_ship_is_held_not_shipped_by_us(state):
    body = {"order": load_sample("getOrders_page2_last.json")["payload"]["Orders"][0], "items": []}
    body["order"] |= {"OrderStatus": "Unshipped"}
    del body["order"]["BuyerInfo"], body["order"]["ShippingAddress"]

    order = plugin.oms_channel_parse_order(channel=amazon_channel("http://unused"), body=body)

    assert order.status is ChannelOrderStatus.ON_HOLD
    assert "Amazon ships it" in order.hold_reason
    assert order.buyer is None and order.shipping_address is None


@pytest.mark.parametrize(
    ("amazon_status", "status", "held"),
    [
        ("PendingAvailability", ChannelOrderStatus.UNPAID, False),
        ("Pending", ChannelOrderStatus.UNPAID, False),
        ("Unshipped", ChannelOrderStatus.PAID, False),
        ("PartiallyShipped", ChannelOrderStatus.PAID, False),
        ("Shipped", ChannelOrderStatus.SHIPPED, False),
        ("InvoiceUnconfirmed", ChannelOrderStatus.ON_HOLD, True),
        ("Canceled", ChannelOrderStatus.CANCELLED, False),
        ("Unfulfillable", ChannelOrderStatus.ON_HOLD, True),
    ],
)
def test_every_amazon_order_status_maps(state, base_url, amazon_status, status, held):
    state.update_order(PARTIALLY_SHIPPED, OrderStatus=amazon_status, touched_at=WINDOW[0])
    channel = amazon_channel(base_url)

    order = full_order(channel, PARTIALLY_SHIPPED)

    assert (order.status, order.raw_status) == (status, amazon_status)
    assert (order.hold_reason is not None) == held


def test_an_unknown_status_is_a_payload_error_naming_the_field():
    body = {"order": load_sample("getOrders.json")["payload"]["Orders"][0] | {"OrderStatus": "Teleported"}}
    with pytest.raises(PayloadError, match="OrderStatus"):
        plugin.oms_channel_parse_order(channel=amazon_channel("http://unused"), body=body)


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        (lambda b: b["order"].pop("PurchaseDate"), "PurchaseDate"),
        (lambda b: b["order"].update(PurchaseDate="yesterday"), "PurchaseDate"),
        (lambda b: b["items"][1]["ItemPrice"].update(Amount="forty-eight"), r"items\[1\].ItemPrice"),
        (lambda b: b["items"][0].update(QuantityOrdered="one"), r"items\[0\].QuantityOrdered"),
        (lambda b: b["items"][0].pop("OrderItemId"), r"items\[0\].OrderItemId"),
        (lambda b: b.pop("order"), "order"),
    ],
)
def test_malformed_orders_are_payload_errors_naming_the_field(breakage, field):
    body = {
        "order": load_sample("getOrders.json")["payload"]["Orders"][0],
        "items": load_sample("getOrderItems.json")["payload"]["OrderItems"],
    }
    breakage(body)
    with pytest.raises(PayloadError, match=field):
        plugin.oms_channel_parse_order(channel=amazon_channel("http://unused"), body=body)


def test_a_window_ending_less_than_two_minutes_ago_is_retried_later(base_url):
    now = datetime.now(UTC)
    with pytest.raises(RetryableError) as raised:
        plugin.oms_channel_fetch_orders(
            channel=amazon_channel(base_url), updated_after=WINDOW[0], updated_before=now, page=None
        )
    assert 100 < raised.value.retry_after <= 122


# --- failures --------------------------------------------------------------


def test_throttling_is_retryable_after_the_time_amazon_asks(state, base_url):
    state.inject("throttle", retry_after=7)

    with pytest.raises(RetryableError, match="QuotaExceeded") as raised:
        fetch_all(amazon_channel(base_url))

    assert raised.value.retry_after == 7


@pytest.mark.parametrize("operation", ["getOrder", "getOrderItems"])
def test_throttling_of_one_order_is_retryable_after_the_time_amazon_asks(state, base_url, operation):
    path = f"/orders/v0/orders/{PARTIALLY_SHIPPED}" + ("/orderItems" if operation == "getOrderItems" else "")
    state.inject("throttle", path=path, retry_after=3)

    with pytest.raises(RetryableError, match=operation) as raised:
        plugin.oms_channel_fetch_order(channel=amazon_channel(base_url), external_id=PARTIALLY_SHIPPED)

    assert raised.value.retry_after == 3


@pytest.mark.parametrize("status", [500, 503])
def test_amazon_server_errors_fetching_one_order_are_retryable(state, base_url, status):
    state.inject("error", status=status, path=f"/orders/v0/orders/{PARTIALLY_SHIPPED}")
    channel = amazon_channel(base_url)

    with pytest.raises(RetryableError, match=str(status)):
        plugin.oms_channel_fetch_order(channel=channel, external_id=PARTIALLY_SHIPPED)
    assert plugin.oms_channel_fetch_order(channel=channel, external_id=PARTIALLY_SHIPPED).body["items"]


@pytest.mark.parametrize(("order_id", "status"), [("999-0000000-0000000", "404"), ("not-an-order", "400")])
def test_fetching_an_unknown_or_invalid_order_id_is_permanent(state, base_url, order_id, status):
    with pytest.raises(PermanentError, match=status):
        plugin.oms_channel_fetch_order(channel=amazon_channel(base_url), external_id=order_id)


@pytest.mark.parametrize("status", [500, 503])
def test_amazon_server_errors_are_retryable(state, base_url, status):
    state.inject("error", status=status)

    with pytest.raises(RetryableError, match=str(status)):
        fetch_all(amazon_channel(base_url))
    assert len(fetch_all(amazon_channel(base_url))) == 4  # the next attempt goes through


def test_a_slow_answer_is_a_retryable_timeout(state, base_url):
    state.inject("slow", delay=2)

    with pytest.raises(RetryableError, match="in time"):
        fetch_all(amazon_channel(base_url, timeoutSeconds=0.5))


def test_a_body_that_is_not_json_is_a_retryable_error_not_a_crash(state, base_url):
    state.inject("malformed")

    with pytest.raises(RetryableError, match="not JSON"):
        fetch_all(amazon_channel(base_url))


def test_a_token_endpoint_outage_is_retryable(state, base_url):
    state.inject("error", status=502, path="/auth/o2/token")

    with pytest.raises(RetryableError, match="LWA"):
        fetch_all(amazon_channel(base_url))


# --- shipments and stock ---------------------------------------------------


def test_confirm_shipment_sends_the_documented_body(state, base_url):
    shipment = ShipmentConfirmation(
        external_order_id=PARTIALLY_SHIPPED,
        carrier_code="UPS",
        carrier_name="UPS",
        service="UPS Ground",
        tracking_number="1Z999AA10123456784",
        shipped_at=datetime(2025, 3, 15, 1, 0, tzinfo=UTC),
        lines=[ShipmentLine(channel_line_id="14826537109876", quantity=2)],
        partial=True,
    )

    accepted = plugin.oms_channel_confirm_shipment(channel=amazon_channel(base_url), shipment=shipment)

    assert accepted is True
    (received,) = state.shipment_confirmations
    sample = json.loads((SAMPLES / "confirmShipment_request.json").read_text())
    assert received.path == f"/orders/v0/orders/{PARTIALLY_SHIPPED}/shipmentConfirmation"
    assert received.body.keys() == sample.keys()
    assert received.body["packageDetail"].keys() == sample["packageDetail"].keys()
    assert {k: v for k, v in received.body["packageDetail"].items() if k != "packageReferenceId"} == {
        k: v for k, v in sample["packageDetail"].items() if k != "packageReferenceId"
    }
    assert received.body["marketplaceId"] == sample["marketplaceId"]
    assert received.body["packageDetail"]["packageReferenceId"].isdigit()
    assert state.orders[PARTIALLY_SHIPPED]["OrderStatus"] == "Shipped"


def test_confirming_a_whole_order_ships_what_is_left_and_a_retry_reuses_the_package_id(state, base_url):
    shipment = ShipmentConfirmation(
        external_order_id=PARTIALLY_SHIPPED,
        carrier_code="USPS",
        tracking_number="9400100000000000000000",
        shipped_at=datetime(2025, 3, 15, 1, 0, tzinfo=UTC),
    )
    channel = amazon_channel(base_url)
    state.inject("error", status=500, path=f"/orders/v0/orders/{PARTIALLY_SHIPPED}/shipmentConfirmation")

    with pytest.raises(RetryableError):
        plugin.oms_channel_confirm_shipment(channel=channel, shipment=shipment)
    assert plugin.oms_channel_confirm_shipment(channel=channel, shipment=shipment) is True
    # after it shipped, confirming again is a no-op that still counts as accepted
    assert plugin.oms_channel_confirm_shipment(channel=channel, shipment=shipment) is True

    (received,) = state.shipment_confirmations
    assert received.body["packageDetail"]["orderItems"] == [{"orderItemId": "14826537109876", "quantity": 2}]
    assert received.body["packageDetail"]["carrierName"] == "USPS"
    assert plugin.package_reference_id("9400100000000000000000") == received.body["packageDetail"]["packageReferenceId"]


def test_confirming_in_a_multi_marketplace_channel_uses_the_orders_marketplace(state, base_url):
    channel = amazon_channel(base_url, marketplaceIds=["A2EUQ1WTGCTBG2", "ATVPDKIKX0DER"])
    shipment = ShipmentConfirmation(
        external_order_id=PARTIALLY_SHIPPED,
        carrier_code="UPS",
        tracking_number="1Z1",
        shipped_at=datetime(2025, 3, 15, tzinfo=UTC),
        lines=[ShipmentLine("14826537109876", 2)],
    )

    plugin.oms_channel_confirm_shipment(channel=channel, shipment=shipment)

    assert state.shipment_confirmations[0].body["marketplaceId"] == "ATVPDKIKX0DER"


def test_confirming_an_order_amazon_does_not_know_is_permanent(state, base_url):
    shipment = ShipmentConfirmation("999-0000000-0000000", "UPS", "1Z2", datetime(2025, 3, 15, tzinfo=UTC))
    with pytest.raises(PermanentError, match="404"):
        plugin.oms_channel_confirm_shipment(channel=amazon_channel(base_url), shipment=shipment)


def test_stock_push_sets_fulfillment_availability_per_sku(state, base_url):
    state.accept_unknown_skus = False
    state.listings = {"MUG-CER-11OZ-BLU": 0, "TEE-ORG-M-BLK": 0}
    pushes = [
        StockPush(sku="MUG-11-BLU", channel_sku_id="MUG-CER-11OZ-BLU", quantity=12),
        StockPush(sku="TEE-M-BLK", channel_sku_id="TEE-ORG-M-BLK", quantity=0),
        StockPush(sku="GONE", channel_sku_id="NOT-LISTED", quantity=3),
    ]

    results = plugin.oms_channel_push_stock(channel=amazon_channel(base_url), pushes=pushes)

    assert [(r.channel_sku_id, r.ok) for r in results] == [
        ("MUG-CER-11OZ-BLU", True),
        ("TEE-ORG-M-BLK", True),
        ("NOT-LISTED", False),
    ]
    assert "not listed" in results[2].message
    assert state.listings == {"MUG-CER-11OZ-BLU": 12, "TEE-ORG-M-BLK": 0}
    first = state.stock_updates[0]
    assert first.path == "/listings/2021-08-01/items/A1FAKESELLER/MUG-CER-11OZ-BLU"
    assert first.query == {"marketplaceIds": "ATVPDKIKX0DER"}
    assert first.body["patches"] == [
        {
            "op": "replace",
            "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 12}],
        }
    ]


def test_stock_push_throttled_is_retried_as_a_whole(state, base_url):
    state.inject("throttle", retry_after=2, path="/listings/")
    with pytest.raises(RetryableError) as raised:
        plugin.oms_channel_push_stock(
            channel=amazon_channel(base_url), pushes=[StockPush("MUG", "MUG-CER-11OZ-BLU", 1)]
        )
    assert raised.value.retry_after == 2


def test_stock_push_without_seller_id_asks_for_it(base_url):
    with pytest.raises(PermanentError, match="sellerId"):
        plugin.oms_channel_push_stock(
            channel=amazon_channel(base_url, sellerId=None), pushes=[StockPush("MUG", "MUG", 1)]
        )


# --- plugin description ----------------------------------------------------


def test_the_plugin_describes_amazon_and_checks_its_settings():
    (kind,) = plugin.oms_channel_kinds()
    assert kind.kind == "amazon" and kind.pulls_orders and not kind.receives_webhooks
    secrets = {f.key for f in kind.settings if f.secret}
    assert secrets == {"clientSecret", "refreshToken"}
    assert plugin.oms_channel_check_settings(kind="amazon", settings=amazon_channel("https://x").settings) == []
    problems = plugin.oms_channel_check_settings(kind="amazon", settings={"endpoint": "x", "marketplaceIds": []})
    assert {key for key, _ in problems} == {"endpoint", "tokenUrl", "marketplaceIds"}
    assert plugin.oms_channel_max_window(channel=amazon_channel("https://x")) == 6 * 3600


def test_every_hook_ignores_other_channel_kinds():
    other = ChannelConfig(code="tmall", kind="taobao", settings={})
    when = datetime(2025, 3, 14, tzinfo=UTC)
    assert plugin.oms_channel_check_settings(kind="taobao", settings={}) is None
    assert plugin.oms_channel_max_window(channel=other) is None
    assert plugin.oms_channel_fetch_orders(channel=other, updated_after=when, updated_before=when, page=None) is None
    assert plugin.oms_channel_fetch_order(channel=other, external_id="113-4820193-7365021") is None
    assert plugin.oms_channel_parse_order(channel=other, body={}) is None
    assert plugin.oms_channel_push_stock(channel=other, pushes=[]) is None
    assert plugin.oms_channel_confirm_shipment(channel=other, shipment=None) is None
