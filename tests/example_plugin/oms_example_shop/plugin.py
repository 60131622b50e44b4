"""Hooks of the ``example-shop`` channel kind.

The marketplace is deliberately simple (tests/test_channels.py serves a fake of it):

* ``GET  {apiUrl}/orders?updated_after=…&updated_before=…&page=…`` → ``{"orders": [...], "next": "2"}``
* ``POST {apiUrl}/stock`` with ``{"sku": …, "quantity": …}``
* ``POST {apiUrl}/shipments`` with ``{"order": …, "carrier": …, "tracking": …}``
* pushed orders arrive signed: header ``x-example-signature`` = hex HMAC-SHA256(webhookSecret, body)

Every call sends ``Authorization: Bearer {token}``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from oms_graphql.plugins.contract import (
    ChannelConfig,
    ChannelKind,
    ChannelOrderStatus,
    NormalizedAddress,
    NormalizedBuyer,
    NormalizedLine,
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

KIND = "example-shop"
STATUSES = {
    "new": ChannelOrderStatus.UNPAID,
    "paid": ChannelOrderStatus.PAID,
    "shipped": ChannelOrderStatus.SHIPPED,
    "cancelled": ChannelOrderStatus.CANCELLED,
}


@hookimpl
def oms_channel_kinds() -> list[ChannelKind]:
    return [
        ChannelKind(
            kind=KIND,
            name="Example Shop",
            settings=(
                SettingField("apiUrl", "API base URL", kind="url"),
                SettingField("token", "API token", secret=True),
                SettingField("webhookSecret", "Webhook signing secret", secret=True, required=False),
            ),
            pulls_orders=True,
            receives_webhooks=True,
        )
    ]


@hookimpl
def oms_channel_check_settings(kind: str, settings: dict) -> list[tuple[str, str]] | None:
    if kind != KIND:
        return None
    if len(str(settings.get("token", ""))) < 8:
        return [("token", "an Example Shop token has at least 8 characters")]
    return []


@hookimpl
def oms_channel_max_window(channel: ChannelConfig) -> float | None:
    return 6 * 3600.0 if channel.kind == KIND else None


def _client(channel: ChannelConfig) -> httpx.Client:
    return httpx.Client(
        base_url=channel.settings["apiUrl"],
        headers={"authorization": f"Bearer {channel.settings['token']}"},
        timeout=10,
    )


def _call(channel: ChannelConfig, method: str, path: str, **kwargs: Any) -> Any:
    try:
        with _client(channel) as client:
            response = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        raise RetryableError(f"Example Shop unreachable: {error!r}") from error
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("retry-after")
        raise RetryableError(
            f"Example Shop answered {response.status_code}", retry_after=float(retry_after) if retry_after else None
        )
    if response.status_code >= 400:
        raise PermanentError(f"Example Shop refused {method} {path}: {response.status_code} {response.text[:200]}")
    return response.json()


@hookimpl
def oms_channel_fetch_orders(
    channel: ChannelConfig, updated_after: datetime, updated_before: datetime, page: str | None
) -> OrderPage | None:
    if channel.kind != KIND:
        return None
    params = {"updated_after": updated_after.isoformat(), "updated_before": updated_before.isoformat()}
    if page:
        params["page"] = page
    answer = _call(channel, "GET", "/orders", params=params)
    orders = [RawOrderPayload(external_id=str(order["id"]), body=order) for order in answer.get("orders", [])]
    return OrderPage(orders=orders, next_page=answer.get("next"))


@hookimpl
def oms_channel_parse_order(channel: ChannelConfig, body: dict) -> NormalizedOrder | None:
    if channel.kind != KIND:
        return None
    try:
        return NormalizedOrder(
            external_id=str(body["id"]),
            status=STATUSES[body["status"]],
            raw_status=body["status"],
            currency=body["currency"],
            placed_at=datetime.fromisoformat(body["placed_at"]),
            updated_at=datetime.fromisoformat(body["updated_at"]),
            lines=[
                NormalizedLine(
                    channel_line_id=str(line["id"]),
                    quantity=int(line["qty"]),
                    unit_price=Decimal(str(line["price"])),
                    merchant_sku=line.get("sku"),
                    channel_sku_id=line.get("listing"),
                )
                for line in body["lines"]
            ],
            buyer=NormalizedBuyer(name=body.get("buyer"), email=body.get("email")),
            shipping_address=NormalizedAddress(
                country=body["ship_to"]["country"], line1=body["ship_to"]["street"], city=body["ship_to"].get("city")
            ),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as error:
        raise PayloadError(f"example-shop order: missing or bad field {error}") from None


@hookimpl
def oms_channel_verify_webhook(channel: ChannelConfig, request: WebhookRequest) -> WebhookVerdict | None:
    if channel.kind != KIND:
        return None
    secret = str(channel.settings.get("webhookSecret") or "")
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    if not secret or not hmac.compare_digest(expected, request.headers.get("x-example-signature", "")):
        return WebhookVerdict(accepted=False, reason="x-example-signature does not match")
    return WebhookVerdict(accepted=True)


@hookimpl
def oms_channel_expand_webhook(channel: ChannelConfig, body: dict) -> list[RawOrderPayload] | None:
    if channel.kind != KIND:
        return None
    return [RawOrderPayload(external_id=str(body["id"]), body=body)]  # the webhook carries the whole order


@hookimpl
def oms_channel_push_stock(channel: ChannelConfig, pushes: list[StockPush]) -> list[StockPushResult] | None:
    if channel.kind != KIND:
        return None
    for push in pushes:
        _call(channel, "POST", "/stock", json={"sku": push.channel_sku_id, "quantity": push.quantity})
    return [StockPushResult(channel_sku_id=push.channel_sku_id, ok=True) for push in pushes]


@hookimpl
def oms_channel_confirm_shipment(channel: ChannelConfig, shipment: ShipmentConfirmation) -> bool | None:
    if channel.kind != KIND:
        return None
    _call(
        channel,
        "POST",
        "/shipments",
        json={
            "order": shipment.external_order_id,
            "carrier": shipment.carrier_code,
            "tracking": shipment.tracking_number,
        },
    )
    return True
