"""The store POS plugin's hooks against a fake Square-shaped POS over real HTTP."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from oms_plugin_pos import plugin

from oms_graphql.plugins.contract import (
    ChannelConfig,
    ChannelOrderStatus,
    PayloadError,
    PermanentError,
    RetryableError,
    ShipmentConfirmation,
    StockPush,
    WebhookRequest,
)
from tests.fakes.pos import SIGNATURE_HEADER, PosState, load_sample, make_app
from tests.fakes.server import serve

ORDER_ID = "qG7Bfake9vXo2NnKbM1sT3uYwZeF"
SQUARE_LOCATION = "L8FAKE2Q3R4S5"
WINDOW = (datetime(2025, 3, 14, 0, 0, tzinfo=UTC), datetime(2025, 3, 15, 0, 0, tzinfo=UTC))


@pytest.fixture
def state() -> PosState:
    fake = PosState()
    fake.add_sample_order()
    return fake


@pytest.fixture
def base_url(state: PosState) -> Iterator[str]:
    with serve(make_app(state)) as url:
        yield url


def pos_channel(base_url: str = "http://unused", **overrides: object) -> ChannelConfig:
    sample = load_sample("order_created_webhook.signature.json")
    settings = {
        "apiUrl": base_url,
        "accessToken": PosState.access_token,
        "signatureKey": sample["signature_key"],
        "notificationUrl": sample["notification_url"],
        "locationCode": "STORE-NYC-01",
        "squareLocationId": SQUARE_LOCATION,
        "timeoutSeconds": 5,
    }
    settings.update(overrides)
    return ChannelConfig(code="pos-nyc", kind="pos", settings=settings)


def as_request(webhook, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        url="http://10.0.0.5:8000/webhooks/channels/pos-nyc",  # what the app sees behind a proxy
        headers={k.lower(): v for k, v in (headers or webhook.headers).items()},
        body=webhook.body if body is None else body,
    )


# --- webhook signatures ----------------------------------------------------


def test_the_sample_webhook_verifies_byte_for_byte(state):
    sample = state.sample_webhook()

    verdict = plugin.oms_channel_verify_webhook(channel=pos_channel(), request=as_request(sample))

    assert verdict.accepted, verdict.reason
    assert sample.headers[SIGNATURE_HEADER] == "i7XJ9Cmb35+4qv0lPa+2hdG0PrM7yafpASabawOIrAg="


def test_a_reformatted_or_tampered_body_is_rejected(state):
    sample = state.sample_webhook()
    tampered = sample.body.replace(b'"state": "OPEN"', b'"state": "COMPLETED"')
    reformatted = json.dumps(json.loads(sample.body)).encode()
    assert tampered != sample.body

    for body in (tampered, reformatted, sample.body + b"\n"):
        verdict = plugin.oms_channel_verify_webhook(channel=pos_channel(), request=as_request(sample, body=body))
        assert not verdict.accepted
        assert "signature does not match" in verdict.reason


def test_a_wrong_key_or_notification_url_is_rejected(state):
    sample = state.sample_webhook()

    for channel in (
        pos_channel(signatureKey="not-the-key"),
        pos_channel(notificationUrl="https://other.test/hook"),
    ):
        assert not plugin.oms_channel_verify_webhook(channel=channel, request=as_request(sample)).accepted


def test_a_webhook_without_a_signature_is_rejected(state):
    sample = state.sample_webhook()

    verdict = plugin.oms_channel_verify_webhook(
        channel=pos_channel(), request=as_request(sample, headers={"content-type": "application/json"})
    )

    assert not verdict.accepted and SIGNATURE_HEADER in verdict.reason


def test_webhooks_the_fake_signs_verify_only_with_the_same_key(state):
    hook = state.signed_webhook(ORDER_ID, "order.updated")
    channel = pos_channel(signatureKey=state.signature_key, notificationUrl=state.notification_url)

    assert plugin.oms_channel_verify_webhook(channel=channel, request=as_request(hook)).accepted
    forged = state.signed_webhook(ORDER_ID, key="attacker-key")
    assert not plugin.oms_channel_verify_webhook(channel=channel, request=as_request(forged)).accepted


# --- webhook → order -------------------------------------------------------


def test_order_created_webhook_is_expanded_by_fetching_the_order(state, base_url):
    body = state.sample_webhook().json()

    payloads = plugin.oms_channel_expand_webhook(channel=pos_channel(base_url), body=body)

    (payload,) = payloads
    assert payload.external_id == ORDER_ID
    assert payload.body == load_sample("retrieve_order.json")["order"]
    assert payload.updated_at == datetime(2025, 3, 14, 19, 43, 11, 902000, tzinfo=UTC)
    assert state.requests[-1][:2] == ("GET", f"/v2/orders/{ORDER_ID}")


def test_order_updated_webhook_fetches_the_latest_version(state, base_url):
    state.update_order(ORDER_ID, state="COMPLETED")
    body = state.signed_webhook(ORDER_ID, "order.updated").json()

    (payload,) = plugin.oms_channel_expand_webhook(channel=pos_channel(base_url), body=body)

    assert payload.body["state"] == "COMPLETED" and payload.body["version"] == 4


def test_notifications_about_other_things_concern_no_order(base_url):
    body = {"type": "webhooks.test_notification", "data": {"type": "webhooks", "id": "bc368e64"}}

    assert plugin.oms_channel_expand_webhook(channel=pos_channel(base_url), body=body) == []


def test_expanding_with_a_revoked_token_is_permanent(state, base_url):
    with pytest.raises(PermanentError, match="accessToken"):
        plugin.oms_channel_expand_webhook(
            channel=pos_channel(base_url, accessToken="revoked"), body=state.sample_webhook().json()
        )


def test_rate_limiting_is_retryable_after_the_time_asked(state, base_url):
    state.inject("throttle", retry_after=4)

    with pytest.raises(RetryableError, match="RATE_LIMITED") as raised:
        plugin.oms_channel_expand_webhook(channel=pos_channel(base_url), body=state.sample_webhook().json())

    assert raised.value.retry_after == 4


@pytest.mark.parametrize(
    ("fault", "options", "message"),
    [
        ("error", {"status": 500}, "HTTP 500"),
        ("malformed", {}, "not JSON"),
        ("slow", {"delay": 2}, "in time"),
    ],
)
def test_pos_failures_are_retryable_not_crashes(state, base_url, fault, options, message):
    state.inject(fault, **options)

    with pytest.raises(RetryableError, match=message):
        plugin.oms_channel_expand_webhook(
            channel=pos_channel(base_url, timeoutSeconds=0.5), body=state.sample_webhook().json()
        )


# --- parsing ---------------------------------------------------------------


def test_the_sample_order_parses_to_lines_totals_and_a_shipment(state):
    order = plugin.oms_channel_parse_order(channel=pos_channel(), body=state.orders[ORDER_ID])

    assert (order.external_id, order.raw_status, order.status) == (ORDER_ID, "OPEN", ChannelOrderStatus.PAID)
    # An open SHIPMENT fulfilment: nothing was handed over, the order is allocated and shipped.
    assert order.location_code is None
    assert order.currency == "USD"
    assert order.total == Decimal("21.67")
    assert order.shipping_fee == Decimal("5.99")
    assert order.discount == Decimal("0")  # the 10 % is already spread over the lines
    creme, wrap = order.lines
    assert (creme.channel_line_id, creme.channel_sku_id, creme.quantity) == (
        "li-1-fake",
        "W62FAKEVARIATION0001",
        2,
    )
    assert (creme.unit_price, creme.discount) == (Decimal("6.50"), Decimal("1.30"))
    assert creme.title == "Café Crème Brûlée – Large"
    assert (wrap.channel_sku_id, wrap.quantity, wrap.unit_price, wrap.discount) == (
        None,
        1,
        Decimal("3.00"),
        Decimal("0.30"),
    )
    lines_after_discount = sum(line.unit_price * line.quantity - line.discount for line in order.lines)
    assert lines_after_discount + Decimal("1.28") + order.shipping_fee == order.total
    assert order.placed_at == datetime(2025, 3, 14, 19, 42, 7, 384000, tzinfo=UTC)
    assert order.paid_at == datetime(2025, 3, 14, 19, 43, 11, tzinfo=UTC)
    assert order.buyer.channel_buyer_id == "CFAKE8JH3K2M9N7P6Q5R4S3T"
    assert order.buyer.email == "zoe.ramirez@example.com"
    address = order.shipping_address
    assert (address.name, address.line1, address.line2) == ("Zoë Ramírez", "350 W 31st St", "Apt 12C")
    assert (address.city, address.region, address.postal_code, address.country) == (
        "New York",
        "NY",
        "10001",
        "US",
    )
    assert "Happy Birthday, Zoë!" in order.note


@pytest.mark.parametrize(
    ("pos_state", "changes", "status"),
    [
        ("OPEN", {}, ChannelOrderStatus.PAID),
        (
            "OPEN",
            {"tenders": [], "net_amount_due_money": {"amount": 2167, "currency": "USD"}},
            ChannelOrderStatus.UNPAID,
        ),
        ("COMPLETED", {}, ChannelOrderStatus.COMPLETED),
        ("CANCELED", {}, ChannelOrderStatus.CANCELLED),
        ("DRAFT", {"tenders": []}, ChannelOrderStatus.UNPAID),
        # Paid, and its shipment fulfilment completed at the POS (sent by the store itself).
        (
            "OPEN",
            {"fulfillments": [{"uid": "ful-1-fake", "type": "SHIPMENT", "state": "COMPLETED"}]},
            ChannelOrderStatus.SHIPPED,
        ),
    ],
)
def test_every_pos_state_maps(state, pos_state, changes, status):
    body = copy.deepcopy(state.orders[ORDER_ID]) | {"state": pos_state, **changes}

    order = plugin.oms_channel_parse_order(channel=pos_channel(), body=body)

    assert (order.status, order.raw_status) == (status, pos_state)


def test_money_uses_the_currencys_minor_units(state):
    body = copy.deepcopy(state.orders[ORDER_ID])
    body["total_money"] = {"amount": 1950, "currency": "JPY"}
    body["line_items"] = [
        {
            "uid": "yen-1",
            "catalog_object_id": "VAR-TEA",
            "quantity": "3",
            "base_price_money": {"amount": 650, "currency": "JPY"},
        }
    ]
    body["total_service_charge_money"] = {"amount": 0, "currency": "JPY"}
    body["net_amount_due_money"] = {"amount": 0, "currency": "JPY"}

    order = plugin.oms_channel_parse_order(channel=pos_channel(), body=body)

    assert (order.currency, order.total, order.lines[0].unit_price) == (
        "JPY",
        Decimal("1950"),
        Decimal("650"),
    )
    body["total_money"] = {"amount": 12345, "currency": "KWD"}
    assert plugin.oms_channel_parse_order(channel=pos_channel(), body=body).total == Decimal("12.345")


def test_a_walk_in_sale_with_returns_parses_without_buyer_or_address(state):
    body = copy.deepcopy(state.orders[ORDER_ID]) | {"state": "COMPLETED", "fulfillments": []}
    del body["customer_id"]
    body["returns"] = [{"return_line_items": [{"source_line_item_uid": "li-1-fake", "quantity": "1"}]}]

    order = plugin.oms_channel_parse_order(channel=pos_channel(), body=body)

    assert order.buyer is None and order.shipping_address is None
    assert order.lines[0].refunded_quantity == 1


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        (lambda o: o.pop("id"), "id"),
        (lambda o: o.pop("total_money"), "total_money"),
        (lambda o: o["line_items"][0].update(quantity="1.5"), r"line_items\[0\].quantity"),
        (
            lambda o: o["line_items"][1]["base_price_money"].update(amount="3.00"),
            r"line_items\[1\].base_price_money",
        ),
        (lambda o: o.update(created_at="last Tuesday"), "created_at"),
        (lambda o: o.update(state="EXPLODED"), "state"),
    ],
)
def test_malformed_orders_are_payload_errors_naming_the_field(state, breakage, field):
    body = copy.deepcopy(state.orders[ORDER_ID])
    breakage(body)

    with pytest.raises(PayloadError, match=field):
        plugin.oms_channel_parse_order(channel=pos_channel(), body=body)


# --- pulling sales rung up in the POS app -----------------------------------


def test_search_orders_pages_with_a_cursor_and_returns_each_order_once(state, base_url):
    template = state.orders[ORDER_ID]
    for n in range(150):
        state.add_order(
            copy.deepcopy(template) | {"id": f"sale-{n:03d}", "updated_at": f"2025-03-14T10:{n % 60:02d}:00Z"}
        )
    state.add_order(copy.deepcopy(template) | {"id": "other-store", "location_id": "LOTHER"})
    state.add_order(copy.deepcopy(template) | {"id": "later", "updated_at": "2025-03-15T00:00:00Z"})
    state.inject("duplicate", path="/v2/orders/search")
    channel = pos_channel(base_url)

    ids, page = [], None
    while True:
        result = plugin.oms_channel_fetch_orders(
            channel=channel, updated_after=WINDOW[0], updated_before=WINDOW[1], page=page
        )
        ids += [p.external_id for p in result.orders]
        page = result.next_page
        if page is None:
            break

    assert len(ids) == len(set(ids)) == 151
    assert "other-store" not in ids and "later" not in ids
    assert state.calls_to("/v2/orders/search") == 2


def test_pulling_without_the_pos_location_asks_for_it(base_url):
    with pytest.raises(PermanentError, match="squareLocationId"):
        plugin.oms_channel_fetch_orders(
            channel=pos_channel(base_url, squareLocationId=None),
            updated_after=WINDOW[0],
            updated_before=WINDOW[1],
            page=None,
        )


# --- stock and shipments ----------------------------------------------------


def test_stock_push_sets_the_store_count_of_each_variation(state, base_url):
    pushes = [StockPush("CREME-L", "W62FAKEVARIATION0001", 4), StockPush("MUG", "W62FAKEVARIATION0002", 0)]

    results = plugin.oms_channel_push_stock(channel=pos_channel(base_url), pushes=pushes)

    assert [(r.channel_sku_id, r.ok) for r in results] == [
        ("W62FAKEVARIATION0001", True),
        ("W62FAKEVARIATION0002", True),
    ]
    assert state.counts == {
        ("W62FAKEVARIATION0001", SQUARE_LOCATION): "4",
        ("W62FAKEVARIATION0002", SQUARE_LOCATION): "0",
    }
    (call,) = state.stock_updates
    change = call.body["changes"][0]
    assert change["type"] == "PHYSICAL_COUNT"
    assert change["physical_count"] | {"occurred_at": None} == {
        "catalog_object_id": "W62FAKEVARIATION0001",
        "state": "IN_STOCK",
        "location_id": SQUARE_LOCATION,
        "quantity": "4",
        "occurred_at": None,
    }


def test_stock_push_for_an_unknown_variation_reports_it_without_raising(state, base_url):
    state.catalog = {"W62FAKEVARIATION0001"}

    results = plugin.oms_channel_push_stock(channel=pos_channel(base_url), pushes=[StockPush("X", "GONE", 1)])

    assert not results[0].ok and "not found" in results[0].message


def test_stock_push_rate_limited_is_retryable(state, base_url):
    state.inject("throttle", path="/v2/inventory")

    with pytest.raises(RetryableError) as raised:
        plugin.oms_channel_push_stock(channel=pos_channel(base_url), pushes=[StockPush("X", "W62", 1)])

    assert raised.value.retry_after is None  # no Retry-After: the job backs off
    assert state.stock_updates == []


@pytest.mark.parametrize(
    ("changes", "fulfillment_state"),
    [
        ({"fulfillments": []}, None),  # rung up at the counter: no fulfilment at all
        ({"state": "COMPLETED"}, "PROPOSED"),  # the sale is closed: handed over
        ({"fulfillments": [{"uid": "ful-p", "type": "PICKUP", "state": "PROPOSED"}]}, "PROPOSED"),
    ],
    ids=["counter", "completed", "pickup"],
)
def test_a_sale_handed_over_at_the_store_takes_the_stores_stock_and_needs_no_confirmation(
    state, base_url, changes, fulfillment_state
):
    state.update_order(ORDER_ID, **changes)
    order = plugin.oms_channel_parse_order(channel=pos_channel(), body=state.orders[ORDER_ID])
    shipment = ShipmentConfirmation(ORDER_ID, "store", "-", datetime(2025, 3, 14, tzinfo=UTC))

    assert order.location_code == "STORE-NYC-01"  # the sale takes stock from this store
    assert plugin.oms_channel_confirm_shipment(channel=pos_channel(base_url), shipment=shipment) is True
    assert state.order_updates == []  # read, but nothing to tell
    assert [f.get("state") for f in state.orders[ORDER_ID]["fulfillments"]][:1] == (
        [fulfillment_state] if fulfillment_state else []
    )


def test_a_shipped_order_marks_its_shipment_fulfilment_completed_with_carrier_and_tracking(state, base_url):
    shipped_at = datetime(2025, 3, 15, 1, 0, tzinfo=UTC)
    shipment = ShipmentConfirmation(ORDER_ID, "USPS", "9434600208303109842228", shipped_at)
    version = state.orders[ORDER_ID]["version"]

    first = plugin.oms_channel_confirm_shipment(channel=pos_channel(base_url), shipment=shipment)
    again = plugin.oms_channel_confirm_shipment(channel=pos_channel(base_url), shipment=shipment)

    assert first is again is True
    [update] = state.order_updates  # the second time the fulfilment is completed already: nothing sent
    assert update.body["order"]["version"] == version
    [fulfillment] = state.orders[ORDER_ID]["fulfillments"]
    assert fulfillment["state"] == "COMPLETED"
    details = fulfillment["shipment_details"]
    assert (details["carrier"], details["tracking_number"]) == ("USPS", "9434600208303109842228")
    assert details["shipped_at"] == "2025-03-15T01:00:00.000Z"
    assert details["recipient"]["display_name"] == "Zoë Ramírez"  # a sparse update keeps the rest


def test_a_partial_shipment_is_refused_for_the_whole_order_fulfilment(state, base_url):
    partial = ShipmentConfirmation(ORDER_ID, "USPS", "EZ1", datetime(2025, 3, 15, tzinfo=UTC), partial=True)

    with pytest.raises(PermanentError, match="whole order"):
        plugin.oms_channel_confirm_shipment(channel=pos_channel(base_url), shipment=partial)
    assert state.order_updates == [] and state.orders[ORDER_ID]["fulfillments"][0]["state"] == "PROPOSED"


# --- plugin description -----------------------------------------------------


def test_the_plugin_describes_the_pos_and_checks_its_settings():
    (kind,) = plugin.oms_channel_kinds()
    assert kind.kind == "pos" and kind.receives_webhooks and kind.pulls_orders
    assert {f.key for f in kind.settings if f.secret} == {"accessToken", "signatureKey"}
    assert plugin.oms_channel_check_settings(kind="pos", settings=pos_channel("https://pos.test").settings) == []
    problems = plugin.oms_channel_check_settings(kind="pos", settings={"apiUrl": "ftp://x"})
    assert {key for key, _ in problems} == {"apiUrl", "notificationUrl", "locationCode"}


def test_every_hook_ignores_other_channel_kinds():
    other = ChannelConfig(code="amazon-us", kind="amazon", settings={})
    when = datetime(2025, 3, 14, tzinfo=UTC)
    request = WebhookRequest(url="x", headers={}, body=b"")
    assert plugin.oms_channel_check_settings(kind="amazon", settings={}) is None
    assert plugin.oms_channel_max_window(channel=other) is None
    assert plugin.oms_channel_verify_webhook(channel=other, request=request) is None
    assert plugin.oms_channel_expand_webhook(channel=other, body={}) is None
    assert plugin.oms_channel_fetch_orders(channel=other, updated_after=when, updated_before=when, page=None) is None
    assert plugin.oms_channel_parse_order(channel=other, body={}) is None
    assert plugin.oms_channel_push_stock(channel=other, pushes=[]) is None
    assert plugin.oms_channel_confirm_shipment(channel=other, shipment=None) is None
