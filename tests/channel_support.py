"""Helpers for channel tests: the fake marketplaces as channels, GraphQL snippets, waiting."""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes import amazon, jd, pos, taobao
from tests.support import GraphQLClient, eventually

# Make the channel scheduler and stock pushes quick for tests (read when the app starts).
os.environ.setdefault("OMS_CHANNEL_TICK_SECONDS", "0.5")
os.environ.setdefault("OMS_STOCK_PUSH_DEBOUNCE_SECONDS", "0.3")

CHANNEL_CREATE = """
mutation($input: ChannelCreateInput!) {
  channelCreate(input: $input) {
    channel { id code kind settings secretSettingsSet stockSharePercent stockBuffer syncFrom }
    userErrors { field message code }
  }
}"""
CHANNEL_UPDATE = """
mutation($input: ChannelUpdateInput!) {
  channelUpdate(input: $input) {
    channel { code name settings secretSettingsSet stockSharePercent stockBuffer }
    userErrors { field message code }
  }
}"""
SYNC = """mutation($code: String!) { channelSyncOrders(input: {channelCode: $code}) {
  channel { code } userErrors { field message code } } }"""
PUSH = """mutation($code: String!) { channelPushStock(input: {channelCode: $code}) {
  listings userErrors { field message code } } }"""
LISTING_SET = """
mutation($input: ChannelListingSetInput!) {
  channelListingSet(input: $input) {
    listing { channelSkuId sku }
    releasedOrders { number status }
    userErrors { field message code }
  }
}"""
ORDER_BY_EXTERNAL = """
query($code: String!, $ext: String!) {
  orderByExternalId(channelCode: $code, externalId: $ext) {
    id number status externalId currency placedAt paidAt
    channel { code }
    customer { name phone email }
    shippingAddress { name phone country region city district line1 postalCode }
    lines { sku channelSkuId quantity refundedQuantity unitPrice { amount currency } }
    subtotal { amount currency } shippingFee { amount } discount { amount } total { amount currency }
    allocations { sku quantity status location { code } }
    holds { reason note releasedAt }
    shipments { carrier trackingNumber status }
  }
}"""
ORDER_COUNT = """query($code: String!) { orders(filter: {channelCode: $code}) { totalCount } }"""
MESSAGES = """
query($code: String, $status: InboundMessageStatus) {
  inboundMessages(first: 50, filter: {channelCode: $code, status: $status}) {
    totalCount
    edges { node { id kind status externalId error outcome attempts body order { number } } }
  }
}"""
REPLAY = """mutation($id: ID!) { inboundMessageReplay(input: {id: $id}) {
  inboundMessage { status } userErrors { field message code } } }"""


def create_channel(client: GraphQLClient, code: str, kind: str, settings: dict[str, Any], **extra: Any) -> dict:
    payload = client.mutate(
        "channelCreate",
        CHANNEL_CREATE,
        {"input": {"code": code, "name": f"Channel {code}", "kind": kind, "settings": settings, **extra}},
    )
    assert payload["userErrors"] == [], payload
    return payload["channel"]


def order_of(client: GraphQLClient, code: str, external_id: str) -> dict | None:
    return client(ORDER_BY_EXTERNAL, {"code": code, "ext": external_id})["orderByExternalId"]


def sync_until(client: GraphQLClient, code: str, external_id: str, *statuses: str, timeout: float = 30) -> dict:
    """Ask for pulls until the channel order shows up (in one of ``statuses``, if given)."""
    state = {"last_sync": 0.0}

    def check() -> dict | None:
        import time

        if time.monotonic() - state["last_sync"] > 2:
            payload = client.mutate("channelSyncOrders", SYNC, {"code": code})
            assert payload["userErrors"] == [], payload
            state["last_sync"] = time.monotonic()
        order = order_of(client, code, external_id)
        return order if order and (not statuses or order["status"] in statuses) else None

    return eventually(check, timeout=timeout, interval=0.2)


def wait_order(client: GraphQLClient, code: str, external_id: str, *statuses: str, timeout: float = 20) -> dict:
    def check() -> dict | None:
        order = order_of(client, code, external_id)
        return order if order and (not statuses or order["status"] in statuses) else None

    return eventually(check, timeout=timeout, interval=0.1)


def order_count(client: GraphQLClient, code: str) -> int:
    return client(ORDER_COUNT, {"code": code})["orders"]["totalCount"]


def messages(client: GraphQLClient, code: str, status: str | None = None) -> list[dict]:
    data = client(MESSAGES, {"code": code, "status": status})["inboundMessages"]
    return [edge["node"] for edge in data["edges"]]


def ensure_product(client: GraphQLClient, sku: str, price: str = "10.00") -> None:
    from tests.support import PRODUCT_CREATE

    payload = client.mutate(
        "productCreate",
        PRODUCT_CREATE,
        {"input": {"sku": sku, "name": f"Product {sku}", "price": {"amount": price, "currency": "CNY"}}},
    )
    assert payload["userErrors"] == [] or payload["userErrors"][0]["code"] == "DUPLICATE", payload


# --- the fakes as channel settings -----------------------------------------


def taobao_settings(base_url: str, state: taobao.TaobaoState) -> dict[str, Any]:
    return {"apiUrl": base_url + taobao.API_PATH, **state.settings(), "timeoutSeconds": 5}


def jd_settings(base_url: str, state: jd.JdState) -> dict[str, Any]:
    return {"apiUrl": base_url + jd.API_PATH, **state.settings()}


def amazon_settings(base_url: str, state: amazon.AmazonState) -> dict[str, Any]:
    return {
        "endpoint": base_url,
        "tokenUrl": base_url + amazon.TOKEN_PATH,
        "clientId": state.client_id,
        "clientSecret": state.client_secret,
        "refreshToken": state.refresh_token,
        "marketplaceIds": ["ATVPDKIKX0DER"],
        "sellerId": "A1FAKESELLER",
    }


def pos_settings(base_url: str, state: pos.PosState, location_code: str) -> dict[str, Any]:
    return {
        "apiUrl": base_url,
        "accessToken": state.access_token,
        "signatureKey": state.signature_key,
        "notificationUrl": state.notification_url,
        "locationCode": location_code,
        "squareLocationId": "L8FAKE2Q3R4S5",
    }


def amazon_order(
    order_id: str, *, status: str = "Unshipped", minutes_ago: int = 10, afn: bool = False, sku: str = "MUG-CER-11OZ-BLU"
) -> tuple[dict, list[dict]]:
    """A fresh copy of the sample Amazon order, updated ``minutes_ago`` (outside Amazon's 2-minute lag)."""
    sample = amazon.load_sample("getOrders.json")["payload"]["Orders"][0]
    order = copy.deepcopy(sample)
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    order.update(
        AmazonOrderId=order_id,
        OrderStatus=status,
        LastUpdateDate=amazon.amazon_time(when),
        PurchaseDate=amazon.amazon_time(when - timedelta(minutes=5)),
        FulfillmentChannel="AFN" if afn else "MFN",
        NumberOfItemsShipped=0,
        NumberOfItemsUnshipped=1,
    )
    order["OrderTotal"] = {"CurrencyCode": "USD", "Amount": "14.99"}
    item = {
        "ASIN": "B0CFAKE001",
        "SellerSKU": sku,
        "OrderItemId": order_id.replace("-", "")[:14],
        "Title": "Ceramic mug",
        "QuantityOrdered": 1,
        "QuantityShipped": 0,
        "ItemPrice": {"CurrencyCode": "USD", "Amount": "14.99"},
    }
    return order, [item]
