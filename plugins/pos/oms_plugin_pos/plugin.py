"""oms-graphql hooks for the store POS (Square-shaped Orders, Inventory and webhooks).

Rules cited below are from /work/shared/channel-samples/README.md section 4.
"""

from __future__ import annotations

import hmac
import json
import uuid
from datetime import UTC, datetime
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
    WebhookRequest,
    WebhookVerdict,
)
from oms_graphql.plugins.hookspecs import hookimpl

from . import mapping
from .client import PosClient, RejectedRequest, webhook_signature

KIND = "pos"
SIGNATURE_HEADER = "x-square-hmacsha256-signature"
ORDER_EVENTS = ("order.created", "order.updated", "order.fulfillment.updated")

# SearchOrders pages with a cursor and takes up to 1000 per page (README 4); no window
# limit is documented, a day keeps a catch-up pull to a few pages.
MAX_WINDOW_SECONDS = 24 * 3600.0
ORDERS_PER_PAGE = 100
STOCK_CHANGES_PER_CALL = 100  # BatchChangeInventory takes at most 100 changes

SETTINGS = (
    SettingField("apiUrl", "POS API base URL", "url", help="e.g. https://connect.squareup.com"),
    SettingField("accessToken", "Access token", secret=True),
    SettingField("signatureKey", "Webhook signature key", secret=True),
    SettingField(
        "notificationUrl",
        "Webhook notification URL",
        "url",
        help="exactly as registered at the POS: it is part of the signed text",
    ),
    SettingField("locationCode", "Store location code", help="the OMS location this POS sells from"),
    SettingField(
        "squareLocationId",
        "POS location id",
        required=False,
        help="the store's location id at the POS: needed to poll sales rung up in the POS app and to push stock",
    ),
    SettingField("timeoutSeconds", "HTTP timeout in seconds", "int", required=False, default=30),
)


def _ours(channel: ChannelConfig) -> bool:
    return channel.kind == KIND


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@hookimpl
def oms_channel_kinds() -> list[ChannelKind]:
    # Webhooks bring API-created orders; sales rung up in the POS app publish no
    # order.created, so they are pulled with SearchOrders (README 4, "Endpoints and auth").
    return [ChannelKind(kind=KIND, name="Store POS", settings=SETTINGS, pulls_orders=True, receives_webhooks=True)]


@hookimpl
def oms_channel_check_settings(kind: str, settings: dict) -> list[tuple[str, str]] | None:
    if kind != KIND:
        return None
    problems = []
    for key in ("apiUrl", "notificationUrl"):
        if not str(settings.get(key, "")).startswith(("https://", "http://")):
            problems.append((key, "must be an http(s) URL"))
    if not str(settings.get("locationCode") or "").strip():
        problems.append(("locationCode", "name the store location this POS sells from"))
    return problems


@hookimpl
def oms_channel_max_window(channel: ChannelConfig) -> float | None:
    return MAX_WINDOW_SECONDS if _ours(channel) else None


@hookimpl
def oms_channel_verify_webhook(channel: ChannelConfig, request: WebhookRequest) -> WebhookVerdict | None:
    if not _ours(channel):
        return None
    key, url = channel.settings.get("signatureKey"), channel.settings.get("notificationUrl")
    if not key or not url:
        return WebhookVerdict(accepted=False, reason="set signatureKey and notificationUrl on the POS channel")
    received = request.headers.get(SIGNATURE_HEADER)
    if not received:
        return WebhookVerdict(accepted=False, reason=f"missing {SIGNATURE_HEADER} header")
    # The POS signs the notification URL it was given, which can differ from the URL we see
    # behind a proxy; so the URL comes from the settings, the body is the raw bytes.
    expected = webhook_signature(str(url), request.body, str(key))
    if not hmac.compare_digest(received.encode(), expected.encode()):
        return WebhookVerdict(
            accepted=False,
            reason="signature does not match: check signatureKey and notificationUrl of the channel",
        )
    # The signed body carries the event's id and time (README 4: "Use event_id to
    # de-duplicate"); the OMS refuses a second delivery of one id, and stale ones.
    event_id, signed_at = _event_id_and_time(request.body)
    return WebhookVerdict(accepted=True, event_id=event_id, signed_at=signed_at)


def _event_id_and_time(body: bytes) -> tuple[str | None, datetime | None]:
    try:
        event = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(event, dict):
        return None, None
    event_id = event.get("event_id")
    try:
        signed_at = mapping.parse_time(event.get("created_at"), "created_at") if event.get("created_at") else None
    except PayloadError:
        signed_at = None
    return (str(event_id)[:200] if event_id else None), signed_at


def notified_order_id(body: dict[str, Any]) -> str | None:
    """The order id of an order notification, wherever this event type keeps it."""
    data = body.get("data")
    if not isinstance(data, dict):
        return None
    # data.type is "order_created" in the SDK but "order" in some copies of the docs
    # (README 4, "Sample data notes"): look inside whatever object is there instead.
    obj = data.get("object")
    if isinstance(obj, dict):
        for summary in obj.values():
            if isinstance(summary, dict) and isinstance(summary.get("order_id"), str):
                return summary["order_id"]
    return data.get("id") if isinstance(data.get("id"), str) else None


@hookimpl
def oms_channel_expand_webhook(channel: ChannelConfig, body: dict) -> list[RawOrderPayload] | None:
    if not _ours(channel):
        return None
    if body.get("type") not in ORDER_EVENTS:
        return []
    order_id = notified_order_id(body)
    if not order_id:
        raise PermanentError(f"{body.get('type')} notification {body.get('event_id')} names no order id")
    # The notification is only a summary: fetch the whole order (README 4).
    with PosClient(channel.settings) as client:
        answer = client.call("GET", f"/v2/orders/{quote(order_id, safe='')}", operation="RetrieveOrder")
    order = answer.get("order")
    if not isinstance(order, dict):
        raise RetryableError(f"The POS answered RetrieveOrder {order_id} without an order")
    return [_payload(order)]


def _payload(order: dict[str, Any]) -> RawOrderPayload:
    updated = order.get("updated_at")
    return RawOrderPayload(
        external_id=str(order.get("id")),
        body=order,
        updated_at=mapping.parse_time(updated, "updated_at") if updated else None,
    )


@hookimpl
def oms_channel_fetch_orders(
    channel: ChannelConfig, updated_after: datetime, updated_before: datetime, page: str | None
) -> OrderPage | None:
    if not _ours(channel):
        return None
    location_id = channel.settings.get("squareLocationId")
    if not location_id:
        raise PermanentError(
            "Set squareLocationId on the POS channel: sales rung up in the POS app send no webhook "
            "and can only be pulled for a location"
        )
    query = {
        "location_ids": [location_id],
        "query": {
            "filter": {
                "date_time_filter": {
                    "updated_at": {"start_at": _rfc3339(updated_after), "end_at": _rfc3339(updated_before)}
                },
                "state_filter": {"states": ["OPEN", "COMPLETED", "CANCELED"]},
            },
            # Sorting by a field requires the date filter on the same field (README 4).
            "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"},
        },
        "limit": ORDERS_PER_PAGE,
        "return_entries": False,
    }
    if page:
        query["cursor"] = page  # with the original query, as cursors require
    with PosClient(channel.settings) as client:
        answer = client.call("POST", "/v2/orders/search", json=query, operation="SearchOrders")
    orders = answer.get("orders") or []
    if not isinstance(orders, list):
        raise RetryableError("The POS answered SearchOrders with orders that are not a list")
    unique = {o["id"]: o for o in orders if isinstance(o, dict) and isinstance(o.get("id"), str)}
    return OrderPage(orders=[_payload(o) for o in unique.values()], next_page=answer.get("cursor") or None)


@hookimpl
def oms_channel_parse_order(channel: ChannelConfig, body: dict) -> NormalizedOrder | None:
    if not _ours(channel):
        return None
    return mapping.parse_order(body, location_code=channel.settings.get("locationCode"))


@hookimpl
def oms_channel_push_stock(channel: ChannelConfig, pushes: list[StockPush]) -> list[StockPushResult] | None:
    """Set the store's count of each variation with BatchChangeInventory PHYSICAL_COUNT changes.

    The samples README documents no inventory call; this is Square's own Inventory API
    (POST /v2/inventory/changes/batch-create), the closest documented one.
    """
    if not _ours(channel):
        return None
    location_id = channel.settings.get("squareLocationId")
    if not location_id:
        raise PermanentError("Set squareLocationId on the POS channel to push the store's stock")
    results: list[StockPushResult] = []
    with PosClient(channel.settings) as client:
        for start in range(0, len(pushes), STOCK_CHANGES_PER_CALL):
            batch = pushes[start : start + STOCK_CHANGES_PER_CALL]
            results.extend(_push_batch(client, str(location_id), batch))
    return results


def _push_batch(client: PosClient, location_id: str, batch: list[StockPush]) -> list[StockPushResult]:
    occurred_at = _rfc3339(datetime.now(UTC))
    body = {
        "idempotency_key": str(uuid.uuid4()),
        "changes": [
            {
                "type": "PHYSICAL_COUNT",
                "physical_count": {
                    "catalog_object_id": push.channel_sku_id,
                    "state": "IN_STOCK",
                    "location_id": location_id,
                    "quantity": str(max(0, push.quantity)),  # Square quantities are decimal strings
                    "occurred_at": occurred_at,
                },
            }
            for push in batch
        ],
        "ignore_unchanged_counts": True,
    }
    try:
        client.call("POST", "/v2/inventory/changes/batch-create", json=body, operation="BatchChangeInventory")
    except RejectedRequest as exc:  # the POS rejects the whole batch, e.g. an unknown variation
        return [StockPushResult(channel_sku_id=p.channel_sku_id, ok=False, message=str(exc)) for p in batch]
    return [StockPushResult(channel_sku_id=p.channel_sku_id, ok=True) for p in batch]


@hookimpl
def oms_channel_confirm_shipment(channel: ChannelConfig, shipment: ShipmentConfirmation) -> bool | None:
    """Mark the order's SHIPMENT fulfilment COMPLETED with the carrier and tracking number.

    Square's UpdateOrder (``PUT /v2/orders/{id}``, a sparse order with the current
    ``version``; the samples README documents no write call, this is Square's Orders API).
    A counter sale has no open shipment fulfilment: it was handed over, nothing to tell.
    """
    if not _ours(channel):
        return None
    order_path = f"/v2/orders/{quote(shipment.external_order_id, safe='')}"
    with PosClient(channel.settings) as client:
        order = client.call("GET", order_path, operation="RetrieveOrder").get("order")
        if not isinstance(order, dict):
            raise RetryableError(f"The POS answered RetrieveOrder {shipment.external_order_id} without an order")
        fulfillment = mapping.fulfillment_to_ship(order)
        if fulfillment is None:
            return True  # handed over at the counter, or marked shipped already
        if shipment.partial:
            # One shipment fulfilment covers the whole order: completing it says everything left.
            raise PermanentError(
                f"POS order {shipment.external_order_id}: its shipment fulfilment covers the whole order; "
                "it is marked shipped once every line has left"
            )
        body = {
            # The same key on every retry of this confirmation: a replay changes nothing twice.
            "idempotency_key": f"oms-shipped-{shipment.external_order_id}-{shipment.tracking_number}"[:192],
            "order": {
                "location_id": order.get("location_id"),
                "version": order.get("version"),
                "fulfillments": [
                    {
                        "uid": fulfillment.get("uid"),
                        "state": "COMPLETED",
                        "shipment_details": {
                            "carrier": shipment.carrier_code,
                            "tracking_number": shipment.tracking_number,
                            "shipped_at": _rfc3339(shipment.shipped_at),
                        },
                    }
                ],
            },
        }
        try:
            client.call("PUT", order_path, json=body, operation="UpdateOrder")
        except RejectedRequest as exc:
            if "VERSION_MISMATCH" in str(exc):  # changed at the POS meanwhile: read it again and retry
                raise RetryableError(str(exc)) from exc
            raise
    return True
