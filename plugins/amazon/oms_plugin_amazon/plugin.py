"""oms-graphql hooks for Amazon (SP-API Orders v0 + Listings Items 2021-08-01).

Marketplace rules cited below are from /work/shared/channel-samples/README.md section 3.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from oms_graphql.plugins.contract import (
    ChannelConfig,
    ChannelKind,
    NormalizedOrder,
    OrderPage,
    PayloadError,
    PermanentError,
    RawOrderPayload,
    RetryableError,
    SettingField,
    ShipmentConfirmation,
    StockPush,
    StockPushResult,
)
from oms_graphql.plugins.hookspecs import hookimpl

from . import mapping
from .client import RejectedRequest, SellingPartnerClient, error_text, rate_limiter

KIND = "amazon"

# getOrders: LastUpdatedBefore must be at least two minutes before now (README 3, "Pagination").
LAST_UPDATED_BEFORE_LAG = timedelta(minutes=2)

# getOrder and getOrderItems are each limited to 0.5 requests/s with a burst of 30 (README 3,
# endpoint table). A new or changed order on a page costs one call of each, so a page of 20
# new orders fits in one burst.
ORDERS_PER_PAGE = 20

# No maximum window is documented for LastUpdatedAfter/Before; NextToken pages any size.
# Six hours keeps one window's pages to a few minutes of getOrders quota (1 call/minute).
MAX_WINDOW_SECONDS = 6 * 3600.0

SETTINGS = (
    SettingField("endpoint", "SP-API endpoint", "url", help="e.g. https://sellingpartnerapi-na.amazon.com"),
    SettingField("tokenUrl", "LWA token URL", "url", default="https://api.amazon.com/auth/o2/token"),
    SettingField("clientId", "LWA client id"),
    SettingField("clientSecret", "LWA client secret", secret=True),
    SettingField("refreshToken", "LWA refresh token of the seller", secret=True),
    SettingField("marketplaceIds", "Marketplace ids", "list", help="e.g. ATVPDKIKX0DER for amazon.com"),
    SettingField(
        "sellerId",
        "Seller (merchant token) id",
        required=False,
        help="needed to push stock (Listings Items API)",
    ),
    SettingField("timeoutSeconds", "HTTP timeout in seconds", "int", required=False, default=30),
)


def _ours(channel: ChannelConfig) -> bool:
    return channel.kind == KIND


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@hookimpl
def oms_channel_kinds() -> list[ChannelKind]:
    return [ChannelKind(kind=KIND, name="Amazon", settings=SETTINGS, pulls_orders=True, receives_webhooks=False)]


@hookimpl
def oms_channel_check_settings(kind: str, settings: dict) -> list[tuple[str, str]] | None:
    if kind != KIND:
        return None
    problems = []
    for key in ("endpoint", "tokenUrl"):
        if not str(settings.get(key, "")).startswith(("https://", "http://")):
            problems.append((key, "must be an http(s) URL"))
    marketplace_ids = settings.get("marketplaceIds")
    if not isinstance(marketplace_ids, list) or not marketplace_ids:
        problems.append(("marketplaceIds", "list at least one marketplace id, e.g. ATVPDKIKX0DER"))
    elif len(marketplace_ids) > 50:
        problems.append(("marketplaceIds", "getOrders accepts at most 50 marketplace ids"))
    elif not all(isinstance(m, str) and m.strip() for m in marketplace_ids):
        problems.append(("marketplaceIds", "every marketplace id must be a non-empty string"))
    return problems


@hookimpl
def oms_channel_max_window(channel: ChannelConfig) -> float | None:
    return MAX_WINDOW_SECONDS if _ours(channel) else None


@hookimpl
def oms_channel_min_lag(channel: ChannelConfig) -> float | None:
    # A little more than the two minutes getOrders demands, for clock skew.
    return LAST_UPDATED_BEFORE_LAG.total_seconds() + 5 if _ours(channel) else None


@hookimpl
def oms_channel_fetch_orders(
    channel: ChannelConfig, updated_after: datetime, updated_before: datetime, page: str | None
) -> OrderPage | None:
    if not _ours(channel):
        return None
    too_recent = updated_before - (datetime.now(UTC) - LAST_UPDATED_BEFORE_LAG)
    if too_recent.total_seconds() > 0:
        # Asking with an earlier bound would silently skip the newest orders of the window.
        raise RetryableError(
            "Amazon only lists orders updated at least 2 minutes ago; pulling this window later",
            retry_after=too_recent.total_seconds() + 1,
        )
    params: dict[str, Any] = {
        "MarketplaceIds": ",".join(channel.settings["marketplaceIds"]),
        "LastUpdatedAfter": _iso(updated_after),
        "LastUpdatedBefore": _iso(updated_before),
        "MaxResultsPerPage": ORDERS_PER_PAGE,
    }
    if page:
        params["NextToken"] = page  # the same filters plus NextToken (README 3)
    with SellingPartnerClient(channel.settings) as client:
        rate_limiter(client.endpoint, "getOrders", rate=1 / 60, burst=20).wait("getOrders")
        body = client.get_json("/orders/v0/orders", params=params, operation="getOrders")
    payload = body.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("Orders"), list):
        raise RetryableError("Amazon getOrders answered without payload.Orders; retrying")
    by_id: dict[str, dict[str, Any]] = {}
    for order in payload["Orders"]:
        if isinstance(order, dict) and isinstance(order.get("AmazonOrderId"), str):
            by_id[order["AmazonOrderId"]] = order  # a repeated entry counts once
    # A listed order has no items, and getOrderItems allows 0.5 calls a second: each order is
    # partial, so the OMS fetches it in full (oms_channel_fetch_order) only for a version it
    # has not stored, not again for each re-listing of the overlap between two pulls.
    payloads = [
        RawOrderPayload(external_id=order_id, body={"order": order}, updated_at=_last_update(order), partial=True)
        for order_id, order in by_id.items()
    ]
    return OrderPage(orders=payloads, next_page=payload.get("NextToken") or None)


@hookimpl
def oms_channel_fetch_order(channel: ChannelConfig, external_id: str) -> RawOrderPayload | None:
    """The order (getOrder) with its items (getOrderItems), stamped with its LastUpdateDate."""
    if not _ours(channel):
        return None
    with SellingPartnerClient(channel.settings) as client:
        # getOrder first: should the order change between the two calls, the stamp kept is the
        # older one and the next listing fetches the order again; the other way round a newer
        # stamp would pass off the older items as that version.
        order = _get_order(client, external_id)
        items = _order_items(client, external_id)
    return RawOrderPayload(
        external_id=external_id, body={"order": order, "items": items}, updated_at=_last_update(order)
    )


def _get_order(client: SellingPartnerClient, order_id: str) -> dict[str, Any]:
    rate_limiter(client.endpoint, "getOrder", rate=0.5, burst=30).wait("getOrder")
    order = client.get_json(f"/orders/v0/orders/{quote(order_id, safe='')}", operation="getOrder").get("payload")
    if not isinstance(order, dict):
        raise RetryableError(f"Amazon getOrder for {order_id} answered without a payload; retrying")
    return order


def _last_update(order: dict[str, Any]) -> datetime | None:
    # A bad LastUpdateDate must not lose the whole page: parsing reports it for this order.
    try:
        return mapping.optional_time(order.get("LastUpdateDate"), "order.LastUpdateDate")
    except PayloadError:
        return None


def _order_items(client: SellingPartnerClient, order_id: str) -> list[dict[str, Any]]:
    """Every item of an order, following getOrderItems' own NextToken."""
    items: list[dict[str, Any]] = []
    next_token: str | None = None
    limiter = rate_limiter(client.endpoint, "getOrderItems", rate=0.5, burst=30)
    while True:
        limiter.wait()
        body = client.get_json(
            f"/orders/v0/orders/{quote(order_id, safe='')}/orderItems",
            params={"NextToken": next_token} if next_token else None,
            operation="getOrderItems",
        )
        payload = body.get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("OrderItems"), list):
            raise RetryableError(f"Amazon getOrderItems for {order_id} answered without payload.OrderItems")
        page = payload["OrderItems"]
        seen = {item.get("OrderItemId") for item in items}
        items.extend(item for item in page if not (isinstance(item, dict) and item.get("OrderItemId") in seen))
        next_token = payload.get("NextToken") or None
        if not next_token:
            return items


@hookimpl
def oms_channel_parse_order(channel: ChannelConfig, body: dict) -> NormalizedOrder | None:
    return mapping.parse_order(body) if _ours(channel) else None


@hookimpl
def oms_channel_push_stock(channel: ChannelConfig, pushes: list[StockPush]) -> list[StockPushResult] | None:
    """Set fulfillment_availability per SKU with patchListingsItem (README 3, endpoint table).

    The Listings Items API answers per SKU at once; the JSON_LISTINGS_FEED alternative only
    reports results later, which the one-result-per-push contract cannot express.
    """
    if not _ours(channel):
        return None
    seller_id = channel.settings.get("sellerId")
    if not seller_id:
        raise PermanentError("Set sellerId (the seller's merchant token) on the Amazon channel to push stock")
    results = []
    with SellingPartnerClient(channel.settings) as client:
        limiter = rate_limiter(client.endpoint, "patchListingsItem", rate=5, burst=5)
        for push in pushes:
            limiter.wait()
            results.append(_patch_quantity(client, channel, str(seller_id), push))
    return results


def _patch_quantity(
    client: SellingPartnerClient, channel: ChannelConfig, seller_id: str, push: StockPush
) -> StockPushResult:
    body = {
        # PRODUCT is the product type for offer-only attributes such as the quantity.
        "productType": "PRODUCT",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": max(0, push.quantity)}],
            }
        ],
    }
    path = f"/listings/2021-08-01/items/{quote(seller_id, safe='')}/{quote(push.channel_sku_id, safe='')}"
    params = {"marketplaceIds": ",".join(channel.settings["marketplaceIds"])}
    try:
        response = client.call("PATCH", path, params=params, json=body, operation="patchListingsItem")
    except RejectedRequest as exc:  # one bad SKU must not block the others
        return StockPushResult(channel_sku_id=push.channel_sku_id, ok=False, message=str(exc))
    answer = client._json(response, "patchListingsItem")
    status = answer.get("status") if isinstance(answer, dict) else None
    if status == "ACCEPTED":
        return StockPushResult(channel_sku_id=push.channel_sku_id, ok=True)
    issues = answer.get("issues") if isinstance(answer, dict) else None
    message = "; ".join(
        f"{issue.get('code')}: {issue.get('message')}" for issue in issues or [] if isinstance(issue, dict)
    )
    return StockPushResult(
        channel_sku_id=push.channel_sku_id,
        ok=False,
        message=f"Amazon answered {status}: {message or error_text(response)}",
    )


@hookimpl
def oms_channel_confirm_shipment(channel: ChannelConfig, shipment: ShipmentConfirmation) -> bool | None:
    if not _ours(channel):
        return None
    order_path = f"/orders/v0/orders/{quote(shipment.external_order_id, safe='')}"
    with SellingPartnerClient(channel.settings) as client:
        lines = [{"orderItemId": line.channel_line_id, "quantity": line.quantity} for line in shipment.lines]
        if not lines:  # the whole order: every item with what is left to ship
            lines = _unshipped_lines(client, shipment.external_order_id)
            if not lines:
                return True  # Amazon already counts every unit as shipped
        package: dict[str, Any] = {
            "packageReferenceId": package_reference_id(shipment.tracking_number),
            "carrierCode": shipment.carrier_code,
            "carrierName": shipment.carrier_name or shipment.carrier_code,
            "shippingMethod": shipment.service,
            "trackingNumber": shipment.tracking_number,
            "shipDate": shipment.shipped_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "orderItems": lines,
        }
        if package["shippingMethod"] is None:
            del package["shippingMethod"]
        body = {"marketplaceId": _marketplace_of(client, channel, shipment.external_order_id), "packageDetail": package}
        rate_limiter(client.endpoint, "confirmShipment", rate=2, burst=10).wait()
        client.call("POST", order_path + "/shipmentConfirmation", json=body, operation="confirmShipment")
    return True  # 204 No Content: accepted


def package_reference_id(tracking_number: str) -> str:
    """A positive number unique to the package within the order, the same on every retry.

    PackageReferenceId accepts only positive numeric values (ordersV0.json); deriving it
    from the tracking number keeps a retried confirmation from counting as a new package.
    """
    digest = hashlib.sha256(tracking_number.encode()).hexdigest()
    return str(int(digest[:12], 16) % 999_999_999 + 1)


def _marketplace_of(client: SellingPartnerClient, channel: ChannelConfig, order_id: str) -> str:
    marketplace_ids = channel.settings["marketplaceIds"]
    if len(marketplace_ids) == 1:
        return str(marketplace_ids[0])
    marketplace_id = _get_order(client, order_id).get("MarketplaceId")
    if not marketplace_id:
        raise RetryableError("Amazon getOrder answered without payload.MarketplaceId; retrying")
    return str(marketplace_id)


def _unshipped_lines(client: SellingPartnerClient, order_id: str) -> list[dict[str, Any]]:
    lines = []
    for item in _order_items(client, order_id):
        left = int(item.get("QuantityOrdered") or 0) - int(item.get("QuantityShipped") or 0)
        if left > 0:
            lines.append({"orderItemId": item["OrderItemId"], "quantity": left})
    return lines
